//! Echo of a ~50-byte JSON with a fresh instance per call: aifn's runtime
//! invoke path (input check, context, limits, output check) beside the
//! bare wasmtime `InstancePre` instantiate-and-call floor, in one run.

use aifn_benches::{ECHO_INPUT, ECHO_WAT, Floor, wasm};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use criterion::{Criterion, criterion_group, criterion_main};

fn echo(c: &mut Criterion) {
    let bytes = wasm(ECHO_WAT);
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = runtime.load(&bytes).expect("module");
    let ctx = Context::local();
    let limits = *runtime.limits();
    let floor = Floor::new(&bytes).expect("floor");
    assert_eq!(floor.call(ECHO_INPUT).expect("floor call"), ECHO_INPUT);
    let check = runtime.invoke(&module, &Invocation::new(ECHO_INPUT, &ctx, limits));
    assert_eq!(check.output.as_deref(), Some(ECHO_INPUT));

    let mut g = c.benchmark_group("echo");
    g.bench_function("floor_wasmtime", |b| b.iter(|| floor.call(ECHO_INPUT)));
    g.bench_function("aifn_runtime", |b| b.iter(|| runtime.invoke(&module, &Invocation::new(ECHO_INPUT, &ctx, limits))));
    g.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
