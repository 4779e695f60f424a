//! Benchmark 1: Echo of a ~50-byte JSON, fresh instance per call, in one run:
//!
//! - `floor_wasmtime`: bare wasmtime, `InstancePre` instantiate and call;
//! - `aifn_runtime`: `Runtime::invoke` (input check, context, fuel slices
//!   on a fiber with the deadline between them, memory limiter, output
//!   check);
//! - `aifn_service`: `Service::invoke`, the whole invoke path: admission,
//!   schema check, runtime, output parse, audit record hashed into the
//!   chain and committed to SQLite (WAL, `synchronous=FULL`), data dir on
//!   tmpfs so the commit's fsync costs nothing;
//! - `echo_durable/aifn_service`: the same on the repository's disk, where
//!   each commit waits for a real fsync;
//! - `echo_durable/floor_sqlite_commit`: its floor, one ~1 KB row (an audit
//!   record's size) inserted and committed in SQLite (WAL,
//!   `synchronous=FULL`) on the same disk: one fsync'd commit, nothing else.

use aifn_benches::{
    ECHO_INPUT, ECHO_WAT, Floor, ServiceFixture, bench_service_config, disk_dir, object_manifest,
    tmpfs_dir, wasm,
};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use aifn_service::InvokeRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn request(input: &serde_json::Value) -> InvokeRequest {
    InvokeRequest {
        function: "echo".into(),
        input: input.clone(),
        user_id: "u-1".into(),
        traceparent: None,
        cancel: None,
    }
}

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

    let input: serde_json::Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    let shm = tmpfs_dir("aifn-bench-echo-");
    let fx = ServiceFixture::open(bench_service_config(shm.path()));
    fx.deploy("echo", bytes.clone(), object_manifest());
    let out = fx
        .service
        .invoke(&fx.agent, request(&input))
        .expect("service call");
    assert_eq!(out.output.as_ref(), Some(&input));

    let mut g = c.benchmark_group("echo");
    g.bench_function("floor_wasmtime", |b| b.iter(|| floor.call(ECHO_INPUT)));
    g.bench_function("aifn_runtime", |b| {
        b.iter(|| runtime.invoke(&module, &Invocation::new(ECHO_INPUT, &ctx, limits)))
    });
    g.bench_function("aifn_service", |b| {
        b.iter(|| fx.service.invoke(&fx.agent, request(&input)))
    });
    g.finish();
    drop(fx);

    let disk = disk_dir("echo-");
    let fx = ServiceFixture::open(bench_service_config(disk.path()));
    fx.deploy("echo", bytes, object_manifest());
    let mut g = c.benchmark_group("echo_durable");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("aifn_service", |b| {
        b.iter(|| fx.service.invoke(&fx.agent, request(&input)))
    });
    let db = rusqlite::Connection::open(disk.path().join("floor.db")).expect("sqlite");
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE r (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);",
    )
    .expect("schema");
    let row = vec![b'x'; 1024];
    g.bench_function("floor_sqlite_commit", |b| {
        b.iter(|| {
            db.execute("INSERT INTO r (body) VALUES (?1)", [&row])
                .expect("insert")
        })
    });
    g.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
