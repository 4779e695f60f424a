//! Every module: imports only from `aifn`, sizes, determinism, cost, the
//! manifests beside the sources, and the instruction a missing module gives.

use std::path::PathBuf;

use aifn_types::OutcomeKind;
use serde_json::Value;

use crate::iban::IBAN;
use crate::invoice::INVOICE;
use crate::leave::LEAVE;
use crate::pii::PII;
use crate::{call, runtime, wasm_bytes};

/// Rust examples must stay at or below this size.
const MAX_RUST_EXAMPLE_BYTES: usize = 150 * 1024;
const RUST_EXAMPLES: [&str; 3] = ["calculate_leave_days", "redact_pii", "invoice_total"];
const ALL_MODULES: [&str; 5] = [
    "calculate_leave_days",
    "redact_pii",
    "invoice_total",
    "validate_iban",
    "sdk_probe",
];

/// The imports of a wasm module as (module, name), read with a minimal
/// parser independent of the runtime's validator.
fn imports(wasm: &[u8]) -> Vec<(String, String)> {
    fn leb(b: &[u8], i: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[*i];
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    fn name(b: &[u8], i: &mut usize) -> String {
        let n = leb(b, i) as usize;
        let s = String::from_utf8_lossy(&b[*i..*i + n]).into_owned();
        *i += n;
        s
    }
    assert_eq!(
        &wasm[..8],
        b"\0asm\x01\0\0\0",
        "a core wasm module, version 1"
    );
    let mut i = 8;
    let mut out = Vec::new();
    while i < wasm.len() {
        let id = wasm[i];
        i += 1;
        let size = leb(wasm, &mut i) as usize;
        let end = i + size;
        if id == 2 {
            let mut j = i;
            for _ in 0..leb(wasm, &mut j) {
                let m = name(wasm, &mut j);
                let n = name(wasm, &mut j);
                let kind = wasm[j];
                j += 1;
                match kind {
                    0 => {
                        leb(wasm, &mut j);
                    }
                    1 => {
                        j += 1;
                        let flags = leb(wasm, &mut j);
                        leb(wasm, &mut j);
                        if flags & 1 == 1 {
                            leb(wasm, &mut j);
                        }
                    }
                    2 => {
                        let flags = leb(wasm, &mut j);
                        leb(wasm, &mut j);
                        if flags & 1 == 1 {
                            leb(wasm, &mut j);
                        }
                    }
                    3 => j += 2,
                    k => panic!("unexpected import kind {k}"),
                }
                out.push((m, n));
            }
        }
        i = end;
    }
    out
}

#[test]
fn modules_import_only_from_aifn() {
    for name in ALL_MODULES {
        let wasm = wasm_bytes(name);
        let found = imports(&wasm);
        assert!(
            !found.is_empty(),
            "{name} reads its input through aifn imports"
        );
        for (m, n) in &found {
            assert_eq!(m, "aifn", "{name} imports {m}.{n}");
        }
        // The runtime's own inspection agrees, and it needs no WASI.
        let report = runtime()
            .inspect(&wasm)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!report.uses_wasi, "{name}");
        assert!(
            report.imports.iter().all(|i| i.module == "aifn"),
            "{name}: {:?}",
            report.imports
        );
        assert!(
            report
                .exports
                .iter()
                .any(|e| e.name == "aifn_call" && e.kind == "func"),
            "{name}"
        );
        assert!(
            report
                .exports
                .iter()
                .any(|e| e.name == "memory" && e.kind == "memory"),
            "{name}"
        );
    }
}

#[test]
fn rust_examples_are_small() {
    for name in RUST_EXAMPLES {
        let size = wasm_bytes(name).len();
        assert!(
            size <= MAX_RUST_EXAMPLE_BYTES,
            "{name}.wasm is {size} bytes, over {MAX_RUST_EXAMPLE_BYTES}"
        );
    }
    let c = wasm_bytes("validate_iban").len();
    assert!(c <= 16 * 1024, "validate_iban.wasm is {c} bytes");
}

#[test]
fn outputs_are_deterministic() {
    let cases = [
        (
            "calculate_leave_days",
            r#"{"start_date":"2024-12-23","end_date":"2025-01-03"}"#,
        ),
        (
            "redact_pii",
            r#"{"text":"mail a@b.io or call +44 20 7946 0958"}"#,
        ),
        (
            "invoice_total",
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"9.99","tax_percent":19}]}"#,
        ),
        ("validate_iban", r#"{"iban":"DE89370400440532013000"}"#),
    ];
    for (name, input) in cases {
        let a = call(name, input);
        let b = call(name, input);
        assert_eq!(a.kind, OutcomeKind::Ok, "{name}: {:?}", a.message);
        assert_eq!(a.output, b.output, "{name}");
        assert_eq!(
            a.fuel_used, b.fuel_used,
            "{name}: fuel is deterministic too"
        );
    }
}

/// Typical calls stay cheap; prints the numbers recorded in the READMEs
/// (`cargo test -p aifn-tests --test functions -- --nocapture typical`).
#[test]
fn typical_calls_are_cheap() {
    let cases = [
        (
            "calculate_leave_days",
            r#"{"start_date":"2024-12-23","end_date":"2025-01-03","holidays":["2024-12-25","2024-12-26","2025-01-01"]}"#,
        ),
        (
            "redact_pii",
            r#"{"text":"Hi, I'm Jane (jane.doe@example.com, +1 415-555-0132). SSN 123-45-6789, card 4111 1111 1111 1111. Please update my address."}"#,
        ),
        (
            "invoice_total",
            r#"{"currency":"EUR","items":[{"description":"Consulting hours","quantity":"12.5","unit_price":"120.00","tax_percent":"19"},{"description":"Book","quantity":3,"unit_price":19.99,"tax_percent":"7"},{"description":"Cable","quantity":"2","unit_price":"4.175","tax_percent":"19"}]}"#,
        ),
        ("validate_iban", r#"{"iban":"DE89 3704 0044 0532 0130 00"}"#),
    ];
    for (name, input) in cases {
        let e = call(name, input);
        assert_eq!(e.kind, OutcomeKind::Ok, "{name}: {:?}", e.message);
        println!(
            "{name}: {} bytes, fuel {}, memory peak {} bytes, {:?}",
            wasm_bytes(name).len(),
            e.fuel_used,
            e.memory_peak_bytes,
            e.duration
        );
        assert!(e.fuel_used < 1_000_000, "{name} used {} fuel", e.fuel_used);
    }
}

/// Each example's `aifn.toml` + `schema.json` form a valid manifest (as
/// `aifn upload` reads them), and the schema accepts the typical input
/// and refuses a malformed one.
#[test]
fn manifests_and_schemas_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let cases = [
        (
            LEAVE,
            r#"{"start_date":"2024-12-23","end_date":"2025-01-03","holidays":["2024-12-25"],"weekend":["saturday","sunday"]}"#,
            r#"{"start_date":"2024-12-23"}"#,
        ),
        (
            PII,
            r#"{"text":"a@b.io","kinds":["email"]}"#,
            r#"{"text":"x","kinds":["iban"]}"#,
        ),
        (
            INVOICE,
            r#"{"currency":"EUR","rounding":"half_even","items":[{"description":"Book","quantity":3,"unit_price":19.99,"tax_percent":"7"}]}"#,
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"12,50","tax_percent":0}]}"#,
        ),
        (
            IBAN,
            r#"{"iban":"DE89 3704 0044 0532 0130 00"}"#,
            r#"{"iban":"DE89","bic":"X"}"#,
        ),
    ];
    for (name, good, bad) in cases {
        let text = std::fs::read_to_string(dir.join(name).join("aifn.toml")).expect("aifn.toml");
        let table: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{name}/aifn.toml: {e}"));
        let mut manifest = serde_json::to_value(table).expect("toml as json");
        let schema: Value = serde_json::from_slice(
            &std::fs::read(dir.join(name).join("schema.json")).expect("schema.json"),
        )
        .expect("schema is JSON");
        manifest["input_schema"] = schema.clone();
        let m: aifn_types::Manifest =
            serde_json::from_value(manifest).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            m.description.len() > 40,
            "{name}: describe the function for approvers and LLMs"
        );
        let v = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{name}/schema.json: {e}"));
        let good: Value = serde_json::from_str(good).expect("json");
        let bad: Value = serde_json::from_str(bad).expect("json");
        assert!(v.is_valid(&good), "{name}: schema refuses {good}");
        assert!(!v.is_valid(&bad), "{name}: schema accepts {bad}");
        // And the function agrees with its schema on the typical input.
        assert_eq!(
            call(name, &good.to_string()).kind,
            OutcomeKind::Ok,
            "{name}"
        );
    }
}

#[test]
fn missing_modules_fail_with_the_build_command() {
    let err = std::panic::catch_unwind(|| wasm_bytes("no_such_function")).expect_err("must fail");
    let msg = err.downcast_ref::<String>().expect("formatted panic");
    assert!(msg.contains("cargo xtask build-functions"), "{msg}");
}
