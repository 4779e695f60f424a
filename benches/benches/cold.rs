//! Benchmark 5: Cold path, with `calculate_leave_days` (~100 KB):
//!
//! `cold_upload`: upload to first result. Each iteration uploads a module
//! no cache has seen (the same code with a fresh custom section, so a new
//! sha256), approves it and invokes it once: validation, compilation,
//! the registry's and the module cache's durable writes, the approval,
//! the first call and its audit record. Data dir on disk (`…_disk`) and on
//! tmpfs (`…_tmpfs`, no fsync cost). Floor: bare wasmtime compiling the
//! same bytes and calling them once (engine built per iteration too).
//!
//! `cold_restart`: a restarted host loading a compiled module from the
//! on-disk cache. `aifn_runtime_load`: `Runtime::load` with the memory
//! cache off, so every load reads the disk cache (sha256 of the module,
//! file read, HMAC check, deserialize, pre-link). Floor: reading the same
//! wasmtime artifact and `Module::deserialize` plus `instantiate_pre` on
//! bare wasmtime. `aifn_service_first_call`: a fresh `Service::open` on an
//! existing data dir (tmpfs), timed from after the open to the end of its
//! first call of the function (registry lookup, module bytes, disk cache
//! load, schema compile, call, audit record).
//!
//! Needs `cargo xtask build-functions`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aifn_benches::{
    ServiceFixture, bench_service_config, disk_dir, example_wasm, leave, tmpfs_dir,
    with_custom_section,
};
use aifn_runtime::{Runtime, RuntimeConfig};
use aifn_service::InvokeRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wasmtime::{Engine, Linker, Module};

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn fresh_bytes(base: &[u8]) -> Vec<u8> {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let stamp = format!("{}-{n}", std::process::id());
    with_custom_section(base, "bench-unique", stamp.as_bytes())
}

fn leave_manifest() -> aifn_types::Manifest {
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../functions/calculate_leave_days/schema.json"
    ))
    .expect("schema.json");
    serde_json::from_value(serde_json::json!({"description": "leave days", "input_schema": schema}))
        .expect("manifest")
}

fn leave_request(name: &str) -> InvokeRequest {
    InvokeRequest {
        function: name.into(),
        input: serde_json::from_slice(leave::INPUT).expect("json"),
        user_id: "u".into(),
        traceparent: None,
        cancel: None,
    }
}

fn upload_to_first_result(
    fx: &ServiceFixture,
    base: &[u8],
    manifest: &aifn_types::Manifest,
) -> Duration {
    let bytes = fresh_bytes(base);
    let name = format!("leave_{}", UNIQUE.fetch_add(1, Ordering::Relaxed));
    let t = Instant::now();
    fx.deploy(&name, bytes, manifest.clone());
    let out = fx
        .service
        .invoke(&fx.agent, leave_request(&name))
        .expect("first call");
    let d = t.elapsed();
    assert!(out.output.is_some(), "{out:?}");
    d
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> Module {
    // SAFETY: the artifact was produced by `Module::serialize` on an engine
    // with this configuration, in this process.
    unsafe { Module::deserialize(engine, artifact) }.expect("deserialize")
}

fn bench(c: &mut Criterion) {
    let base = example_wasm("calculate_leave_days");
    let manifest = leave_manifest();

    let mut g = c.benchmark_group("cold_upload");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("floor_wasmtime", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let bytes = fresh_bytes(&base);
                let t = Instant::now();
                let floor = aifn_benches::Floor::new(&bytes).expect("floor");
                let out = floor.call(leave::INPUT).expect("call");
                total += t.elapsed();
                assert_eq!(out, leave::OUTPUT);
            }
            total
        })
    });
    for (label, dir) in [
        ("aifn_service_disk", disk_dir("cold-")),
        ("aifn_service_tmpfs", tmpfs_dir("aifn-bench-cold-")),
    ] {
        let fx = ServiceFixture::open(bench_service_config(dir.path()));
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| upload_to_first_result(&fx, &base, &manifest))
                    .sum()
            })
        });
        drop(fx);
    }
    g.finish();

    // The restart: a disk cache written by one runtime, read by another.
    let cache = tmpfs_dir("aifn-bench-cache-");
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    Runtime::new(config.clone())
        .expect("runtime")
        .load(&base)
        .expect("compile into the disk cache");
    let restarted = Runtime::new(RuntimeConfig {
        memory_cache_entries: 0,
        ..config
    })
    .expect("runtime");
    restarted.load(&base).expect("load");
    assert!(
        restarted.stats().disk_hits >= 1 && restarted.stats().compiles == 0,
        "{:?}",
        restarted.stats()
    );

    let engine = Engine::default();
    let artifact_path = cache.path().join("floor.cwasm");
    std::fs::write(
        &artifact_path,
        Module::new(&engine, &base)
            .expect("compile")
            .serialize()
            .expect("serialize"),
    )
    .expect("write");
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .define_unknown_imports_as_traps(&deserialize(
            &engine,
            &std::fs::read(&artifact_path).expect("read"),
        ))
        .expect("imports");

    let dir = tmpfs_dir("aifn-bench-restart-");
    {
        let fx = ServiceFixture::open(bench_service_config(dir.path()));
        fx.deploy("leave", base.clone(), manifest.clone());
        fx.service
            .invoke(&fx.agent, leave_request("leave"))
            .expect("call");
        fx.service.close().expect("close");
    }

    let mut g = c.benchmark_group("cold_restart");
    g.bench_function("floor_wasmtime", |b| {
        b.iter(|| {
            let m = deserialize(&engine, &std::fs::read(&artifact_path).expect("read"));
            black_box(linker.instantiate_pre(&m).expect("pre"))
        })
    });
    g.bench_function("aifn_runtime_load", |b| {
        b.iter(|| restarted.load(&base).expect("load"))
    });
    g.sample_size(20);
    g.bench_function("aifn_service_first_call", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fx = ServiceFixture::open(bench_service_config(dir.path()));
                let t = Instant::now();
                let out = fx
                    .service
                    .invoke(&fx.agent, leave_request("leave"))
                    .expect("call");
                total += t.elapsed();
                assert!(out.output.is_some());
                fx.service.close().expect("close");
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
