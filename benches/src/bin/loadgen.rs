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
//! loop (stopped by its 100 ms deadline) and a `memory.grow` bomb.
//! Writes `results/http_load.json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aifn_benches::stats::summarize;
use aifn_benches::{ECHO_INPUT, ECHO_WAT, disk_dir, save_json, wasm};
use base64::Engine as _;
use serde_json::{Value, json};

const INFINITE_LOOP: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

const MEMORY_BOMB: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable)))"#;

struct Args {
    aifn: PathBuf,
    seconds: u64,
    concurrency: Vec<usize>,
    hostile_percent: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        aifn: PathBuf::from("target/release/aifn"),
        seconds: 10,
        concurrency: vec![1, 16, 64],
        hostile_percent: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--aifn" => args.aifn = PathBuf::from(value()),
            "--seconds" => {
                args.seconds = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--seconds: a number"))
            }
            "--concurrency" => {
                args.concurrency = value()
                    .split(',')
                    .map(|c| {
                        c.trim()
                            .parse()
                            .unwrap_or_else(|_| fail("--concurrency: numbers"))
                    })
                    .collect()
            }
            "--hostile-percent" => {
                args.hostile_percent = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--hostile-percent: a number"))
            }
            // criterion-style flags passed by `cargo bench`: ignore.
            "--bench" => {}
            other => fail(&format!("unknown argument {other}")),
        }
    }
    args
}

fn fail(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    std::process::exit(2)
}

/// `aifn keys create` on the data dir; returns the printed secret.
fn create_key(aifn: &Path, data: &Path, tenant: &str, role: &str, subject: &str) -> String {
    let out = Command::new(aifn)
        .args(["keys", "create", "--data-dir"])
        .arg(data)
        .args(["--tenant", tenant, "--role", role, "--subject", subject])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", aifn.display())));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| {
            fail(&format!(
                "keys create printed no secret: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })
}

/// The server process, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(aifn: &Path, data: &Path) -> Server {
    let config = data.join("aifn.toml");
    // The admission limits are raised so that the load, not the limiter,
    // is measured; every tenant gets the same limits.
    std::fs::write(
        &config,
        "[server]\nmax_requests = 4096\n\n[service]\nmax_concurrent = 64\n\n\
         [service.tenant]\nrate_per_second = 1000000.0\nburst = 1000000\nmax_concurrent = 64\n",
    )
    .unwrap_or_else(|e| fail(&format!("cannot write the config: {e}")));
    let mut child = Command::new(aifn)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data.join("data"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", aifn.display())));
    let stderr = child.stderr.take().unwrap_or_else(|| fail("no stderr"));
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.split("aifn listening on ").nth(1) {
                    break addr.trim().trim_matches('"').to_owned();
                }
            }
            _ => fail("the server exited before it listened"),
        }
    };
    // Keep draining its log so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, key: &str, body: &Value) -> (u16, Value) {
    match agent
        .post(url)
        .header("Authorization", &format!("Bearer {key}"))
        .send_json(body)
    {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let v = r.body_mut().read_json::<Value>().unwrap_or(Value::Null);
            (status, v)
        }
        Err(e) => fail(&format!("POST {url}: {e}")),
    }
}

/// Uploads `wat` as `name` for the tenant and has its approver activate it.
fn deploy(base: &str, author: &str, approver: &str, name: &str, wat: &str, limits: Value) {
    let a = agent();
    let manifest =
        json!({"description": name, "input_schema": {"type": "object"}, "limits": limits});
    let body = json!({"manifest": manifest, "module": base64::engine::general_purpose::STANDARD.encode(wasm(wat))});
    let (status, reply) = post(
        &a,
        &format!("{base}/v1/functions/{name}/versions"),
        author,
        &body,
    );
    if status != 201 {
        fail(&format!("upload {name}: {status} {reply}"));
    }
    let (version, sha) = (reply["version"].clone(), reply["sha256"].clone());
    let (status, reply) = post(
        &a,
        &format!("{base}/v1/functions/{name}/versions/{version}/approve"),
        approver,
        &json!({"notes": "bench", "sha256": sha}),
    );
    if status != 200 {
        fail(&format!("approve {name}: {status} {reply}"));
    }
}

/// Lets the tenant's `agent` invoke every function (denied by default).
fn grant_all(base: &str, admin: &str, agent_subject: &str) {
    let url = format!("{base}/v1/agents/{agent_subject}/policy");
    let reply = agent()
        .put(&url)
        .header("Authorization", &format!("Bearer {admin}"))
        .send_json(json!({"allow": ["*"]}));
    match reply {
        Ok(r) if r.status() == 200 => {}
        Ok(r) => fail(&format!("PUT {url}: {}", r.status())),
        Err(e) => fail(&format!("PUT {url}: {e}")),
    }
}

#[derive(Default)]
struct Class {
    latencies_us: Vec<f64>,
    statuses: std::collections::BTreeMap<u16, u64>,
    kinds: std::collections::BTreeMap<String, u64>,
}

impl Class {
    fn summary(&mut self, seconds: f64) -> Value {
        let s = summarize(&mut self.latencies_us);
        json!({
            "requests": s.n,
            "per_second": s.n as f64 / seconds,
            "latency_us": s.to_json(),
            "statuses": self.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "kinds": self.kinds,
        })
    }
}

struct Target {
    benign_url: String,
    benign_key: String,
    hostile_urls: Vec<String>,
    hostile_key: String,
}

fn run_level(
    target: &Arc<Target>,
    concurrency: usize,
    hostile_percent: u64,
    seconds: u64,
) -> Value {
    let counter = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let benign = Arc::new(Mutex::new(Class::default()));
    let hostile = Arc::new(Mutex::new(Class::default()));
    let body = json!({"input": serde_json::from_slice::<Value>(ECHO_INPUT).unwrap_or(Value::Null), "user_id": "u-1"});
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (target, counter, measuring, stop) = (
                target.clone(),
                counter.clone(),
                measuring.clone(),
                stop.clone(),
            );
            let (benign, hostile, body) = (benign.clone(), hostile.clone(), body.clone());
            std::thread::spawn(move || {
                let a = agent();
                let (mut b, mut h) = (Class::default(), Class::default());
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let is_hostile =
                        hostile_percent > 0 && n % (100 / hostile_percent.min(100)) == 0;
                    let (url, key) = if is_hostile {
                        (
                            &target.hostile_urls[(n / 10) as usize % target.hostile_urls.len()],
                            &target.hostile_key,
                        )
                    } else {
                        (&target.benign_url, &target.benign_key)
                    };
                    let t = Instant::now();
                    let (status, reply) = post(&a, url, key, &body);
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    let c = if is_hostile { &mut h } else { &mut b };
                    if !is_hostile && (status != 200 || reply["output"] != body["input"]) {
                        eprintln!("benign call answered {status}: {reply}");
                    }
                    c.latencies_us.push(us);
                    *c.statuses.entry(status).or_default() += 1;
                    let kind = reply["error"]["kind"].as_str().unwrap_or(if status == 200 {
                        "ok"
                    } else {
                        "?"
                    });
                    *c.kinds.entry(kind.to_owned()).or_default() += 1;
                }
                let mut g = benign.lock().unwrap_or_else(|e| e.into_inner());
                g.latencies_us.append(&mut b.latencies_us);
                merge(&mut g, b);
                let mut g = hostile.lock().unwrap_or_else(|e| e.into_inner());
                g.latencies_us.append(&mut h.latencies_us);
                merge(&mut g, h);
            })
        })
        .collect();
    // One second of warm-up (connections, caches), then the measured window.
    std::thread::sleep(Duration::from_secs(1));
    measuring.store(true, Ordering::Relaxed);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let mut b = std::mem::take(&mut *benign.lock().unwrap_or_else(|e| e.into_inner()));
    let mut h = std::mem::take(&mut *hostile.lock().unwrap_or_else(|e| e.into_inner()));
    let total = (b.latencies_us.len() + h.latencies_us.len()) as f64 / elapsed;
    let v = json!({
        "concurrency": concurrency,
        "hostile_percent": hostile_percent,
        "seconds": elapsed,
        "requests_per_second": total,
        "benign": b.summary(elapsed),
        "hostile": h.summary(elapsed),
    });
    eprintln!(
        "c={concurrency:<3} hostile={hostile_percent:>2}%: {:>7.0} req/s; benign p50 {:>8.0} us p99 {:>8.0} us, statuses {}",
        total,
        v["benign"]["latency_us"]["p50"]
            .as_f64()
            .unwrap_or(f64::NAN),
        v["benign"]["latency_us"]["p99"]
            .as_f64()
            .unwrap_or(f64::NAN),
        v["benign"]["statuses"]
    );
    v
}

fn merge(into: &mut Class, from: Class) {
    for (k, v) in from.statuses {
        *into.statuses.entry(k).or_default() += v;
    }
    for (k, v) in from.kinds {
        *into.kinds.entry(k).or_default() += v;
    }
}

fn main() {
    let args = parse_args();
    let dir = disk_dir("aifn-http-load-");
    let aifn = std::fs::canonicalize(&args.aifn)
        .unwrap_or_else(|e| fail(&format!("{}: {e} (build it first)", args.aifn.display())));
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
    .map(|(t, r, s)| create_key(&aifn, &data, t, r, s))
    .collect();
    let server = start_server(&aifn, dir.path());
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
        benign_url: format!("{base}/v1/functions/echo/invoke"),
        benign_key: keys[2].clone(),
        hostile_urls: vec![
            format!("{base}/v1/functions/spin/invoke"),
            format!("{base}/v1/functions/grow/invoke"),
        ],
        hostile_key: keys[5].clone(),
    });
    let mut runs = Vec::new();
    for &c in &args.concurrency {
        runs.push(run_level(&target, c, 0, args.seconds));
        if args.hostile_percent > 0 {
            runs.push(run_level(&target, c, args.hostile_percent, args.seconds));
        }
    }
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "data_dir": dir.path().display().to_string(),
    });
    save_json("http_load.json", &json!({"machine": machine, "runs": runs}));
    drop(server);
}
