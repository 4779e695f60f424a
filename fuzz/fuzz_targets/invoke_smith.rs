//! wasm-smith modules loaded and invoked: every call ends in `ok` or a
//! classified kind, never a panic, and within its limits (fuel, memory,
//! output, logs).
//!
//! Three inputs in four build an ABI-v1-shaped module (exports `memory` and
//! `aifn_call: () -> i32`, sometimes `_initialize`; imports only from the
//! `aifn` allowlist and zero-capability WASI; only allowed proposals), so
//! most of them load and really run; the rest are arbitrary wasm-smith
//! modules (swarm configuration), which exercise the refusals.

#![no_main]

use std::sync::OnceLock;

use aifn_runtime::{Context, Execution, Invocation, Limits, OutcomeKind, Runtime, RuntimeConfig};
use aifn_test_support::RUN_KINDS;
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasm_smith::{Config, Module};

/// The host maxima: small, so every input is cheap and bounded.
fn host() -> Limits {
    Limits {
        fuel: 1_000_000,
        timeout_ms: 1_000,
        memory_bytes: 4 << 20,
        table_elements: 10_000,
        output_bytes: 64 << 10,
        log_bytes: 4 << 10,
        compile_timeout_ms: 60_000,
        ..Limits::default()
    }
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig { limits: host(), max_instances: 2, memory_cache_entries: 0, ..RuntimeConfig::default() })
            .expect("runtime")
    })
}

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("fixed wat")
}

/// Every import a generated ABI module may use.
fn imports() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        wasm(
            r#"(module
              (import "aifn" "input_len" (func (result i32)))
              (import "aifn" "input_read" (func (param i32)))
              (import "aifn" "context_len" (func (result i32)))
              (import "aifn" "context_read" (func (param i32)))
              (import "aifn" "output_write" (func (param i32 i32)))
              (import "aifn" "log" (func (param i32 i32 i32)))
              (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
              (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_fdstat_get" (func (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
              (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#,
        )
    })
}

/// The ABI's exports, with or without `_initialize`.
fn exports(initialize: bool) -> Vec<u8> {
    static PLAIN: OnceLock<Vec<u8>> = OnceLock::new();
    static INIT: OnceLock<Vec<u8>> = OnceLock::new();
    let init = r#"(func (export "_initialize") unreachable)"#;
    let cell = if initialize { &INIT } else { &PLAIN };
    cell.get_or_init(|| {
        wasm(&format!(
            r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) unreachable) {})"#,
            if initialize { init } else { "" }
        ))
    })
    .clone()
}

fn abi_config(u: &mut Unstructured<'_>) -> arbitrary::Result<Config> {
    let mut c = Config::default();
    c.available_imports = Some(imports().to_vec());
    c.exports = Some(exports(u.ratio(1, 4)?));
    // Only the proposals aifn allows.
    c.threads_enabled = false;
    c.shared_everything_threads_enabled = false;
    c.memory64_enabled = false;
    c.exceptions_enabled = false;
    c.gc_enabled = false;
    c.custom_descriptors_enabled = false;
    c.relaxed_simd_enabled = false;
    c.custom_page_sizes_enabled = false;
    c.wide_arithmetic_enabled = false;
    c.simd_enabled = bool::arbitrary(u)?;
    c.reference_types_enabled = bool::arbitrary(u)?;
    c.bulk_memory_enabled = bool::arbitrary(u)?;
    c.tail_call_enabled = bool::arbitrary(u)?;
    c.multi_value_enabled = bool::arbitrary(u)?;
    c.disallow_traps = u.ratio(1, 3)?;
    c.allow_start_export = bool::arbitrary(u)?;
    c.max_memories = 1;
    c.max_tables = 1;
    c.max_memory32_bytes = u64::from(u.int_in_range(1u32..=64)?) * 65536;
    c.max_table_elements = 2_000;
    c.max_funcs = 40;
    c.max_instructions = 300;
    c.max_data_segments = 20;
    c.max_element_segments = 20;
    c.min_funcs = 1;
    Ok(c)
}

fn arbitrary_config(u: &mut Unstructured<'_>) -> arbitrary::Result<Config> {
    let mut c = Config::arbitrary(u)?;
    // Keep each input cheap: this target is about classification, not size.
    c.max_funcs = c.max_funcs.min(50);
    c.max_instructions = c.max_instructions.min(300);
    c.max_memory32_bytes = c.max_memory32_bytes.min(64 << 20);
    c.max_table_elements = c.max_table_elements.min(20_000);
    c.max_type_size = c.max_type_size.min(200);
    Ok(c)
}

const INPUTS: &[&str] = &["{}", "[1,2,3]", "\"text\"", "null", "{\"a\":{\"b\":[true,false,1.5e300]}}", "not json"];

fn check(e: &Execution, limits: &Limits, input_is_json: bool) {
    if !input_is_json {
        assert_eq!(e.kind, OutcomeKind::InvalidInput, "{e:?}");
        return;
    }
    assert!(RUN_KINDS.contains(&e.kind.as_str()), "unexpected kind: {e:?}");
    assert!(e.fuel_used <= limits.fuel, "fuel {} over {}", e.fuel_used, limits.fuel);
    assert!(e.memory_peak_bytes <= limits.memory_bytes, "memory {} over {}", e.memory_peak_bytes, limits.memory_bytes);
    let log_bytes: usize = e.logs.iter().map(|l| l.message.len()).sum();
    // Lossy UTF-8 replacement may grow kept bytes up to 3x; plus the marker.
    assert!(log_bytes as u64 <= limits.log_bytes * 3 + 64, "logs {log_bytes} over {}", limits.log_bytes);
    match e.kind {
        OutcomeKind::Ok => {
            let out = e.output.as_deref().expect("ok has output");
            assert!(out.len() as u64 <= limits.output_bytes);
            serde_json::from_slice::<serde_json::Value>(out).expect("ok output is JSON");
            assert!(e.message.is_none() && e.trap_code.is_none());
        }
        _ => {
            assert!(e.output.is_none(), "{e:?}");
            assert!(e.message.as_deref().is_some_and(|m| !m.is_empty()), "{e:?}");
        }
    }
    if e.trap_code.is_some() {
        assert!(matches!(e.kind, OutcomeKind::Trap | OutcomeKind::MemoryLimit), "{e:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(shaped) = u.ratio(3, 4) else { return };
    let config = if shaped { abi_config(&mut u) } else { arbitrary_config(&mut u) };
    let Ok(config) = config else { return };
    let Ok(input_ix) = u.choose_index(INPUTS.len()) else { return };
    let host = host();
    let Ok(fuel) = u.int_in_range(1_000u64..=host.fuel) else { return };
    let Ok(memory_pages) = u.int_in_range(1u64..=64) else { return };
    let Ok(execution_id) = String::arbitrary(&mut u) else { return };
    let Ok(module) = Module::new(config, &mut u) else { return };
    let bytes = module.to_bytes();

    let rt = runtime();
    let loaded = match rt.load(&bytes) {
        Ok(m) => m,
        Err(e) => {
            assert!(e.kind().is_module_refusal(), "{e:?}");
            return;
        }
    };
    let limits = Limits { fuel, memory_bytes: memory_pages * 65536, ..host };
    let ctx = Context { execution_id, ..Context::local() };
    let input = INPUTS[input_ix];
    let e = rt.invoke(&loaded, &Invocation::new(input.as_bytes(), &ctx, limits));
    check(&e, &limits, input != "not json");
});
