//! Static validation: what is refused before compiling, with which kind,
//! and what the inspection report says.

use aifn_runtime::ModuleError;

use crate::*;

fn refuse(rt: &Runtime, bytes: &[u8]) -> ModuleError {
    rt.load(bytes).expect_err("refused")
}

fn refuse_wat(rt: &Runtime, wat: &str) -> ModuleError {
    refuse(rt, &wat::parse_str(wat).expect("valid wat"))
}

const MINIMAL: &str = r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#;

#[test]
fn garbage_and_truncated_modules_are_invalid() {
    let rt = runtime();
    for bytes in [
        &b""[..],
        b"\0asm",
        b"hello world, not wasm",
        b"\0asm\x01\0\0\0\x01\x05",
    ] {
        let e = refuse(&rt, bytes);
        assert_eq!(e.kind(), OutcomeKind::InvalidModule, "{e}");
    }
    let good = wat::parse_str(MINIMAL).expect("wat");
    for cut in 9..good.len() {
        let e = refuse(&rt, &good[..cut]);
        assert_eq!(e.kind(), OutcomeKind::InvalidModule, "cut at {cut}: {e}");
    }
    assert!(rt.load(&good).is_ok());
}

#[test]
fn missing_or_mistyped_exports_are_invalid() {
    let rt = runtime();
    let e = refuse_wat(&rt, r#"(module (memory (export "memory") 1))"#);
    assert!(
        matches!(
            e,
            ModuleError::MissingExport {
                name: "aifn_call",
                ..
            }
        ),
        "{e}"
    );
    let e = refuse_wat(
        &rt,
        r#"(module (memory 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
    );
    assert!(
        matches!(e, ModuleError::MissingExport { name: "memory", .. }),
        "{e}"
    );
    let e = refuse_wat(
        &rt,
        r#"(module (memory (export "memory") 1) (func (export "aifn_call") (param i32) (result i32) (i32.const 0)))"#,
    );
    assert!(
        matches!(
            e,
            ModuleError::WrongExport {
                name: "aifn_call",
                ..
            }
        ),
        "{e}"
    );
    let e = refuse_wat(
        &rt,
        r#"(module (memory (export "memory") 1) (global (export "aifn_call") i32 (i32.const 0)))"#,
    );
    assert!(
        matches!(
            e,
            ModuleError::WrongExport {
                name: "aifn_call",
                ..
            }
        ),
        "{e}"
    );
    let e = refuse_wat(
        &rt,
        r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)) (func (export "_initialize") (result i32) (i32.const 0)))"#,
    );
    assert!(
        matches!(
            e,
            ModuleError::WrongExport {
                name: "_initialize",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), OutcomeKind::InvalidModule);
}

#[test]
fn imports_outside_the_abi_and_wasi_are_forbidden() {
    let rt = runtime();
    let with_import = |imp: &str| {
        format!(
            r#"(module {imp} (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#
        )
    };
    let cases = [
        (
            r#"(import "env" "http_get" (func (param i32 i32) (result i32)))"#,
            "env.http_get",
        ),
        (
            r#"(import "aifn" "read_file" (func (param i32)))"#,
            "aifn.read_file",
        ),
        (
            r#"(import "aifn" "input_len" (func (result i64)))"#,
            "aifn.input_len",
        ),
        (
            r#"(import "aifn" "log" (func (param i32 i32)))"#,
            "aifn.log",
        ),
        (
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1.fd_write",
        ),
        (
            r#"(import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1.sock_open",
        ),
        (r#"(import "env" "memory" (memory 1))"#, "env.memory"),
        (r#"(import "aifn" "counter" (global i32))"#, "aifn.counter"),
        (r#"(import "env" "table" (table 1 funcref))"#, "env.table"),
    ];
    for (imp, name) in cases {
        let e = refuse_wat(&rt, &with_import(imp));
        assert_eq!(e.kind(), OutcomeKind::ForbiddenImport, "{imp}: {e}");
        assert!(e.to_string().starts_with(name), "{e}");
    }
    let e = refuse_wat(
        &rt,
        &with_import(r#"(import "aifn" "input_len" (func (result i64)))"#),
    );
    assert_eq!(
        e.to_string(),
        "aifn.input_len: wrong signature () -> i64, the host provides () -> i32"
    );
    // The same imports with the right signatures are accepted.
    for imp in [
        r#"(import "aifn" "input_len" (func (result i32)))"#,
        r#"(import "aifn" "log" (func (param i32 i32 i32)))"#,
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
    ] {
        assert!(
            rt.load(&wat::parse_str(with_import(imp)).expect("wat"))
                .is_ok(),
            "{imp}"
        );
    }
}

#[test]
fn forbidden_features_are_named() {
    let rt = runtime();
    let cases = [
        (
            r#"(module (memory (export "memory") 1 1 shared) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
            "threads",
        ),
        (
            r#"(module (memory (export "memory") i64 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
            "memory64",
        ),
        (
            r#"(module (memory (export "memory") 1) (memory 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
            "multi_memory",
        ),
        (
            r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32)
                 (drop (i32x4.relaxed_trunc_f32x4_s (v128.const i32x4 0 0 0 0))) (i32.const 0)))"#,
            "relaxed_simd",
        ),
        (
            r#"(module (memory (export "memory") 1) (tag $e) (func (export "aifn_call") (result i32) (throw $e)))"#,
            "exceptions",
        ),
        (
            r#"(module (memory (export "memory") 1) (global externref (ref.null extern)) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
            "externref",
        ),
    ];
    for (wat, feature) in cases {
        let e = refuse_wat(&rt, wat);
        assert_eq!(
            e,
            ModuleError::ForbiddenFeature {
                feature: feature.into()
            },
            "{wat}"
        );
        assert_eq!(e.kind(), OutcomeKind::InvalidModule);
    }
}

#[test]
fn static_caps_inside_and_over() {
    let limits = Limits {
        functions: 10,
        function_body_bytes: 100,
        locals: 20,
        module_bytes: 2000,
        ..Limits::default()
    };
    let rt = runtime_with(limits);
    let funcs = |n: usize| {
        let body = "(func)".repeat(n);
        format!(
            r#"(module (memory (export "memory") 1) {body} (func (export "aifn_call") (result i32) (i32.const 0)))"#
        )
    };
    assert!(rt.load(&wat::parse_str(funcs(9)).expect("wat")).is_ok());
    let e = refuse_wat(&rt, &funcs(10));
    assert_eq!(
        e,
        ModuleError::OverCap {
            what: "functions",
            actual: 11,
            limit: 10
        }
    );

    let locals = |n: usize| {
        format!(
            r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (local {}) (i32.const 0)))"#,
            "i32 ".repeat(n)
        )
    };
    assert!(rt.load(&wat::parse_str(locals(20)).expect("wat")).is_ok());
    assert!(matches!(
        refuse_wat(&rt, &locals(21)),
        ModuleError::OverCap {
            what: "locals in one function",
            ..
        }
    ));

    let body = |n: usize| {
        format!(
            r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) {} (i32.const 0)))"#,
            "nop ".repeat(n)
        )
    };
    assert!(rt.load(&wat::parse_str(body(90)).expect("wat")).is_ok());
    assert!(matches!(
        refuse_wat(&rt, &body(200)),
        ModuleError::OverCap {
            what: "function body size (bytes)",
            ..
        }
    ));

    let mut big = wat::parse_str(MINIMAL).expect("wat");
    // A custom section pads the module past the size cap.
    big.extend_from_slice(&[0, 0x90, 0x0f, 1, b'x']);
    big.resize(big.len() + 2000 - 4, 0);
    let e = refuse(&rt, &big);
    assert!(
        matches!(e, ModuleError::TooLarge { limit: 2000, .. }),
        "{e}"
    );
}

#[test]
fn initial_memory_and_tables_over_the_host_maximum_are_invalid() {
    let rt = runtime();
    let e = refuse_wat(
        &rt,
        r#"(module (memory (export "memory") 1025) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
    );
    assert!(
        matches!(
            e,
            ModuleError::OverCap {
                what: "initial memory (bytes)",
                ..
            }
        ),
        "{e}"
    );
    assert!(rt.load(&wat::parse_str(r#"(module (memory (export "memory") 1024) (func (export "aifn_call") (result i32) (i32.const 0)))"#).expect("wat")).is_ok());
    let e = refuse_wat(
        &rt,
        r#"(module (memory (export "memory") 1) (table 10001 funcref) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
    );
    assert!(
        matches!(
            e,
            ModuleError::OverCap {
                what: "initial table elements",
                ..
            }
        ),
        "{e}"
    );
    let e = refuse_wat(
        &rt,
        r#"(module (memory (export "memory") 1) (table 1 funcref) (table 1 funcref) (func (export "aifn_call") (result i32) (i32.const 0)))"#,
    );
    assert!(
        matches!(e, ModuleError::OverCap { what: "tables", .. }),
        "{e}"
    );
}

#[test]
fn components_are_not_modules() {
    let rt = runtime();
    let e = refuse_wat(&rt, "(component)");
    assert!(matches!(e, ModuleError::NotWasm { .. }), "{e}");
}

#[test]
fn the_report_describes_the_module() {
    let rt = runtime();
    let wat = format!(
        r#"(module {IMPORTS}
          (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
          (memory (export "memory") 2 16)
          (table 4 funcref)
          (func $f)
          (func (export "aifn_call") (result i32)
            (memory.copy (i32.const 0) (i32.const 1) (i32.const 1))
            (i32.const 0)))"#
    );
    let bytes = wat::parse_str(&wat).expect("wat");
    let r = rt.inspect(&bytes).expect("valid");
    use sha2::Digest;
    assert_eq!(r.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(r.size_bytes, bytes.len() as u64);
    assert_eq!(r.imports.len(), 7);
    assert_eq!(r.imports[0].qualified(), "aifn.input_len");
    assert_eq!(r.imports[0].signature, "() -> i32");
    assert_eq!(r.imports[6].signature, "(i32, i32) -> i32");
    assert!(r.uses_wasi);
    let exports: Vec<_> = r
        .exports
        .iter()
        .map(|e| (e.name.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(exports, [("memory", "memory"), ("aifn_call", "func")]);
    assert_eq!(
        r.memory,
        Some(aifn_types::MemoryInfo {
            min_pages: 2,
            max_pages: Some(16)
        })
    );
    assert_eq!(r.table, Some(aifn_types::TableInfo { min: 4, max: None }));
    assert_eq!(r.function_count, 2);
    assert!(r.code_size_bytes > 0);
    assert_eq!(r.features, ["bulk_memory"]);
    assert!(!r.has_start);
    let plain = rt
        .inspect(&wat::parse_str(MINIMAL).expect("wat"))
        .expect("valid");
    assert!(plain.features.is_empty());
    assert!(!plain.uses_wasi);
}
