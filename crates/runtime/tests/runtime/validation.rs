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

#[test]
fn the_module_size_cap_is_inclusive_for_inspect_and_load() {
    let bytes = wat::parse_str(MINIMAL).expect("wat");
    let size = bytes.len() as u64;
    let at = |module_bytes: u64| {
        runtime_with(Limits {
            module_bytes,
            ..Limits::default()
        })
    };
    let rt = at(size);
    assert!(rt.inspect(&bytes).is_ok());
    assert!(rt.load(&bytes).is_ok());
    let rt = at(size - 1);
    let over = ModuleError::TooLarge {
        size,
        limit: size - 1,
    };
    assert_eq!(rt.inspect(&bytes).expect_err("over"), over);
    assert_eq!(refuse(&rt, &bytes), over);
}

#[test]
fn the_header_is_eight_bytes() {
    let rt = runtime();
    // Exactly the header: a wasm module, which lacks the exports.
    assert_eq!(
        refuse(&rt, b"\0asm\x01\0\0\0"),
        ModuleError::MissingExport {
            name: "aifn_call",
            expected: "a function of type () -> i32"
        }
    );
    // One byte short of it: not wasm.
    assert!(matches!(
        refuse(&rt, b"\0asm\x01\0\0"),
        ModuleError::NotWasm { .. }
    ));
}

#[test]
fn a_function_body_exactly_at_the_cap_is_accepted() {
    let rt = runtime_with(Limits {
        function_body_bytes: 100,
        ..Limits::default()
    });
    // A body is its locals (1 byte), the nops, `i32.const 0` (2) and `end` (1).
    let body = |n: usize| {
        format!(
            r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) {} (i32.const 0)))"#,
            "nop ".repeat(n)
        )
    };
    assert!(rt.load(&wat::parse_str(body(96)).expect("wat")).is_ok());
    assert_eq!(
        refuse_wat(&rt, &body(97)),
        ModuleError::OverCap {
            what: "function body size (bytes)",
            actual: 101,
            limit: 100
        }
    );
}

#[test]
fn an_imported_function_may_be_exported_as_aifn_call_when_its_type_fits() {
    let rt = runtime();
    // input_len is () -> i32: it is the call, and returns the input's length.
    let wat = r#"(module (import "aifn" "input_len" (func $len (result i32)))
      (memory (export "memory") 1) (export "aifn_call" (func $len)))"#;
    let e = run(&rt, wat, "[1]");
    assert_kind(&e, OutcomeKind::FunctionError);
    assert_eq!(
        e.message.as_deref(),
        Some("the function returned error code 3")
    );
    let wat = r#"(module (import "aifn" "input_read" (func $read (param i32)))
      (memory (export "memory") 1) (export "aifn_call" (func $read)))"#;
    assert!(matches!(
        refuse_wat(&rt, wat),
        ModuleError::WrongExport {
            name: "aifn_call",
            ..
        }
    ));
}

#[test]
fn the_report_says_whether_there_is_a_start_function() {
    let rt = runtime();
    let wat = r#"(module (memory (export "memory") 1) (func $s) (start $s)
      (func (export "aifn_call") (result i32) (i32.const 0)))"#;
    let r = rt
        .inspect(&wat::parse_str(wat).expect("wat"))
        .expect("valid");
    assert!(r.has_start);
    let plain = rt
        .inspect(&wat::parse_str(MINIMAL).expect("wat"))
        .expect("valid");
    assert!(!plain.has_start);
}

#[test]
fn an_initial_table_exactly_at_the_host_maximum_is_accepted() {
    let rt = runtime();
    let table = |n: u32| {
        format!(
            r#"(module (memory (export "memory") 1) (table {n} funcref) (func (export "aifn_call") (result i32) (i32.const 0)))"#
        )
    };
    assert!(
        rt.load(&wat::parse_str(table(10_000)).expect("wat"))
            .is_ok()
    );
    assert_eq!(
        refuse_wat(&rt, &table(10_001)),
        ModuleError::OverCap {
            what: "initial table elements",
            actual: 10_001,
            limit: 10_000
        }
    );
}

#[test]
fn an_invalid_module_keeps_the_parsers_error_as_its_source() {
    let rt = runtime();
    let e = refuse(&rt, b"\0asm\x01\0\0\0\x01\x05");
    let ModuleError::Invalid(parsed) = &e else {
        panic!("not invalid: {e:?}");
    };
    assert_eq!(
        e.to_string(),
        format!(
            "invalid wasm at offset {}: {}",
            parsed.offset(),
            parsed.message()
        )
    );
    let source = std::error::Error::source(&e).expect("a source");
    let same = source.downcast_ref::<aifn_runtime::WasmError>();
    assert_eq!(same, Some(parsed));
    assert_eq!(parsed.error().offset(), parsed.offset());
    assert_eq!(parsed.error().message(), parsed.message());
    assert!(!parsed.message().is_empty());
    assert_eq!(parsed.to_string(), parsed.error().to_string());
    // The same bytes refused twice compare equal: same offset, same words;
    // other bytes refused elsewhere do not.
    assert_eq!(refuse(&rt, b"\0asm\x01\0\0\0\x01\x05"), e);
    let other = refuse(&rt, b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00\x00\x07");
    assert!(matches!(other, ModuleError::Invalid(_)), "{other:?}");
    assert_ne!(other, e);
}

#[test]
fn the_report_uses_wasi_only_with_a_wasi_import() {
    let rt = runtime();
    let with = |imports: &str| {
        let wat = format!(
            r#"(module {imports} (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#
        );
        rt.inspect(&wat::parse_str(wat).expect("wat"))
            .expect("valid")
            .uses_wasi
    };
    assert!(!with(IMPORTS));
    assert!(with(
        r#"(import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))"#
    ));
}
