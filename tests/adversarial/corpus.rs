//! The corpus table (`tests/corpus/expected.toml`), the modules it names,
//! and each case run once; also the seeds the fuzzers start from.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use aifn_runtime::{Context, Invocation, Limits, Runtime};
use aifn_test_support::ECHO_WAT;
use aifn_types::{LimitsRequest, OutcomeKind};
use serde::Deserialize;

use crate::{MIB, case_defaults, corpus_dir, runtime, wat};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    case: Vec<Spec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    file: Option<String>,
    generate: Option<String>,
    kind: String,
    trap: Option<String>,
    input: Option<String>,
    limits: Option<LimitsRequest>,
}

/// One hostile module, ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) kind: OutcomeKind,
    pub(crate) trap: Option<String>,
    pub(crate) input: Vec<u8>,
    pub(crate) limits: Limits,
}

/// A tiny deterministic generator for garbage bytes.
fn garbage(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const MINIMAL: &str = r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#;

/// The modules the table names by `generate`.
fn generate(what: &str) -> Vec<u8> {
    let echo = || wat(ECHO_WAT);
    match what {
        // 200,000 tiny functions: refused by the function cap, before compiling.
        "many_functions" => {
            let mut m = String::from(
                r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0))"#,
            );
            m.push_str(&"(func)".repeat(200_000));
            m.push(')');
            wat(&m)
        }
        // One 300,000-byte function body: over the 256 KiB body cap.
        "huge_function_body" => wat(&format!(
            r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) {} (i32.const 0)))"#,
            "nop ".repeat(300_000)
        )),
        // A 5 MiB custom section: over the 4 MiB module cap, refused unparsed.
        "module_over_size_limit" => {
            let mut b = wat(MINIMAL);
            let payload = 5 * MIB as usize;
            b.push(0); // custom section
            let mut len = payload + 2;
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    b.push(byte);
                    break;
                }
                b.push(byte | 0x80);
            }
            b.extend_from_slice(&[1, b'x']);
            b.resize(b.len() + payload, 0);
            b
        }
        "too_many_locals" => wat(&format!(
            r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (local {}) (i32.const 0)))"#,
            "i64 ".repeat(20_000)
        )),
        // 1,000 nested blocks: valid and small; must compile and run.
        "deep_block_nesting" => wat(&format!(
            r#"(module (import "aifn" "output_write" (func $w (param i32 i32)))
                 (memory (export "memory") 1) (data (i32.const 0) "[]")
                 (func (export "aifn_call") (result i32) {} (call $w (i32.const 0) (i32.const 2)) {} (i32.const 0)))"#,
            "(block ".repeat(1_000),
            ")".repeat(1_000)
        )),
        // Within every static cap, but slow to compile: 2 functions that
        // each keep 20,000 values live at once (140 KB each, under the
        // 256 KiB body cap), so the register allocator needs ~1.3 s per
        // function here, far past the 1 s deadline on any machine of this
        // kind, while a long straight-line body of the same size compiles
        // in well under a second.
        "slow_to_compile" => {
            let live: String = (0..20_000)
                .map(|i| format!("(i32.mul (local.get $y) (i32.const {}))", i + 3))
                .collect();
            let body = format!("{live}{}", "(i32.add)".repeat(19_999));
            let funcs: String = (0..2)
                .map(|_| format!("(func (param $y i32) (result i32) {body})"))
                .collect();
            wat(&format!(
                r#"(module (memory (export "memory") 1) {funcs} (func (export "aifn_call") (result i32) (i32.const 0)))"#
            ))
        }
        // An exact function import (custom-descriptors encoding, kind
        // 0x20): wasmparser reads it, wasmtime cannot compile it. Found by
        // fuzz/validate.
        "exact_function_import" => {
            let mut b = echo();
            let pat = b"\x0ainput_read\x00";
            let at = b
                .windows(pat.len())
                .position(|w| w == pat)
                .expect("echo imports input_read");
            b[at + pat.len() - 1] = 0x20;
            b
        }
        "garbage_random" => garbage(0x9e37_79b9_7f4a_7c15, 4096),
        "garbage_after_header" => {
            let mut b = b"\0asm\x01\0\0\0".to_vec();
            b.extend(garbage(42, 4096));
            b
        }
        "empty" => Vec::new(),
        "truncated_header" => b"\0asm".to_vec(),
        "truncated_half" => {
            let b = echo();
            b[..b.len() / 2].to_vec()
        }
        "truncated_last_byte" => {
            let b = echo();
            b[..b.len() - 1].to_vec()
        }
        // A component, not a core module.
        "component" => b"\0asm\x0d\0\x01\0".to_vec(),
        "wrong_version" => b"\0asm\x02\0\0\0".to_vec(),
        // A type section claiming 4 GiB.
        "section_length_overflow" => b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f\x01".to_vec(),
        other => panic!("unknown generator {other:?}"),
    }
}

fn apply(base: Limits, r: &LimitsRequest) -> Limits {
    Limits {
        fuel: r.fuel.unwrap_or(base.fuel),
        timeout_ms: r.timeout_ms.unwrap_or(base.timeout_ms),
        memory_bytes: r.memory_bytes.unwrap_or(base.memory_bytes),
        table_elements: r.table_elements.unwrap_or(base.table_elements),
        input_bytes: r.input_bytes.unwrap_or(base.input_bytes),
        output_bytes: r.output_bytes.unwrap_or(base.output_bytes),
        log_bytes: r.log_bytes.unwrap_or(base.log_bytes),
        ..base
    }
}

fn table() -> Table {
    let text = std::fs::read_to_string(corpus_dir().join("expected.toml"))
        .expect("tests/corpus/expected.toml");
    toml::from_str(&text).expect("expected.toml parses")
}

pub(crate) fn corpus() -> Vec<Case> {
    table()
        .case
        .into_iter()
        .map(|s| {
            let bytes = match (&s.file, &s.generate) {
                (Some(f), None) => wat(&std::fs::read_to_string(corpus_dir().join(f))
                    .unwrap_or_else(|e| panic!("{f}: {e}"))),
                (None, Some(g)) => generate(g),
                _ => panic!("case {} needs exactly one of file and generate", s.name),
            };
            Case {
                kind: s
                    .kind
                    .parse()
                    .unwrap_or_else(|e| panic!("case {}: {e}", s.name)),
                trap: s.trap,
                input: s.input.unwrap_or_else(|| "{}".into()).into_bytes(),
                limits: apply(case_defaults(), &s.limits.unwrap_or_default()),
                bytes: Arc::new(bytes),
                name: s.name,
            }
        })
        .collect()
}

/// What one run of a case ended in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Got {
    pub(crate) kind: OutcomeKind,
    pub(crate) trap: Option<String>,
    pub(crate) message: String,
}

pub(crate) fn run_case(rt: &Runtime, c: &Case, execution_id: &str) -> Got {
    match rt.load(&c.bytes) {
        Err(e) => Got {
            kind: e.kind(),
            trap: None,
            message: e.to_string(),
        },
        Ok(m) => {
            let ctx = Context {
                execution_id: execution_id.to_owned(),
                ..Context::local()
            };
            let e = rt.invoke(&m, &Invocation::new(&c.input, &ctx, c.limits));
            Got {
                kind: e.kind,
                trap: e.trap_code.map(str::to_owned),
                message: e.message.unwrap_or_default(),
            }
        }
    }
}

pub(crate) fn matches(c: &Case, g: &Got) -> bool {
    g.kind == c.kind && (c.trap.is_none() || c.trap == g.trap)
}

#[test]
fn the_corpus_table_is_complete_and_covers_every_kind() {
    let t = table();
    assert!(t.case.len() >= 25, "only {} cases", t.case.len());
    let names: BTreeSet<_> = t.case.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), t.case.len(), "case names must be unique");
    let listed: BTreeSet<_> = t.case.iter().filter_map(|c| c.file.clone()).collect();
    let on_disk: BTreeSet<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wat"))
        .collect();
    assert_eq!(
        listed, on_disk,
        "every .wat file of tests/corpus has a row in expected.toml, and every row's file exists"
    );
    let kinds: BTreeSet<_> = t.case.iter().map(|c| c.kind.as_str()).collect();
    // Every kind a module or a call can get in the runtime (the refusals of
    // who asked, and the output guard's `output_blocked`, are the service's,
    // tested there).
    let runtime_kinds = OutcomeKind::ALL
        .into_iter()
        .filter(|k| !k.is_refusal() && *k != OutcomeKind::OutputBlocked);
    for k in runtime_kinds {
        assert!(kinds.contains(k.as_str()), "no case expects {k}");
    }
}

#[test]
fn every_case_gets_its_exact_kind() {
    let rt = runtime(8);
    let cases = corpus();
    let mut wrong = Vec::new();
    for c in &cases {
        let g = run_case(&rt, c, "adversarial-once");
        if !matches(c, &g) {
            wrong.push(format!(
                "{}: expected {} {:?}, got {} {:?}: {}",
                c.name, c.kind, c.trap, g.kind, g.trap, g.message
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases got the wrong outcome:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Writes every corpus module as `<name>.wasm` into `$AIFN_FUZZ_SEEDS`
/// (used to seed `fuzz/seeds/validate`).
#[test]
#[ignore = "writes files; run on demand"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("AIFN_FUZZ_SEEDS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("seed dir");
    for c in corpus() {
        // Seeds stay small: libFuzzer's inputs are bounded anyway.
        if c.bytes.len() <= 64 * 1024 {
            std::fs::write(dir.join(format!("{}.wasm", c.name)), c.bytes.as_slice())
                .expect("write seed");
        }
    }
}
