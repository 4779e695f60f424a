//! Benchmark 2: A real function, `calculate_leave_days` from functions/ (~100 KB of
//! Rust compiled to wasm with the guest SDK), fresh instance per call, in
//! one run beside:
//!
//! - `native`: the same source file compiled natively into this benchmark
//!   (see `aifn_benches::leave`), through the same SDK glue (context parse,
//!   input decode with field paths, output serialization, log lines);
//! - `floor_wasmtime`: the same wasm module on bare wasmtime.
//!
//! Needs `cargo xtask build-functions`.

use aifn_benches::{Floor, example_wasm, leave};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let bytes = example_wasm("calculate_leave_days");
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = runtime.load(&bytes).expect("calculate_leave_days loads");
    let ctx = Context::local();
    let ctx_json = ctx.to_json_bytes();
    let limits = *runtime.limits();
    let floor = Floor::new(&bytes).expect("floor");

    let exec = runtime.invoke(&module, &Invocation::new(leave::INPUT, &ctx, limits));
    assert_eq!(exec.output.as_deref(), Some(leave::OUTPUT), "{exec:?}");
    assert_eq!(floor.call(leave::INPUT).expect("floor call"), leave::OUTPUT);
    assert_eq!(
        leave::native(&ctx_json, leave::INPUT),
        (0, leave::OUTPUT.to_vec())
    );
    eprintln!(
        "calculate_leave_days: {} bytes, {} fuel per call",
        bytes.len(),
        exec.fuel_used
    );

    let mut g = c.benchmark_group("leave");
    g.bench_function("native", |b| {
        b.iter(|| leave::native(&ctx_json, leave::INPUT))
    });
    g.bench_function("floor_wasmtime", |b| b.iter(|| floor.call(leave::INPUT)));
    g.bench_function("aifn_runtime", |b| {
        b.iter(|| runtime.invoke(&module, &Invocation::new(leave::INPUT, &ctx, limits)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
