//! Durable audit throughput: echo invocations per second from T threads
//! (default 16) for S seconds (default 10), each run beside the same run
//! without invocation records, in one process:
//!
//! - in process, `Service::invoke`:
//!   - `durable`: data dir on the repository's disk; every call returns
//!     after the group commit holding its record was fsynced;
//!   - `tmpfs`: the same on `/dev/shm`: hashed, chained and committed to
//!     SQLite, but fsync costs nothing;
//!   - `unaudited`: the same service built with
//!     `Service::open_unaudited_baseline` (feature `bench-unaudited`): the
//!     same code path, no invocation record built or written;
//!   - `runtime_floor`: only the runtime and a schema check around it, no
//!     service at all (the old baseline, kept for reference);
//! - over HTTP, the real router (`aifn_server::serve`) on a loopback
//!   socket, driven by T keep-alive clients, as agents call it:
//!   `http` (durable and unaudited).
//!
//! The audited and unaudited runs of each pair alternate for
//! `AIFN_BENCH_ROUNDS` rounds (default 3); the ratio is the median of the
//! rounds'.
//!
//! Then the durable run at 1, 64 and 256 threads, and an fsync probe (4 KiB
//! write + fdatasync) on the same disk, before and after. A caller that
//! waits for its fsync cannot finish more than once per fsync, so T callers
//! finish at most T / fsync-latency calls per second whatever the batching:
//! that ceiling is reported beside the durable runs.
//!
//! `AIFN_BENCH_RUNS=http,in_process` runs only the named runs (`in_process`,
//! `http`, `tmpfs`, `runtime_floor`, `durable_sweep`).
//! Writes `results/audit_throughput.json`.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use aifn_benches::stats::summarize;
use aifn_benches::{
    ECHO_INPUT, ECHO_WAT, ServiceFixture, bench_service_config, disk_dir, object_manifest,
    save_json, tmpfs_dir, wasm,
};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use aifn_server::{AppState, ServerConfig};
use aifn_service::{DataDir, InvokeRequest, LocalAdmin};
use aifn_types::{Role, Subject, TenantId};
use serde_json::{Value, json};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `AIFN_BENCH_RUNS=a,b` runs only those; all when unset.
fn wanted(run: &str) -> bool {
    std::env::var("AIFN_BENCH_RUNS").map_or(true, |v| v.split(',').any(|r| r.trim() == run))
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Makes one thread's caller (its own connection, for HTTP).
type MakeCaller = Arc<dyn Fn() -> Box<dyn FnMut() + Send> + Send + Sync>;

/// Runs a caller on each of `threads` threads for `secs`, after a 300 ms
/// warm-up on this thread; returns (calls/s, latency summary in us).
fn drive(threads: usize, secs: u64, make: MakeCaller) -> (f64, Value) {
    let mut warm = make();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        warm();
    }
    drop(warm);
    let count = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let make = Arc::clone(&make);
            let count = Arc::clone(&count);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut call = make();
                start.wait();
                let end = Instant::now() + Duration::from_secs(secs);
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    call();
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                    count.fetch_add(1, Ordering::Relaxed);
                }
                lat
            })
        })
        .collect();
    start.wait();
    let started = Instant::now();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("thread"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let s = summarize(&mut all);
    (count.load(Ordering::Relaxed) as f64 / elapsed, s.to_json())
}

fn fsync_probe(dir: &Path, secs: f64) -> Value {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let block = [7u8; 4096];
    let mut lat = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        f.write_all(&block).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_file(&path);
    summarize(&mut lat).to_json()
}

/// A service on `dir` with the echo function deployed; `audited: false`
/// is the baseline that writes no invocation records.
fn fixture(dir: &Path, threads: usize, audited: bool) -> Arc<ServiceFixture> {
    let mut config = bench_service_config(dir);
    config.max_concurrent = threads.max(16) as u32 + 8;
    let fx = if audited {
        ServiceFixture::open(config)
    } else {
        ServiceFixture::open_unaudited(config)
    };
    fx.deploy("echo", wasm(ECHO_WAT), object_manifest());
    Arc::new(fx)
}

/// Runs `make` and adds the audit counters the service moved meanwhile.
fn measured(fx: &ServiceFixture, threads: usize, secs: u64, make: MakeCaller) -> Value {
    let before = fx.service.metrics_text();
    let (rps, latency) = drive(threads, secs, make);
    let after = fx.service.metrics_text();
    let records =
        metric(&after, "aifn_audit_records_total") - metric(&before, "aifn_audit_records_total");
    let commits = metric(&after, "aifn_audit_commits") - metric(&before, "aifn_audit_commits");
    json!({
        "threads": threads,
        "calls_per_second": rps,
        "latency_us": latency,
        "audit_records": records,
        "audit_commits": commits,
        "records_per_commit": if commits == 0 { 0.0 } else { records as f64 / commits as f64 },
    })
}

fn service_run(dir: &Path, threads: usize, secs: u64, audited: bool) -> Value {
    let fx = fixture(dir, threads, audited);
    let input: Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    let f = Arc::clone(&fx);
    let make: MakeCaller = Arc::new(move || {
        let f = Arc::clone(&f);
        let input = input.clone();
        Box::new(move || {
            let out = f.service.invoke(
                &f.agent,
                InvokeRequest {
                    function: "echo".into(),
                    input: input.clone(),
                    user_id: "u".into(),
                    traceparent: None,
                    cancel: None,
                },
            );
            assert!(out.is_ok_and(|o| o.output.is_some()));
        })
    });
    measured(&fx, threads, secs, make)
}

/// The real router on a loopback socket; `threads` clients, each with its
/// own kept-alive connection, POST the echo invocation.
fn http_run(dir: &Path, threads: usize, secs: u64, audited: bool) -> Value {
    let key = {
        let admin = LocalAdmin::open(DataDir::new(dir, "bench")).expect("admin");
        let tenant = TenantId::new("acme").expect("tenant");
        let bot = Subject::new("bot").expect("subject");
        let k = admin
            .create_key(
                &tenant,
                Role::Agent,
                &bot,
                &Subject::new("bench").expect("actor"),
            )
            .expect("key");
        admin.close().expect("close admin");
        k.secret
    };
    let fx = fixture(dir, threads, audited);
    // As `aifn serve` builds it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(ServerConfig::default().max_requests + 8)
        .build()
        .expect("tokio");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("listen");
    let url = format!(
        "http://{}/v1/functions/echo/invoke",
        listener.local_addr().expect("addr")
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(fx.service.clone(), ServerConfig::default());
    let server = rt.spawn(aifn_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let body = serde_json::to_vec(&json!({
        "input": serde_json::from_slice::<Value>(ECHO_INPUT).expect("json"),
        "user_id": "u",
    }))
    .expect("json");
    let auth = format!("Bearer {key}");
    let make: MakeCaller = Arc::new(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let (url, auth, body) = (url.clone(), auth.clone(), body.clone());
        Box::new(move || {
            let mut r = agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(&body[..])
                .expect("POST");
            assert_eq!(r.status().as_u16(), 200);
            let v: Value = r.body_mut().read_json().expect("json");
            assert!(v.get("output").is_some());
        })
    });
    let result = measured(&fx, threads, secs, make);
    let _ = stop.send(());
    rt.block_on(server).expect("server task").expect("serve");
    result
}

/// No service: context, input serialization, schema check, the runtime
/// call and the output parse, nothing else.
fn runtime_floor_run(threads: usize, secs: u64) -> Value {
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            max_instances: threads as u32 + 8,
            ..RuntimeConfig::default()
        })
        .expect("runtime"),
    );
    let module = runtime.load(&wasm(ECHO_WAT)).expect("module");
    let schema = Arc::new(jsonschema::validator_for(&json!({"type": "object"})).expect("schema"));
    let input: Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    let seq = Arc::new(AtomicU64::new(0));
    let make: MakeCaller = Arc::new(move || {
        let (runtime, module, schema, input, seq) = (
            Arc::clone(&runtime),
            module.clone(),
            Arc::clone(&schema),
            input.clone(),
            Arc::clone(&seq),
        );
        Box::new(move || {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let ctx = Context {
                tenant_id: "acme".into(),
                agent_id: "bot".into(),
                user_id: "u".into(),
                function: "echo".into(),
                version: "1".into(),
                execution_id: format!("exec-{n:016x}"),
            };
            let req = input.clone();
            let bytes = serde_json::to_vec(&req).expect("json");
            assert!(schema.iter_errors(&req).next().is_none());
            let limits = *runtime.limits();
            let exec = runtime.invoke(&module, &Invocation::new(&bytes, &ctx, limits));
            let out: Value =
                serde_json::from_slice(exec.output.as_deref().expect("output")).expect("json");
            std::hint::black_box(out);
        })
    });
    let (rps, latency) = drive(threads, secs, make);
    json!({"threads": threads, "calls_per_second": rps, "latency_us": latency})
}

fn rps(v: &Value) -> f64 {
    v["calls_per_second"].as_f64().unwrap_or(f64::NAN)
}

/// Runs `audited` and `unaudited` in `rounds` alternating pairs (ABBA
/// order, so that drift on a shared machine hits both alike); returns
/// every run and the median of the per-round ratios.
fn paired(
    name: &str,
    rounds: usize,
    audited: &dyn Fn() -> Value,
    unaudited: &dyn Fn() -> Value,
) -> Value {
    let mut runs = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (a, u) = if round % 2 == 0 {
            let a = audited();
            (a, unaudited())
        } else {
            let u = unaudited();
            (audited(), u)
        };
        let ratio = rps(&a) / rps(&u);
        eprintln!(
            "{name} round {}: audited {:.0}/s, unaudited {:.0}/s, ratio {ratio:.3}",
            round + 1,
            rps(&a),
            rps(&u)
        );
        ratios.push(ratio);
        runs.push(json!({"audited": a, "unaudited": u, "ratio": ratio}));
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    let mean =
        |key: &str| runs.iter().map(|r| rps(&r[key])).sum::<f64>() / runs.len().max(1) as f64;
    json!({
        "rounds": runs,
        "ratio_median": median,
        "ratio_min": sorted.first(),
        "ratio_max": sorted.last(),
        "audited_mean_calls_per_second": mean("audited"),
        "unaudited_mean_calls_per_second": mean("unaudited"),
    })
}

fn main() {
    let threads = env("AIFN_BENCH_THREADS", 16) as usize;
    let secs = env("AIFN_BENCH_SECONDS", 10);
    let rounds = env("AIFN_BENCH_ROUNDS", 3) as usize;
    let disk = disk_dir("audit-");
    let probe_before = fsync_probe(disk.path(), 2.0);
    eprintln!("fsync probe (ms): {probe_before}");
    let mut result = serde_json::Map::new();
    let runs: [(&str, &dyn Fn() -> Value); 5] = [
        ("in_process", &|| {
            paired(
                "in_process",
                rounds,
                &|| service_run(disk_dir("audit-").path(), threads, secs, true),
                &|| service_run(disk_dir("audit-").path(), threads, secs, false),
            )
        }),
        ("http", &|| {
            paired(
                "http",
                rounds,
                &|| http_run(disk_dir("audit-").path(), threads, secs, true),
                &|| http_run(disk_dir("audit-").path(), threads, secs, false),
            )
        }),
        ("tmpfs", &|| {
            service_run(tmpfs_dir("aifn-bench-audit-").path(), threads, secs, true)
        }),
        ("runtime_floor", &|| runtime_floor_run(threads, secs)),
        ("durable_sweep", &|| {
            Value::Array(
                [1usize, 64, 256]
                    .into_iter()
                    .map(|t| {
                        let r = service_run(disk_dir("audit-sweep-").path(), t, secs.min(6), true);
                        eprintln!("durable_sweep at {t} threads: {r}");
                        r
                    })
                    .collect(),
            )
        }),
    ];
    for (name, run) in runs {
        if wanted(name) {
            let r = run();
            eprintln!("{name}: {r}");
            result.insert(name.into(), r);
        }
    }
    let probe_after = fsync_probe(disk.path(), 2.0);
    let fsync_p50_ms = probe_before["p50"].as_f64().unwrap_or(f64::NAN);
    let ceiling = threads as f64 / (fsync_p50_ms / 1000.0);
    let field = |run: &str, key: &str| {
        result
            .get(run)
            .and_then(|v| v[key].as_f64())
            .unwrap_or(f64::NAN)
    };
    println!(
        "at {threads} threads, median of {rounds} paired rounds: over HTTP durable/unaudited {:.3} \
         ({:.0} vs {:.0} calls/s); in process {:.3} ({:.0} vs {:.0} calls/s, fsync ceiling {ceiling:.0}); \
         tmpfs {:.0}, runtime floor {:.0}",
        field("http", "ratio_median"),
        field("http", "audited_mean_calls_per_second"),
        field("http", "unaudited_mean_calls_per_second"),
        field("in_process", "ratio_median"),
        field("in_process", "audited_mean_calls_per_second"),
        field("in_process", "unaudited_mean_calls_per_second"),
        result.get("tmpfs").map_or(f64::NAN, rps),
        result.get("runtime_floor").map_or(f64::NAN, rps),
    );
    result.insert("threads".into(), threads.into());
    result.insert("seconds".into(), secs.into());
    result.insert("fsync_probe_ms_before".into(), probe_before);
    result.insert("fsync_probe_ms_after".into(), probe_after);
    result.insert("fsync_ceiling_calls_per_second".into(), ceiling.into());
    save_json("audit_throughput.json", &Value::Object(result));
}
