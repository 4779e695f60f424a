//! 8. The echo of benchmark 1 through Extism 1.30, in its two modes:
//!
//! - `extism_reused`: one `Plugin`, called again and again (its memory and
//!   kernel state are reset between calls, the instance is kept);
//! - `extism_fresh`: a new `Plugin` per call from one `CompiledPlugin`
//!   (the closest to aifn's fresh instance per call).
//!
//! Both with the limits aifn sets by default: fuel 100,000,000, a 1 s
//! timeout, 64 MiB of memory (1,024 pages), no WASI. The plugin is WAT
//! against Extism's kernel imports, doing what Extism's PDK does: copy
//! the input out of the kernel and set it as the output.
//!
//! Run by `benches/peer.sh`, right after aifn's `echo/aifn_runtime` and
//! `echo/floor_wasmtime`, so that the ratios come from one run.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use extism::{Manifest, Plugin, PluginBuilder, Wasm};

/// The same ~50-byte JSON as aifn's `ECHO_INPUT`.
const INPUT: &[u8] = br#"{"employee":"e-1042","from":"2026-03-02","days":3}"#;

const PLUGIN_WAT: &str = r#"(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (local $n i64) (local $off i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $off (call $alloc (local.get $n)))
    (block $done8
      (loop $copy8
        (br_if $done8 (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (call $store_u64 (i64.add (local.get $off) (local.get $i)) (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $copy8)))
    (block $done
      (loop $copy
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $off) (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (call $output_set (local.get $off) (local.get $n))
    (i32.const 0)))"#;

fn builder() -> PluginBuilder<'static> {
    let wasm = wat::parse_str(PLUGIN_WAT).expect("plugin WAT");
    let manifest = Manifest::new([Wasm::data(wasm)]).with_timeout(Duration::from_millis(1_000)).with_memory_max(1_024);
    PluginBuilder::new(manifest).with_wasi(false).with_fuel_limit(100_000_000).with_cache_disabled()
}

fn echo(c: &mut Criterion) {
    let mut reused: Plugin = builder().build().expect("plugin");
    let out: Vec<u8> = reused.call::<&[u8], &[u8]>("echo", INPUT).expect("call").to_vec();
    assert_eq!(out, INPUT);
    let compiled = builder().compile().expect("compiled plugin");
    let mut fresh = Plugin::new_from_compiled(&compiled).expect("fresh plugin");
    assert_eq!(fresh.call::<&[u8], &[u8]>("echo", INPUT).expect("call"), INPUT);

    let mut g = c.benchmark_group("echo");
    g.bench_function("extism_reused", |b| {
        b.iter(|| reused.call::<&[u8], &[u8]>("echo", INPUT).map(<[u8]>::len).expect("call"))
    });
    g.bench_function("extism_fresh", |b| {
        b.iter(|| {
            let mut p = Plugin::new_from_compiled(&compiled).expect("plugin");
            p.call::<&[u8], &[u8]>("echo", INPUT).map(<[u8]>::len).expect("call")
        })
    });
    g.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
