//! Durable audit throughput: invocations per second of the echo guest
//! through `Service::invoke` from T threads (default 16) for S seconds
//! (default 10), in one run:
//!
//! - `durable`: data dir on the repository's disk; every call returns
//!   after the group commit holding its record was fsynced;
//! - `tmpfs`: the same service on `/dev/shm`: the record is still hashed,
//!   chained and committed to SQLite, but fsync costs nothing;
//! - `no_audit`: no audit record at all. The service has no such mode, so
//!   this is the rest of its per-call work done here around the same
//!   runtime: context, input serialization, JSON Schema check,
//!   `Runtime::invoke`, output parse (no admission limiter, no record).
//!
//! Then the durable run at 1, 64 and 256 threads: throughput follows
//! T / fsync latency until the CPU is the limit. And an fsync probe (4 KiB
//! write + fdatasync) on the same disk, before and after. Writes
//! `results/audit_throughput.json`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aifn_benches::stats::summarize;
use aifn_benches::{
    ECHO_INPUT, ECHO_WAT, ServiceFixture, bench_service_config, disk_dir, object_manifest,
    save_json, tmpfs_dir, wasm,
};
use aifn_runtime::{Context, Invocation, Runtime, RuntimeConfig};
use aifn_service::InvokeRequest;
use serde_json::{Value, json};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Runs `call` from `threads` threads for `secs`; returns (calls/s, latency summary JSON, p50 us).
fn drive(threads: usize, secs: u64, call: Arc<dyn Fn() + Send + Sync>) -> (f64, Value, f64) {
    // Warm up.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        call();
    }
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let call = Arc::clone(&call);
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
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
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("thread"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let s = summarize(&mut all);
    (
        count.load(Ordering::Relaxed) as f64 / elapsed,
        s.to_json(),
        s.p50,
    )
}

fn fsync_probe(dir: &std::path::Path, secs: f64) -> Value {
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

fn service_run(dir: &std::path::Path, threads: usize, secs: u64) -> Value {
    let mut config = bench_service_config(dir);
    config.max_concurrent = threads.max(16) as u32 + 8;
    let fx = Arc::new(ServiceFixture::open(config));
    fx.deploy("echo", wasm(ECHO_WAT), object_manifest());
    let input: Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    let before = fx.service.metrics_text();
    let f = Arc::clone(&fx);
    let call = Arc::new(move || {
        let out = f.service.invoke(
            &f.agent,
            InvokeRequest {
                function: "echo".into(),
                input: input.clone(),
                user_id: "u".into(),
            },
        );
        assert!(out.is_ok_and(|o| o.output.is_some()));
    });
    let (rps, latency, _) = drive(threads, secs, call);
    let after = fx.service.metrics_text();
    let records = metric(&after, "aifn_audit_records") - metric(&before, "aifn_audit_records");
    let commits = metric(&after, "aifn_audit_commits") - metric(&before, "aifn_audit_commits");
    json!({
        "threads": threads,
        "calls_per_second": rps,
        "latency_us": latency,
        "audit_records": records,
        "audit_commits": commits,
        "records_per_commit": records as f64 / commits.max(1) as f64,
    })
}

fn no_audit_run(threads: usize, secs: u64) -> Value {
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            max_instances: threads as u32 + 8,
            ..RuntimeConfig::default()
        })
        .expect("runtime"),
    );
    let module = runtime.load(&wasm(ECHO_WAT)).expect("module");
    let schema = jsonschema::validator_for(&json!({"type": "object"})).expect("schema");
    let input: Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    let seq = AtomicU64::new(0);
    let call = Arc::new(move || {
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
    });
    let (rps, latency, _) = drive(threads, secs, call);
    json!({"threads": threads, "calls_per_second": rps, "latency_us": latency})
}

fn main() {
    let threads = env("AIFN_BENCH_THREADS", 16) as usize;
    let secs = env("AIFN_BENCH_SECONDS", 10);
    let disk = disk_dir("audit-");
    let shm = tmpfs_dir("aifn-bench-audit-");
    let probe_before = fsync_probe(disk.path(), 2.0);
    eprintln!("fsync probe: {probe_before}");

    let durable = service_run(disk.path(), threads, secs);
    eprintln!("durable: {durable}");
    let tmpfs = service_run(shm.path(), threads, secs);
    eprintln!("tmpfs:   {tmpfs}");
    let none = no_audit_run(threads, secs);
    eprintln!("no audit: {none}");
    let rps = |v: &Value| v["calls_per_second"].as_f64().unwrap_or(f64::NAN);
    let mut sweep = Vec::new();
    for t in [1usize, 64, 256] {
        let d = disk_dir("audit-sweep-");
        let r = service_run(d.path(), t, secs.min(6));
        eprintln!(
            "durable at {t} threads: {:.0} calls/s, {:.1} records per commit",
            rps(&r),
            r["records_per_commit"]
        );
        sweep.push(r);
    }
    let probe_after = fsync_probe(disk.path(), 2.0);
    let result = json!({
        "threads": threads,
        "seconds": secs,
        "fsync_probe_ms_before": probe_before,
        "fsync_probe_ms_after": probe_after,
        "durable": durable,
        "tmpfs": tmpfs,
        "no_audit": none,
        "ratio_durable_to_no_audit": rps(&durable) / rps(&none),
        "ratio_durable_to_tmpfs": rps(&durable) / rps(&tmpfs),
        "ratio_tmpfs_to_no_audit": rps(&tmpfs) / rps(&none),
        "durable_sweep": sweep,
    });
    println!(
        "calls/s at {threads} threads: durable {:.0}, tmpfs {:.0}, no audit {:.0}; durable/no-audit {:.2}, durable/tmpfs {:.2}, tmpfs/no-audit {:.2}",
        rps(&durable),
        rps(&tmpfs),
        rps(&none),
        rps(&durable) / rps(&none),
        rps(&durable) / rps(&tmpfs),
        rps(&tmpfs) / rps(&none)
    );
    save_json("audit_throughput.json", &result);
}
