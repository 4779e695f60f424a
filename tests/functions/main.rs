//! The example functions (and the SDK's test-only probe) run through the
//! real runtime: exact outputs for typical inputs, `function_error` (never
//! a trap) for bad inputs, panics as `trap` with their message, imports
//! only from `aifn`, and module sizes.
//!
//! The modules come from `cargo xtask build-functions`, in
//! `<target dir>/wasm/` (or `$AIFN_WASM_DIR`). A missing module fails the
//! test with that instruction; nothing is skipped.

use std::path::PathBuf;
use std::sync::OnceLock;

use aifn_runtime::{Execution, Invocation, LoadedModule, Runtime, RuntimeConfig};
use aifn_types::{Context, Limits, LogLevel, LogStream, OutcomeKind};
use serde_json::{Value, json};

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

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime starts"))
}

/// `$AIFN_WASM_DIR`, else the `wasm` folder of the target directory this
/// test binary was built in (`<target>/[<triple>/]debug/deps/functions-*`),
/// else `$CARGO_TARGET_DIR/wasm`, else `<repo>/target/wasm`.
fn wasm_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIFN_WASM_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test binary path");
    if let Some(w) = exe
        .ancestors()
        .skip(3)
        .take(2)
        .map(|a| a.join("wasm"))
        .find(|w| w.is_dir())
    {
        return w;
    }
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_absolute() => t.join("wasm"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm"),
    }
}

fn wasm_bytes(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}). Build the guest functions first: `cargo xtask build-functions` \
             (or point AIFN_WASM_DIR at a folder of built modules)",
            path.display()
        )
    })
}

fn module(name: &str) -> LoadedModule {
    runtime()
        .load(&wasm_bytes(name))
        .unwrap_or_else(|e| panic!("{name}.wasm was refused: {e}"))
}

fn call_with(name: &str, input: &str, ctx: &Context, limits: Limits) -> Execution {
    let m = module(name);
    runtime().invoke(&m, &Invocation::new(input.as_bytes(), ctx, limits))
}

fn call(name: &str, input: &str) -> Execution {
    call_with(name, input, &Context::local(), Limits::default())
}

/// The output of a call that must succeed.
fn ok(name: &str, input: &str) -> Value {
    let e = call(name, input);
    assert_eq!(
        e.kind,
        OutcomeKind::Ok,
        "{name} {input}: {:?} logs {:?}",
        e.message,
        e.logs
    );
    let out = e.output.expect("ok has output");
    serde_json::from_slice(&out).expect("output is JSON")
}

/// The message of a call that must end in `function_error`.
fn function_error(name: &str, input: &str) -> String {
    let e = call(name, input);
    assert_eq!(
        e.kind,
        OutcomeKind::FunctionError,
        "{name} {input}: {:?} {:?}",
        e.message,
        e.output
    );
    e.message.expect("function_error has a message")
}

// ---------------------------------------------------------------------------
// Every module

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

// ---------------------------------------------------------------------------
// calculate_leave_days

const LEAVE: &str = "calculate_leave_days";

#[test]
fn leave_days_over_the_holidays() {
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-12-23","end_date":"2025-01-03","holidays":["2024-12-25","2024-12-26","2025-01-01"]}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":7,"calendar_days":12,"weekend_days":2,"holidays_excluded":["2024-12-25","2024-12-26","2025-01-01"]})
    );
}

#[test]
fn leave_days_across_a_leap_day() {
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-02-26","end_date":"2024-03-04"}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":6,"calendar_days":8,"weekend_days":2,"holidays_excluded":[]})
    );
}

#[test]
fn leave_days_ignore_duplicate_weekend_and_outside_holidays() {
    // 2024-06-08 is a Saturday, 2024-06-10 is listed twice, 2024-07-01 is
    // outside the range.
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-06-03","end_date":"2024-06-16","holidays":["2024-06-08","2024-06-10","2024-06-10","2024-07-01"]}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":9,"calendar_days":14,"weekend_days":4,"holidays_excluded":["2024-06-10"]})
    );
}

#[test]
fn leave_days_with_a_friday_saturday_weekend() {
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-03-28","end_date":"2024-04-06","weekend":["friday","saturday"]}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":6,"calendar_days":10,"weekend_days":4,"holidays_excluded":[]})
    );
}

#[test]
fn leave_days_single_days_and_long_ranges() {
    let sat = ok(
        LEAVE,
        r#"{"start_date":"2024-06-15","end_date":"2024-06-15"}"#,
    );
    assert_eq!(
        sat,
        json!({"working_days":0,"calendar_days":1,"weekend_days":1,"holidays_excluded":[]})
    );
    // 2050-12-25 is a Sunday: not excluded twice.
    let century = ok(
        LEAVE,
        r#"{"start_date":"2000-01-01","end_date":"2099-12-31","holidays":["2050-12-25"]}"#,
    );
    assert_eq!(
        century,
        json!({"working_days":26089,"calendar_days":36525,"weekend_days":10436,"holidays_excluded":[]})
    );
    // The whole supported calendar, in constant time.
    let e = call(
        LEAVE,
        r#"{"start_date":"0001-01-01","end_date":"9999-12-31"}"#,
    );
    assert_eq!(e.kind, OutcomeKind::Ok);
    let all: Value = serde_json::from_slice(&e.output.expect("output")).expect("json");
    assert_eq!(
        all,
        json!({"working_days":2608615,"calendar_days":3652059,"weekend_days":1043444,"holidays_excluded":[]})
    );
    assert!(e.fuel_used < 1_000_000, "{}", e.fuel_used);
}

#[test]
fn leave_days_reject_bad_dates_naming_the_field() {
    let cases = [
        (
            r#"{"start_date":"2024-02-01","end_date":"2024-01-01"}"#,
            "invalid input at .end_date: 2024-01-01 is before start_date 2024-02-01",
        ),
        (
            r#"{"start_date":"2024-13-01","end_date":"2024-12-31"}"#,
            r#"invalid input at .start_date: month 13 is out of range in "2024-13-01""#,
        ),
        (
            r#"{"start_date":"2023-02-01","end_date":"2023-02-29"}"#,
            r#"invalid input at .end_date: day 29 is out of range in "2023-02-29" (2023-02 has 28 days)"#,
        ),
        (
            r#"{"start_date":"1/2/2024","end_date":"2024-12-31"}"#,
            r#"invalid input at .start_date: expected a date as YYYY-MM-DD, got "1/2/2024""#,
        ),
        (
            r#"{"start_date":"2024-01-01","end_date":"2024-12-31","holidays":["2024-05-01","May 8"]}"#,
            r#"invalid input at .holidays[1]: expected a date as YYYY-MM-DD, got "May 8""#,
        ),
        // Type errors come from the SDK and name the field the same way.
        (
            r#"{"start_date":20240101,"end_date":"2024-12-31"}"#,
            "invalid input at .start_date: invalid type: integer `20240101`, expected a string",
        ),
        (
            r#"{"start_date":"2024-01-01"}"#,
            "invalid input: missing field `end_date`",
        ),
        (
            r#"{"start_date":"2024-01-01","end_date":"2024-01-02","weekend":["sunday","funday"]}"#,
            "invalid input at .weekend[1]: unknown variant `funday`, expected one of `monday`, `tuesday`, \
             `wednesday`, `thursday`, `friday`, `saturday`, `sunday`",
        ),
        (
            r#"{"start_date":"2024-01-01","end_date":"2024-01-02","country":"DE"}"#,
            "invalid input at .country: unknown field `country`, expected one of `start_date`, `end_date`, \
             `holidays`, `weekend`",
        ),
        (
            r#""2024-01-01""#,
            r#"invalid input: invalid type: string "2024-01-01", expected struct LeaveRequest"#,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(function_error(LEAVE, input), want, "{input}");
    }
}

// ---------------------------------------------------------------------------
// redact_pii

const PII: &str = "redact_pii";

#[test]
fn redacts_every_kind() {
    let out = ok(
        PII,
        r#"{"text":"Hi, I'm Jane (jane.doe@example.com, +1 415-555-0132). SSN 123-45-6789, card 4111 1111 1111 1111. Please update my address."}"#,
    );
    assert_eq!(
        out,
        json!({
            "redacted": "Hi, I'm Jane ([EMAIL], [PHONE]). SSN [SSN], card [CARD]. Please update my address.",
            "found": {"email": 1, "phone": 1, "ssn": 1, "card": 1},
            "total": 4
        })
    );
}

#[test]
fn redacts_phone_formats_and_keeps_unicode() {
    let out = ok(
        PII,
        r#"{"text":"Zoë: (415) 555-0132, 415.555.0199, +44 20 7946 0958 — Grüße an max.mustermann@firma.de"}"#,
    );
    assert_eq!(
        out,
        json!({
            "redacted": "Zoë: [PHONE], [PHONE], [PHONE] — Grüße an [EMAIL]",
            "found": {"email": 1, "phone": 3},
            "total": 4
        })
    );
}

#[test]
fn card_numbers_failing_luhn_are_not_masked() {
    let text = "card 4111 1111 1111 1112, order 4111111111111112, amex 3782 822463 10005";
    let out = ok(PII, &json!({ "text": text }).to_string());
    assert_eq!(
        out,
        json!({
            "redacted": "card 4111 1111 1111 1112, order 4111111111111112, amex [CARD]",
            "found": {"card": 1},
            "total": 1
        })
    );
}

#[test]
fn look_alikes_are_left_alone() {
    let text = "Invoice 2024-01-15 10:30, total 1,234,567.89, host 192.168.100.200, SSN 666-12-3456, \
                user@localhost, ID5551234567, version 1.2.3";
    let out = ok(PII, &json!({ "text": text }).to_string());
    assert_eq!(out, json!({ "redacted": text, "found": {}, "total": 0 }));
}

/// The scanner is linear: four times the text costs about four times the
/// fuel, and a 300 KB text of dense PII stays within the default budget.
#[test]
fn redaction_cost_is_linear() {
    let line = "Call 555-123-4567 or mail a.b@example.org; card 4111 1111 1111 1111, ref 12345. ";
    let run = |n: usize| {
        let input = json!({ "text": line.repeat(n) }).to_string();
        let e = call(PII, &input);
        assert_eq!(e.kind, OutcomeKind::Ok, "{n}: {:?}", e.message);
        let out: Value = serde_json::from_slice(&e.output.expect("output")).expect("json");
        assert_eq!(out["total"], json!(3 * n));
        e.fuel_used
    };
    let (small, large) = (run(100), run(400));
    assert!(
        large < small * 9 / 2,
        "100 lines: {small} fuel, 400 lines: {large}"
    );
    let huge = run(3700); // about 300 KB
    assert!(huge < Limits::default().fuel / 2, "{huge}");
}

#[test]
fn redacts_only_the_kinds_asked_for() {
    let out = ok(
        PII,
        r#"{"text":"a@b.io 123-45-6789 555-123-4567","kinds":["ssn"]}"#,
    );
    assert_eq!(
        out,
        json!({"redacted":"a@b.io [SSN] 555-123-4567","found":{"ssn":1},"total":1})
    );
}

#[test]
fn redact_rejects_bad_input() {
    assert_eq!(
        function_error(PII, r#"{"txt":"x"}"#),
        "invalid input at .txt: unknown field `txt`, expected `text` or `kinds`"
    );
    assert_eq!(
        function_error(PII, r#"{"kinds":[]}"#),
        "invalid input: missing field `text`"
    );
    assert_eq!(
        function_error(PII, r#"{"text":"x","kinds":[]}"#),
        "invalid input at .kinds: must name at least one kind (email, phone, ssn, card)"
    );
    assert_eq!(
        function_error(PII, r#"{"text":"x","kinds":["iban"]}"#),
        "invalid input at .kinds[0]: unknown variant `iban`, expected one of `email`, `phone`, `ssn`, `card`"
    );
    assert_eq!(
        function_error(PII, r#"{"text":["x"]}"#),
        "invalid input at .text: invalid type: sequence, expected a string"
    );
}

// ---------------------------------------------------------------------------
// invoice_total

const INVOICE: &str = "invoice_total";

#[test]
fn invoice_with_two_tax_rates() {
    // Decimal strings and JSON numbers (19.99 read from its text, not f64).
    let out = ok(
        INVOICE,
        r#"{"currency":"EUR","items":[
            {"description":"Consulting hours","quantity":"12.5","unit_price":"120.00","tax_percent":"19"},
            {"description":"Book","quantity":3,"unit_price":19.99,"tax_percent":"7"},
            {"description":"Cable","quantity":"2","unit_price":"4.175","tax_percent":19.0}]}"#,
    );
    assert_eq!(
        out,
        json!({
            "currency": "EUR",
            "minor_units": 2,
            "lines": [
                {"description":"Consulting hours","net":"1500.00","tax_percent":"19","tax":"285.00","total":"1785.00"},
                {"description":"Book","net":"59.97","tax_percent":"7","tax":"4.20","total":"64.17"},
                {"description":"Cable","net":"8.35","tax_percent":"19","tax":"1.59","total":"9.94"}
            ],
            "subtotal": "1568.32",
            "tax_total": "290.79",
            "total": "1859.11",
            "tax_by_rate": [
                {"tax_percent":"7","net":"59.97","tax":"4.20"},
                {"tax_percent":"19","net":"1508.35","tax":"286.59"}
            ],
            "rounding": "half_up per line to 2 decimals"
        })
    );
}

#[test]
fn invoice_reads_json_numbers_exactly() {
    // As f64, 1.005 is 1.00499999999999989... and 2.675 is 2.67499999...:
    // rounding those would give 1.00 and 2.67.
    let out = ok(
        INVOICE,
        r#"{"currency":"USD","items":[{"quantity":1,"unit_price":1.005,"tax_percent":0},{"quantity":1,"unit_price":2.675,"tax_percent":10}]}"#,
    );
    assert_eq!(
        out,
        json!({
            "currency": "USD",
            "minor_units": 2,
            "lines": [
                {"description":"","net":"1.01","tax_percent":"0","tax":"0.00","total":"1.01"},
                {"description":"","net":"2.68","tax_percent":"10","tax":"0.27","total":"2.95"}
            ],
            "subtotal": "3.69",
            "tax_total": "0.27",
            "total": "3.96",
            "tax_by_rate": [
                {"tax_percent":"0","net":"1.01","tax":"0.00"},
                {"tax_percent":"10","net":"2.68","tax":"0.27"}
            ],
            "rounding": "half_up per line to 2 decimals"
        })
    );
}

#[test]
fn invoice_rounding_modes() {
    let items = r#"[{"quantity":"1","unit_price":"2.345","tax_percent":"0"},{"quantity":"1","unit_price":"2.355","tax_percent":"0"},{"description":"Return","quantity":"-1","unit_price":"2.345","tax_percent":"0"}]"#;
    let even = ok(
        INVOICE,
        &format!(r#"{{"currency":"EUR","rounding":"half_even","items":{items}}}"#),
    );
    let nets: Vec<&Value> = even["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| &l["net"])
        .collect();
    assert_eq!(nets, ["2.34", "2.36", "-2.34"]);
    assert_eq!(even["rounding"], "half_even per line to 2 decimals");
    let up = ok(INVOICE, &format!(r#"{{"currency":"EUR","items":{items}}}"#));
    let nets: Vec<&Value> = up["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| &l["net"])
        .collect();
    assert_eq!(nets, ["2.35", "2.36", "-2.35"]);
    assert_eq!(
        (&up["subtotal"], &up["total"]),
        (&json!("2.36"), &json!("2.36"))
    );
}

#[test]
fn invoice_in_zero_and_three_decimal_currencies() {
    let jpy = ok(
        INVOICE,
        r#"{"currency":"JPY","items":[{"description":"Ramen","quantity":3,"unit_price":980,"tax_percent":10},{"description":"Tea","quantity":1,"unit_price":150,"tax_percent":8}]}"#,
    );
    assert_eq!(
        jpy,
        json!({
            "currency":"JPY","minor_units":0,
            "lines":[
                {"description":"Ramen","net":"2940","tax_percent":"10","tax":"294","total":"3234"},
                {"description":"Tea","net":"150","tax_percent":"8","tax":"12","total":"162"}
            ],
            "subtotal":"3090","tax_total":"306","total":"3396",
            "tax_by_rate":[{"tax_percent":"8","net":"150","tax":"12"},{"tax_percent":"10","net":"2940","tax":"294"}],
            "rounding":"half_up per line to 0 decimals"
        })
    );
    let kwd = ok(
        INVOICE,
        r#"{"currency":"KWD","items":[{"description":"Service","quantity":"1.5","unit_price":"10.125","tax_percent":"5"}]}"#,
    );
    assert_eq!(
        kwd,
        json!({
            "currency":"KWD","minor_units":3,
            "lines":[{"description":"Service","net":"15.188","tax_percent":"5","tax":"0.759","total":"15.947"}],
            "subtotal":"15.188","tax_total":"0.759","total":"15.947",
            "tax_by_rate":[{"tax_percent":"5","net":"15.188","tax":"0.759"}],
            "rounding":"half_up per line to 3 decimals"
        })
    );
}

#[test]
fn invoice_rejects_bad_input_naming_the_field() {
    let cases = [
        (
            r#"{"currency":"EURO","items":[{"quantity":1,"unit_price":"1","tax_percent":0}]}"#,
            r#"invalid input at .currency: "EURO" is not an ISO 4217 currency code"#,
        ),
        (
            r#"{"currency":"EUR","items":[]}"#,
            "invalid input at .items: an invoice needs at least one line item",
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"1","tax_percent":0},{"quantity":1,"unit_price":"1","tax_percent":"150"}]}"#,
            "invalid input at .items[1].tax_percent: 150 is not between 0 and 100",
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"12,50","tax_percent":0}]}"#,
            r#"invalid input at .items[0].unit_price: "12,50" is not a decimal number"#,
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":true,"unit_price":"1","tax_percent":0}]}"#,
            r#"invalid input at .items[0].quantity: expected a decimal string like "19.99" or a number, got true"#,
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"0.0000000000000000001","tax_percent":0}]}"#,
            r#"invalid input at .items[0].unit_price: "0.0000000000000000001" has more than 18 digits after the decimal point"#,
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"tax_percent":0}]}"#,
            "invalid input at .items[0]: missing field `unit_price`",
        ),
        (
            r#"{"currency":"EUR","rounding":"up","items":[{"quantity":1,"unit_price":"1","tax_percent":0}]}"#,
            "invalid input at .rounding: unknown variant `up`, expected `half_up` or `half_even`",
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":"999999999999999999999999","unit_price":"999999999999999999999999","tax_percent":0}]}"#,
            "invalid input at .items[0]: amount too large",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(function_error(INVOICE, input), want, "{input}");
    }
}

// ---------------------------------------------------------------------------
// validate_iban (C, no SDK)

const IBAN: &str = "validate_iban";

#[test]
fn iban_valid_ones() {
    assert_eq!(
        ok(IBAN, r#"{"iban":"DE89 3704 0044 0532 0130 00"}"#),
        json!({"valid":true,"country":"DE","iban":"DE89370400440532013000"})
    );
    assert_eq!(
        ok(IBAN, r#"{ "iban" : "gb82 west 1234 5698 7654 32" }"#),
        json!({"valid":true,"country":"GB","iban":"GB82WEST12345698765432"})
    );
    assert_eq!(
        ok(IBAN, r#"{"iban":"NO9386011117947"}"#),
        json!({"valid":true,"country":"NO","iban":"NO9386011117947"})
    );
    // JSON escapes are decoded before checking.
    assert_eq!(
        ok(IBAN, r#"{"iban":"\u0046R14 2004 1010 0505 0001 3M02 606"}"#),
        json!({"valid":true,"country":"FR","iban":"FR1420041010050500013M02606"})
    );
}

#[test]
fn iban_invalid_ones_are_answers_not_errors() {
    let cases = [
        (
            "DE88 3704 0044 0532 0130 00",
            json!({"valid":false,"country":"DE","reason":"checksum mismatch"}),
        ),
        (
            "DE89 3704 0044 0532 0130 0",
            json!({"valid":false,"country":"DE","reason":"wrong length for the country: expected 22 characters, got 21"}),
        ),
        (
            "ZZ89 3704 0044 0532 0130 00",
            json!({"valid":false,"country":"ZZ","reason":"country code not in the IBAN registry"}),
        ),
        (
            "DE89-3704-0044",
            json!({"valid":false,"country":"DE","reason":"only letters, digits and spaces are allowed"}),
        ),
        ("", json!({"valid":false,"reason":"empty"})),
        (
            "DE8",
            json!({"valid":false,"country":"DE","reason":"too short"}),
        ),
        (
            "1234567890",
            json!({"valid":false,"reason":"must start with a two-letter country code"}),
        ),
        (
            "DEXX370400440532013000",
            json!({"valid":false,"country":"DE","reason":"check digits (characters 3 and 4) must be digits"}),
        ),
        (
            "DE89370400440532013000DE89370400440532013000",
            json!({"valid":false,"country":"DE","reason":"longer than 34 characters"}),
        ),
    ];
    for (iban, want) in cases {
        assert_eq!(
            ok(IBAN, &json!({ "iban": iban }).to_string()),
            want,
            "{iban}"
        );
    }
}

#[test]
fn iban_bad_input_is_a_function_error() {
    let cases = [
        (r#"{}"#, "invalid input: missing field `iban`"),
        (r#"{"iban":5}"#, "invalid input at .iban: expected a string"),
        (
            r#"{"iban":null}"#,
            "invalid input at .iban: expected a string",
        ),
        (
            r#"["DE89370400440532013000"]"#,
            "invalid input: expected an object with a string field `iban`",
        ),
        (
            r#""DE89370400440532013000""#,
            "invalid input: expected an object with a string field `iban`",
        ),
        (
            r#"{"iban":"DE89370400440532013000","bic":"X"}"#,
            "invalid input at .bic: unknown field `bic`, expected `iban`",
        ),
        (
            r#"{"iban":"a","iban":"b"}"#,
            "invalid input: duplicate field `iban`",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(function_error(IBAN, input), want, "{input}");
    }
}

// ---------------------------------------------------------------------------
// SDK behaviours, through the test-only probe

const PROBE: &str = "sdk_probe";

#[test]
fn sdk_passes_input_and_typed_context() {
    assert_eq!(
        ok(PROBE, r#"{"action":"echo","message":"hi","count":3}"#),
        json!({"message":"hi","count":3})
    );
    let ctx = Context {
        tenant_id: "acme".into(),
        agent_id: "hr-bot".into(),
        user_id: "u-42".into(),
        function: "sdk_probe".into(),
        version: "3".into(),
        execution_id: "0193c9a4e1f27c3a9d1e5b0c7f00a1b2".into(),
    };
    let e = call_with(PROBE, r#"{"action":"context"}"#, &ctx, Limits::default());
    assert_eq!(e.kind, OutcomeKind::Ok, "{:?}", e.message);
    let out: Value = serde_json::from_slice(&e.output.expect("output")).expect("json");
    assert_eq!(out, serde_json::to_value(&ctx).expect("context json"));
}

#[test]
fn sdk_logs_at_each_level() {
    let e = call(PROBE, r#"{"action":"log","message":"hello"}"#);
    assert_eq!(e.kind, OutcomeKind::Ok, "{:?}", e.message);
    let logs: Vec<(LogLevel, LogStream, &str)> = e
        .logs
        .iter()
        .map(|l| (l.level, l.stream, l.message.as_str()))
        .collect();
    assert_eq!(
        logs,
        [
            (LogLevel::Trace, LogStream::Log, "hello"),
            (LogLevel::Debug, LogStream::Log, "hello (debug)"),
            (LogLevel::Info, LogStream::Log, "hello (info)"),
            (LogLevel::Warn, LogStream::Log, "hello (warn)"),
            (LogLevel::Error, LogStream::Log, "hello (error)"),
        ]
    );
}

#[test]
fn sdk_function_errors_and_invalid_input() {
    assert_eq!(
        function_error(PROBE, r#"{"action":"fail","message":"no such employee"}"#),
        "no such employee"
    );
    assert_eq!(
        function_error(PROBE, r#"{"action":"echo","count":"three"}"#),
        r#"invalid input at .count: invalid type: string "three", expected u32"#
    );
    assert_eq!(
        function_error(PROBE, r#"{"action":"echo","count":-1}"#),
        "invalid input at .count: invalid value: integer `-1`, expected u32"
    );
    assert_eq!(
        function_error(PROBE, r#"{"action":"nope"}"#),
        "invalid input at .action: unknown variant `nope`, expected one of `echo`, `context`, `log`, `fail`, \
         `panic`, `log_then_panic`, `alloc`"
    );
    assert_eq!(
        function_error(PROBE, "42"),
        "invalid input: invalid type: integer `42`, expected struct Probe"
    );
}

#[test]
fn sdk_panic_is_a_trap_with_the_message() {
    let e = call(PROBE, r#"{"action":"panic","message":"boom"}"#);
    assert_eq!(e.kind, OutcomeKind::Trap, "{:?}", e.message);
    assert_eq!(e.trap_code, Some("unreachable"));
    let msg = e.message.expect("message");
    assert!(msg.contains("; guest: panicked at "), "{msg}");
    // `panicked at FILE:LINE:COL: MESSAGE`, like Rust's own hook.
    assert!(
        msg.contains("src/lib.rs:") && msg.ends_with(": boom"),
        "{msg}"
    );
    let last = e.logs.last().expect("the hook logged the panic");
    assert_eq!((last.level, last.stream), (LogLevel::Error, LogStream::Log));
    assert!(
        last.message.starts_with("panicked at ") && last.message.ends_with(": boom"),
        "{}",
        last.message
    );
}

#[test]
fn sdk_panic_message_wins_over_earlier_error_lines() {
    let e = call(
        PROBE,
        r#"{"action":"log_then_panic","message":"formatted","count":7}"#,
    );
    assert_eq!(e.kind, OutcomeKind::Trap, "{:?}", e.message);
    let msg = e.message.expect("message");
    assert!(msg.ends_with(": formatted (count 7)"), "{msg}");
    assert!(!msg.contains("about to panic"), "{msg}");
}

#[test]
fn sdk_allocation_failure_is_a_memory_limit() {
    let e = call(PROBE, r#"{"action":"alloc","bytes":1048576}"#);
    assert_eq!(e.kind, OutcomeKind::Ok, "{:?}", e.message);
    assert_eq!(e.output.as_deref(), Some(&br#"{"allocated":1048576}"#[..]));
    assert!(e.memory_peak_bytes >= 1 << 20, "{}", e.memory_peak_bytes);

    let limits = Limits {
        memory_bytes: 4 << 20,
        ..Limits::default()
    };
    let e = call_with(
        PROBE,
        r#"{"action":"alloc","bytes":16777216}"#,
        &Context::local(),
        limits,
    );
    assert_eq!(e.kind, OutcomeKind::MemoryLimit, "{:?}", e.message);
    // The SDK's allocator says why before Rust aborts.
    let last = e.logs.last().map(|l| (l.level, l.message.as_str()));
    assert_eq!(
        last,
        Some((
            LogLevel::Error,
            "memory allocation failed: memory.grow refused"
        ))
    );
}

#[test]
fn sdk_fuel_limit_is_enforced() {
    let limits = Limits {
        fuel: 2_000,
        ..Limits::default()
    };
    let e = call_with(PROBE, r#"{"action":"echo"}"#, &Context::local(), limits);
    assert_eq!(e.kind, OutcomeKind::FuelExhausted, "{:?}", e.message);
}

#[test]
fn missing_modules_fail_with_the_build_command() {
    let err = std::panic::catch_unwind(|| wasm_bytes("no_such_function")).expect_err("must fail");
    let msg = err.downcast_ref::<String>().expect("formatted panic");
    assert!(msg.contains("cargo xtask build-functions"), "{msg}");
}
