//! Benchmark 3: Metering cost: a call-heavy guest (recursive `fib(25)`, 242,785
//! calls) and a loop-heavy one (sieve below 100,000), each on bare wasmtime
//! compiled four ways (no metering, epoch only, fuel only, fuel and epoch:
//! aifn's scheme before fuel slices) and through aifn's runtime (fuel
//! handed out in slices of 10,000 on a fiber, the deadline checked between
//! them, its limits), in one run. Every variant instantiates per call like aifn does; the
//! instantiation is ~5 us of calls that take hundreds.

use aifn_benches::guests::{fib_wat, sieve_wat};
use aifn_benches::{Floor, Metering, wasm};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use criterion::{Criterion, criterion_group, criterion_main};

fn workload(c: &mut Criterion, group: &str, wat: &str, expected: &[u8]) {
    let bytes = wasm(wat);
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = runtime.load(&bytes).expect("module");
    let ctx = Context::local();
    let limits = *runtime.limits();
    let exec = runtime.invoke(&module, &Invocation::new(b"{}", &ctx, limits));
    assert_eq!(exec.output.as_deref(), Some(expected), "{exec:?}");
    eprintln!("{group}: {} fuel per call", exec.fuel_used);

    let mut g = c.benchmark_group(group);
    for m in Metering::ALL {
        let floor = Floor::with_metering(&bytes, m).expect("floor");
        assert_eq!(floor.call(b"{}").expect("floor call"), expected);
        g.bench_function(format!("wasmtime_{}", m.name()), |b| {
            b.iter(|| floor.call(b"{}"))
        });
    }
    g.bench_function("aifn_runtime", |b| {
        b.iter(|| runtime.invoke(&module, &Invocation::new(b"{}", &ctx, limits)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    workload(c, "metering_fib", &fib_wat(25), b"75025");
    workload(c, "metering_sieve", &sieve_wat(100_000), b"9592");
}

criterion_group!(benches, bench);
criterion_main!(benches);
