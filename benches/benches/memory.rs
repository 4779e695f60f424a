//! Benchmark 4: A guest that grows its memory by 16 MiB and touches it, fresh
//! instance per call: one write per 4 KiB page (`alloc16_touch`) and a
//! `memory.fill` of all 16 MiB (`alloc16_fill`). Beside bare wasmtime with
//! the same pooling allocator (the pages past the 128 KiB kept resident
//! are returned to the kernel after each call, so each call faults them in
//! again) and a native `Vec` doing the same. `aifn_runtime_resident`: aifn
//! with `memory_keep_resident` at 17 MiB, which trades resident memory for
//! page faults.

use aifn_benches::guests::{ALLOC16_FILL_WAT, ALLOC16_TOUCH_WAT};
use aifn_benches::{Floor, wasm};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const MIB16: usize = 16 << 20;

fn native_touch() -> u8 {
    let mut v = vec![0u8; MIB16];
    for p in (0..MIB16).step_by(4096) {
        v[p] = 1;
    }
    black_box(&mut v)[MIB16 - 4096]
}

fn native_fill() -> u8 {
    let mut v = vec![0u8; MIB16];
    black_box(&mut v).fill(7);
    black_box(&v)[MIB16 - 1]
}

/// Bytes kept resident per slot in the `aifn_runtime_resident` variant:
/// the 16 MiB the guest grows plus its first page and some slack.
const RESIDENT: usize = MIB16 + (1 << 20);

fn bench(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    // The same host with each slot keeping 17 MiB resident: pages are
    // zeroed in place (only those dirtied, with pagemap_scan) instead of
    // being returned to the kernel and faulted in again. Costs up to
    // max_instances x 17 MiB of resident memory.
    let resident = Runtime::new(RuntimeConfig {
        memory_keep_resident: RESIDENT,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let ctx = Context::local();
    let limits = *runtime.limits();
    for (group, wat, native) in [
        (
            "alloc16_touch",
            ALLOC16_TOUCH_WAT,
            native_touch as fn() -> u8,
        ),
        ("alloc16_fill", ALLOC16_FILL_WAT, native_fill),
    ] {
        let bytes = wasm(wat);
        let module = runtime.load(&bytes).expect("module");
        let module_r = resident.load(&bytes).expect("module");
        let floor = Floor::new(&bytes).expect("floor");
        let exec = runtime.invoke(&module, &Invocation::new(b"{}", &ctx, limits));
        assert_eq!(exec.output.as_deref(), Some(&b"1"[..]), "{exec:?}");
        assert!(exec.memory_peak_bytes >= MIB16 as u64);
        assert_eq!(floor.call(b"{}").expect("floor call"), b"1");
        let mut g = c.benchmark_group(group);
        g.bench_function("native", |b| b.iter(native));
        g.bench_function("floor_wasmtime", |b| b.iter(|| floor.call(b"{}")));
        g.bench_function("aifn_runtime", |b| {
            b.iter(|| runtime.invoke(&module, &Invocation::new(b"{}", &ctx, limits)))
        });
        g.bench_function("aifn_runtime_resident", |b| {
            b.iter(|| resident.invoke(&module_r, &Invocation::new(b"{}", &ctx, limits)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
