//! HTTP load against a real `aifn serve` (durable audit on, data dir on the
//! repository's disk): echo invocations per second and p50/p99 latency at
//! several concurrencies, clean and with a share of hostile traffic.
//!
//! ```sh
//! cargo build --release --bin aifn -p aifn-cli
//! cargo run --release -p aifn-benches --bin loadgen -- --aifn target/release/aifn
//! ```
//!
//! The generator runs on the same 2-core machine as the server, so its own
//! CPU is part of the count. Closed loop: each of C workers sends its next
//! request when the last one answered, over a kept-alive connection. In
//! the hostile runs every tenth request (a shared counter, so exactly 10%)
//! goes to another tenant's hostile functions, alternating an infinite
//! loop (stopped by its 100 ms deadline) and a `memory.grow` bomb. Each
//! level also measures the same server's `GET /healthz`, the floor. Two
//! servers: `fair` (the default CPU slots) and `kernel` (a slot for every
//! call, the kernel's scheduler alone); `--only fair` runs one.
//! Writes `results/http_load.json`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aifn_benches::http::{
    LoadArgs, Target, agent, create_key, deploy, fail, grant_all, parse_args, raised_limits,
    run_level, start_server,
};
use aifn_benches::stats::summarize;
use aifn_benches::{ECHO_INPUT, ECHO_WAT, disk_dir, save_json};
use serde_json::{Value, json};

const INFINITE_LOOP: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

const MEMORY_BOMB: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable)))"#;

/// A server configuration measured, by name (`--only`).
struct Config {
    name: &'static str,
    /// `[service] cpu_slots`; `None` keeps the default (the cores).
    cpu_slots: Option<usize>,
}

/// `fair`: the default, guests run in fair slots of the cores. `kernel`:
/// a slot for every admitted call, so the kernel's scheduler alone shares
/// the cores between them (the behaviour before the slots).
const CONFIGS: &[Config] = &[
    Config {
        name: "fair",
        cpu_slots: None,
    },
    Config {
        name: "kernel",
        cpu_slots: Some(64),
    },
];

fn main() {
    let args = parse_args(LoadArgs {
        aifn: "target/release/aifn".into(),
        seconds: 10,
        concurrency: vec![1, 16, 64],
        hostile_percent: Some(10),
        only: Some(CONFIGS.iter().map(|c| c.name.to_owned()).collect()),
        wrk: Some(false),
    });
    let aifn = std::fs::canonicalize(&args.aifn)
        .unwrap_or_else(|e| fail(&format!("{}: {e} (build it first)", args.aifn.display())));
    let only = args.only.clone().unwrap_or_default();
    let mut configs = Vec::new();
    for config in CONFIGS.iter().filter(|c| only.iter().any(|o| o == c.name)) {
        eprintln!("== {}", config.name);
        configs.push(measure(&aifn, config, &args));
    }
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    save_json(
        "http_load.json",
        &json!({"machine": machine, "configs": configs}),
    );
}

fn measure(aifn: &Path, config: &Config, args: &LoadArgs) -> Value {
    let hostile_percent = args.hostile_percent.unwrap_or(0);
    let dir = disk_dir("aifn-http-load-");
    let data = dir.path().join("data");
    let keys: Vec<String> = [
        ("acme", "author", "alice"),
        ("acme", "approver", "bob"),
        ("acme", "agent", "assistant"),
        ("mallory", "author", "mal"),
        ("mallory", "approver", "mel"),
        ("mallory", "agent", "bot"),
        ("acme", "admin", "root"),
        ("mallory", "admin", "root"),
    ]
    .iter()
    .map(|(t, r, s)| create_key(aifn, &data, None, t, r, s))
    .collect();
    let mut toml = raised_limits(1);
    if let Some(n) = config.cpu_slots {
        toml = toml.replace("[service]\n", &format!("[service]\ncpu_slots = {n}\n"));
    }
    let server = start_server(aifn, dir.path(), &toml, &[]);
    let base = server.base.clone();
    deploy(&base, &keys[0], &keys[1], "echo", ECHO_WAT, json!({}));
    deploy(
        &base,
        &keys[3],
        &keys[4],
        "spin",
        INFINITE_LOOP,
        json!({"timeout_ms": 100}),
    );
    deploy(
        &base,
        &keys[3],
        &keys[4],
        "grow",
        MEMORY_BOMB,
        json!({"memory_bytes": 16 << 20}),
    );
    grant_all(&base, &keys[6], "assistant");
    grant_all(&base, &keys[7], "bot");
    let target = Arc::new(Target {
        benign_urls: vec![format!("{base}/v1/functions/echo/invoke")],
        benign_key: keys[2].clone(),
        hostile_urls: vec![
            format!("{base}/v1/functions/spin/invoke"),
            format!("{base}/v1/functions/grow/invoke"),
        ],
        hostile_key: keys[5].clone(),
    });
    let mut runs = Vec::new();
    let echo_body = json!({"input": serde_json::from_slice::<Value>(ECHO_INPUT).unwrap_or(Value::Null), "user_id": "u-1"});
    for &c in &args.concurrency {
        if args.wrk == Some(true) {
            runs.push(wrk_level(&format!("{base}/healthz"), None, c, args.seconds));
            runs.push(wrk_level(
                &target.benign_urls[0],
                Some((&target.benign_key, &echo_body)),
                c,
                args.seconds,
            ));
        }
        // The floor: the same server's cheapest answer, same workers.
        runs.push(healthz_level(&format!("{base}/healthz"), c, args.seconds));
        runs.push(run_level(&target, c, 0, args.seconds, &mut |_| {}));
        if hostile_percent > 0 {
            runs.push(run_level(
                &target,
                c,
                hostile_percent,
                args.seconds,
                &mut |_| {},
            ));
        }
    }
    drop(server);
    json!({
        "name": config.name,
        "cpu_slots": config.cpu_slots,
        "data_dir": dir.path().display().to_string(),
        "runs": runs,
    })
}

/// `GET /healthz` in the same closed loop: 1 s of warm-up, then `seconds`.
fn healthz_level(url: &str, concurrency: usize, seconds: u64) -> Value {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (url, measuring, stop) = (url.to_owned(), measuring.clone(), stop.clone());
            std::thread::spawn(move || {
                let a = agent();
                let mut latencies = Vec::new();
                let mut failed = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = a.get(&url).call().is_ok_and(|r| r.status() == 200);
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    if measuring.load(Ordering::Relaxed) {
                        latencies.push(us);
                        failed += u64::from(!ok);
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    measuring.store(true, Ordering::Relaxed);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut all, mut failed) = (Vec::new(), 0);
    for w in workers {
        if let Ok((mut l, f)) = w.join() {
            all.append(&mut l);
            failed += f;
        }
    }
    let s = summarize(&mut all);
    eprintln!(
        "c={concurrency:<3} healthz:     {:>7.0} req/s; p50 {:>8.0} us p99 {:>8.0} us, failed {failed}",
        s.n as f64 / elapsed,
        s.p50,
        s.p99
    );
    json!({
        "concurrency": concurrency,
        "healthz": true,
        "seconds": elapsed,
        "requests_per_second": s.n as f64 / elapsed,
        "latency_us": s.to_json(),
        "failed": failed,
    })
}

/// The same closed loop from `wrk` (2 threads, 1 for one connection, `concurrency` connections,
/// `--latency`): `GET url`, or a `POST` of `body` with `key`.
fn wrk_level(url: &str, post: Option<(&str, &Value)>, concurrency: usize, seconds: u64) -> Value {
    let script = tempfile::NamedTempFile::new()
        .unwrap_or_else(|e| fail(&format!("cannot write wrk's script: {e}")));
    if let Some((key, body)) = post {
        let lua = format!(
            "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {key}\"\n",
            // A JSON string is a valid Lua string literal for this body.
            serde_json::to_string(&body.to_string()).unwrap_or_default()
        );
        std::fs::write(script.path(), lua)
            .unwrap_or_else(|e| fail(&format!("cannot write wrk's script: {e}")));
    }
    let out = std::process::Command::new("wrk")
        // wrk needs a connection per thread at least.
        .arg(format!("-t{}", concurrency.clamp(1, 2)))
        .args(["--latency", "--timeout", "10s"])
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(script.path())
        .arg(url)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run wrk (apt install wrk): {e}")));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let per_second: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail(&format!("wrk printed no rate:\n{text}")));
    let ms = |v: Option<String>| {
        v.map_or(f64::NAN, |v| {
            let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
            let n: f64 = n.parse().unwrap_or(f64::NAN);
            match unit {
                "us" => n / 1000.0,
                "s" => n * 1000.0,
                _ => n,
            }
        })
    };
    let (p50, p99) = (ms(field("50%")), ms(field("99%")));
    let non_2xx: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let what = if post.is_some() { "echo" } else { "healthz" };
    eprintln!(
        "c={concurrency:<3} wrk {what:<7}: {per_second:>7.0} req/s; p50 {:>8.0} us p99 {:>8.0} us, non-2xx {non_2xx}",
        p50 * 1000.0,
        p99 * 1000.0
    );
    json!({
        "client": "wrk",
        "what": what,
        "concurrency": concurrency,
        "requests_per_second": per_second,
        "latency_ms": {"p50": p50, "p99": p99},
        "non_2xx": non_2xx,
    })
}
