//! The HTTP harness of the load generators (`src/bin/loadgen.rs`,
//! `src/bin/fleetload.rs`): real `aifn serve` processes, keys made with
//! `aifn keys create`, functions uploaded and approved over HTTP, and a
//! closed-loop load of C workers, each with one kept-alive connection.
//!
//! Everything here fails by printing the problem and exiting with status
//! 2: these are command-line tools, not tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::stats::summarize;
use crate::{ECHO_INPUT, wasm};

/// Prints `msg` after the program's name and exits with status 2.
pub fn fail(msg: &str) -> ! {
    let program = std::env::args()
        .next()
        .and_then(|p| Some(Path::new(&p).file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "bench".to_owned());
    eprintln!("{program}: {msg}");
    std::process::exit(2)
}

/// The flags of a load generator. A flag whose default is `None` is not
/// accepted.
pub struct LoadArgs {
    /// `--aifn PATH`: the `aifn` binary.
    pub aifn: PathBuf,
    /// `--seconds N`: the measured window of each run.
    pub seconds: u64,
    /// `--concurrency 1,16,64`: the levels, one run each.
    pub concurrency: Vec<usize>,
    /// `--hostile-percent N`: the share of hostile requests.
    pub hostile_percent: Option<u64>,
    /// `--only a,b`: the configurations to run (by name).
    pub only: Option<Vec<String>>,
    /// `--wrk`: also load with `wrk` (apt package `wrk`), a client much
    /// cheaper per request than this generator's.
    pub wrk: Option<bool>,
}

fn list<T: std::str::FromStr>(value: &str, flag: &str) -> Vec<T> {
    value
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .unwrap_or_else(|_| fail(&format!("{flag}: a comma-separated list")))
        })
        .collect()
}

/// Parses the command line over `defaults`.
pub fn parse_args(mut args: LoadArgs) -> LoadArgs {
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
            "--concurrency" => args.concurrency = list(&value(), "--concurrency"),
            "--hostile-percent" if args.hostile_percent.is_some() => {
                args.hostile_percent = Some(
                    value()
                        .parse()
                        .unwrap_or_else(|_| fail("--hostile-percent: a number")),
                )
            }
            "--only" if args.only.is_some() => args.only = Some(list(&value(), "--only")),
            "--wrk" if args.wrk.is_some() => args.wrk = Some(true),
            // criterion-style flags passed by `cargo bench`: ignore.
            "--bench" => {}
            other => fail(&format!("unknown argument {other}")),
        }
    }
    args
}

/// `aifn keys create` on the data dir (and `database`, a fleet's
/// PostgreSQL URL, when given); returns the printed secret.
pub fn create_key(
    aifn: &Path,
    data: &Path,
    database: Option<&str>,
    tenant: &str,
    role: &str,
    subject: &str,
) -> String {
    let mut cmd = Command::new(aifn);
    cmd.args(["keys", "create", "--data-dir"]).arg(data);
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    let out = cmd
        .args(["--tenant", tenant, "--role", role, "--subject", subject])
        .env_remove("AIFN_DATABASE_URL")
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

/// A server process, killed on drop.
pub struct Server {
    child: Child,
    /// `http://HOST:PORT`, as it logged it.
    pub base: String,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration whose admission limits are raised so that the load,
/// not the limiter, is measured; every tenant gets the same limits. On a
/// fleet of `fleet_nodes` the tenant limits are the fleet's, split evenly,
/// so they are multiplied here: each node still admits 64 at once.
pub fn raised_limits(fleet_nodes: u32) -> String {
    let n = fleet_nodes.max(1);
    format!(
        "[server]\nmax_requests = 4096\n\n[service]\nmax_concurrent = 64\nfleet_nodes = {n}\n\n\
         [service.tenant]\nrate_per_second = {}.0\nburst = {}\nmax_concurrent = {}\n",
        1_000_000 * n,
        1_000_000 * n,
        64 * n
    )
}

/// Starts `aifn serve` on a free loopback port with `config` written to
/// `dir/aifn.toml`, the data dir `dir/data` and `extra` arguments (e.g.
/// `--database URL --node NAME`); returns once it listens.
pub fn start_server(aifn: &Path, dir: &Path, config: &str, extra: &[&str]) -> Server {
    let config_path = dir.join("aifn.toml");
    std::fs::write(&config_path, config)
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
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&config_path)
        .args(extra)
        .env_remove("AIFN_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", aifn.display())));
    let stderr = child.stderr.take().unwrap_or_else(|| fail("no stderr"));
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.split("aifn listening on ").nth(1) {
                    break addr.trim().trim_matches('"').to_owned();
                }
                seen.push(line);
            }
            _ => fail(&format!(
                "the server exited before it listened:\n{}",
                seen.join("\n")
            )),
        }
    };
    // Keep draining its log so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// An HTTP client that returns every status as a response.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POSTs `body` with the bearer `key`; returns the status and JSON reply.
pub fn post(agent: &ureq::Agent, url: &str, key: &str, body: &Value) -> (u16, Value) {
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
pub fn deploy(base: &str, author: &str, approver: &str, name: &str, wat: &str, limits: Value) {
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
pub fn grant_all(base: &str, admin: &str, agent_subject: &str) {
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

/// The answers of one class of requests (benign or hostile) in a run.
#[derive(Default)]
pub struct Class {
    /// Each answer's latency.
    pub latencies_us: Vec<f64>,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Answers by error kind (`ok` for a 200).
    pub kinds: BTreeMap<String, u64>,
}

impl Class {
    /// Requests, rate, latency distribution, statuses and kinds.
    pub fn summary(&mut self, seconds: f64) -> Value {
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

/// Adds `from`'s latencies and counts to `into`.
pub fn merge(into: &mut Class, mut from: Class) {
    into.latencies_us.append(&mut from.latencies_us);
    for (k, v) in from.statuses {
        *into.statuses.entry(k).or_default() += v;
    }
    for (k, v) in from.kinds {
        *into.kinds.entry(k).or_default() += v;
    }
}

/// What a run sends where.
pub struct Target {
    /// The echo's invoke URL on each node: worker `i` uses `i % len`.
    pub benign_urls: Vec<String>,
    /// The agent key of the benign calls.
    pub benign_key: String,
    /// The hostile functions' invoke URLs, taken in turn.
    pub hostile_urls: Vec<String>,
    /// The agent key of the hostile calls.
    pub hostile_key: String,
}

/// The edges of a run's measured window, for samples taken around it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Window {
    /// Just before the window opens.
    Opening,
    /// Just after it closed.
    Closed,
}

/// One closed-loop run: `concurrency` workers for 1 s of warm-up and then
/// `seconds` measured; `window` is called at the window's two edges.
pub fn run_level(
    target: &Arc<Target>,
    concurrency: usize,
    hostile_percent: u64,
    seconds: u64,
    window: &mut dyn FnMut(Window),
) -> Value {
    let counter = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let benign = Arc::new(Mutex::new(Class::default()));
    let hostile = Arc::new(Mutex::new(Class::default()));
    let body = json!({"input": serde_json::from_slice::<Value>(ECHO_INPUT).unwrap_or(Value::Null), "user_id": "u-1"});
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (target, counter, measuring, stop) = (
                target.clone(),
                counter.clone(),
                measuring.clone(),
                stop.clone(),
            );
            let (benign, hostile, body) = (benign.clone(), hostile.clone(), body.clone());
            std::thread::spawn(move || {
                let a = agent();
                let benign_url = &target.benign_urls[i % target.benign_urls.len()];
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
                        (benign_url, &target.benign_key)
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
                merge(&mut benign.lock().unwrap_or_else(|e| e.into_inner()), b);
                merge(&mut hostile.lock().unwrap_or_else(|e| e.into_inner()), h);
            })
        })
        .collect();
    // One second of warm-up (connections, caches), then the measured window.
    std::thread::sleep(Duration::from_secs(1));
    window(Window::Opening);
    measuring.store(true, Ordering::Relaxed);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    window(Window::Closed);
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
