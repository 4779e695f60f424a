//! Benchmark 10: JavaScript functions, each beside its floor in one run.
//!
//! - `js_leave`: `calculate_leave_days_js` (functions/, JavaScript on the
//!   embedded QuickJS-ng engine) through `Runtime::invoke`, a fresh
//!   instance of the engine's snapshot per call, beside the Rust
//!   `calculate_leave_days` through the same runtime: same input, same
//!   output.
//! - `js_echo`: a JavaScript function that returns its input, beside the
//!   ABI v1 echo in WAT through the same runtime.
//! - `js_upload`: upload to first result through the service on disk
//!   (engine already compiled): packaging, bytecode compiled in the
//!   sandbox, checklist, durable registry write, approval, first call and
//!   its durable record; beside the same for the WAT echo.
//!
//! Before criterion runs, the memory of 1,000 deployed JavaScript functions
//! (each invoked once) is measured against one and written to
//! `benches/results/js_memory.json`.
//!
//! Needs `cargo xtask build-functions` (the Rust guest).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aifn_benches::{
    ECHO_INPUT, ECHO_WAT, ServiceFixture, bench_service_config, disk_dir, example_wasm, leave,
    rss_bytes, save_json, tmpfs_dir, wasm,
};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use aifn_service::{InvokeRequest, UploadRequest, VersionInfo};
use aifn_types::{Manifest, Source, SourceLanguage};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const LEAVE_JS: &str = include_str!("../../functions/calculate_leave_days_js/main.js");
const ECHO_JS: &str = "export function main(input) { return input; }\n";

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// `source` under a new sha256 (a trailing comment), so no cache has it.
fn fresh(source: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("{source}// {}-{n}\n", std::process::id())
}

fn echo_manifest() -> Manifest {
    serde_json::from_value(json!({"description": "echo", "input_schema": {"type": "object"}}))
        .expect("manifest")
}

/// Uploads `source` (or `module`) as `name`, approves it and calls it
/// once with the echo input; returns the version and the call's output.
fn deploy_and_call(
    fx: &ServiceFixture,
    name: &str,
    source: Option<String>,
    module: Vec<u8>,
) -> (VersionInfo, Value) {
    let v = fx
        .service
        .upload(
            &fx.author,
            UploadRequest {
                name: name.into(),
                manifest: echo_manifest(),
                module,
                source: source.map(|text| Source {
                    language: SourceLanguage::Javascript,
                    text,
                }),
            },
        )
        .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    let v = fx
        .service
        .decide(
            &fx.approver,
            (name, v.version),
            aifn_service::Decision::Approve { sha256: &v.sha256 },
            "benchmark",
        )
        .unwrap_or_else(|e| panic!("approve {name}: {e}"));
    let out = fx
        .service
        .invoke(
            &fx.agent,
            InvokeRequest {
                function: name.into(),
                input: serde_json::from_slice(ECHO_INPUT).expect("json"),
                user_id: "u".into(),
                traceparent: None,
                cancel: None,
            },
        )
        .unwrap_or_else(|e| panic!("invoke {name}: {e:?}"));
    let output = out
        .output
        .unwrap_or_else(|| panic!("{name} answered no output"));
    (v, output)
}

/// 1 function, then 1,000 (each called once, so loaded and cached):
/// resident memory beside what the functions are (source + bytecode), for
/// JavaScript and, as the floor, for the WAT echo (each a distinct module,
/// compiled apart).
fn memory_of_a_thousand() {
    let expected: Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    let echo_wasm = wasm(ECHO_WAT);
    let mut result = serde_json::Map::new();
    for kind in ["javascript", "wat"] {
        let dir = tmpfs_dir("aifn-bench-js-memory-");
        let fx = ServiceFixture::open(bench_service_config(dir.path()));
        let mut per_function = 0u64;
        let mut deploy = |range: std::ops::Range<usize>| {
            for i in range {
                let name = format!("echo_{i}");
                let (v, out) = if kind == "javascript" {
                    let source = format!("{ECHO_JS}// function {i}\n");
                    deploy_and_call(&fx, &name, Some(source), Vec::new())
                } else {
                    let module =
                        aifn_benches::with_custom_section(&echo_wasm, "n", name.as_bytes());
                    deploy_and_call(&fx, &name, None, module)
                };
                assert_eq!(out, expected);
                per_function = v
                    .report
                    .module
                    .script
                    .map_or(v.report.module.size_bytes, |s| {
                        s.source_bytes + s.bytecode_bytes
                    });
            }
            rss_bytes()
        };
        let one = deploy(0..1);
        let thousand = deploy(1..1000);
        let growth = thousand.saturating_sub(one);
        result.insert(
            kind.into(),
            json!({
                "functions": 1000,
                "rss_one_bytes": one,
                "rss_thousand_bytes": thousand,
                "growth_per_function_bytes": growth / 999,
                "stored_bytes_per_function": per_function,
            }),
        );
    }
    result.insert(
        "memory_cache_entries".into(),
        json!(RuntimeConfig::default().memory_cache_entries),
    );
    let result = Value::Object(result);
    eprintln!("js memory: {result}");
    save_json("js_memory.json", &result);
}

fn bench(c: &mut Criterion) {
    memory_of_a_thousand();

    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let ctx = Context::local();
    let limits = *runtime.limits();
    let rust = runtime
        .load(&example_wasm("calculate_leave_days"))
        .expect("calculate_leave_days loads");
    let js = runtime
        .load(&runtime.javascript(LEAVE_JS).expect("packaged"))
        .expect("calculate_leave_days_js loads");
    let call = |m| runtime.invoke(m, &Invocation::new(leave::INPUT, &ctx, limits));
    let (r, j) = (call(&rust), call(&js));
    let value =
        |o: Option<&[u8]>| -> Value { serde_json::from_slice(o.expect("output")).expect("json") };
    assert_eq!(
        value(j.output.as_deref()),
        value(r.output.as_deref()),
        "{j:?}"
    );
    eprintln!(
        "leave days: rust {} fuel, javascript {} fuel ({} bytes of bytecode)",
        r.fuel_used,
        j.fuel_used,
        js.report().script.as_ref().map_or(0, |s| s.bytecode_bytes)
    );
    let mut g = c.benchmark_group("js_leave");
    g.bench_function("rust_runtime", |b| b.iter(|| call(&rust)));
    g.bench_function("js_runtime", |b| b.iter(|| call(&js)));
    g.finish();

    let abi_echo = runtime.load(&wasm(ECHO_WAT)).expect("echo loads");
    let js_echo = runtime
        .load(&runtime.javascript(ECHO_JS).expect("packaged"))
        .expect("echo loads");
    let echo = |m| runtime.invoke(m, &Invocation::new(ECHO_INPUT, &ctx, limits));
    let expected: Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    assert_eq!(value(echo(&js_echo).output.as_deref()), expected);
    let mut g = c.benchmark_group("js_echo");
    g.bench_function("abi_echo_runtime", |b| b.iter(|| echo(&abi_echo)));
    g.bench_function("js_echo_runtime", |b| b.iter(|| echo(&js_echo)));
    g.finish();

    let dir = disk_dir("js-upload-");
    let fx = ServiceFixture::open(bench_service_config(dir.path()));
    // The engine compiled once, as on a running host.
    deploy_and_call(&fx, "warm", Some(ECHO_JS.into()), Vec::new());
    let echo_wasm = wasm(ECHO_WAT);
    let mut g = c.benchmark_group("js_upload");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    let timed = |source: Option<String>, module: Vec<u8>| {
        let name = format!("f_{}", UNIQUE.fetch_add(1, Ordering::Relaxed));
        let t = Instant::now();
        let (_, out) = deploy_and_call(&fx, &name, source, module);
        let d = t.elapsed();
        assert_eq!(out, expected);
        d
    };
    g.bench_function("wat_echo_to_first_result", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let unique = aifn_benches::with_custom_section(
                        &echo_wasm,
                        "bench-unique",
                        fresh("").as_bytes(),
                    );
                    timed(None, unique)
                })
                .sum()
        })
    });
    g.bench_function("js_echo_to_first_result", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| timed(Some(fresh(ECHO_JS)), Vec::new()))
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
