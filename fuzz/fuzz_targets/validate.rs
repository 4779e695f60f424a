//! Module validation and inspection on raw bytes: `Runtime::inspect` and
//! `Runtime::load` never panic, every refusal is a typed `ModuleError` whose
//! kind is a module-refusal kind, and the two agree: a module inspection
//! accepts is one `load` compiles (wasmtime never refuses what our
//! validator passed), and a module inspection refuses is refused by `load`
//! with the same error.

#![no_main]

use std::sync::OnceLock;

use aifn_runtime::{Limits, ModuleError, Runtime, RuntimeConfig};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let limits = Limits {
            memory_bytes: 4 << 20,
            // Generous: a fuzz input must never be refused for the machine's speed.
            compile_timeout_ms: 60_000,
            ..Limits::default()
        };
        // No cache: every input is validated and compiled afresh.
        Runtime::new(RuntimeConfig { limits, max_instances: 2, memory_cache_entries: 0, ..RuntimeConfig::default() })
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let rt = runtime();
    let inspected = rt.inspect(data);
    if let Err(e) = &inspected {
        assert!(e.kind().is_module_refusal(), "{e:?} has kind {}", e.kind());
        assert!(!e.to_string().is_empty());
    }
    let loaded = rt.load(data);
    match (&inspected, &loaded) {
        (Ok(report), Ok(m)) => {
            assert_eq!(m.report(), report);
            assert_eq!(report.size_bytes, data.len() as u64);
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "inspect and load disagree"),
        (Ok(_), Err(ModuleError::CompileTimeout { .. })) => {}
        (Ok(_), Err(e)) => panic!("inspection accepted the module but load refused it: {e}"),
        (Err(e), Ok(_)) => panic!("inspection refused the module ({e}) but load accepted it"),
    }
});
