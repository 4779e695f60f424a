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

use std::sync::Arc;

use aifn_benches::http::{
    LoadArgs, Target, create_key, deploy, fail, grant_all, parse_args, raised_limits, run_level,
    start_server,
};
use aifn_benches::{ECHO_WAT, disk_dir, save_json};
use serde_json::json;

const INFINITE_LOOP: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

const MEMORY_BOMB: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable)))"#;

fn main() {
    let args = parse_args(LoadArgs {
        aifn: "target/release/aifn".into(),
        seconds: 10,
        concurrency: vec![1, 16, 64],
        hostile_percent: Some(10),
        only: None,
    });
    let hostile_percent = args.hostile_percent.unwrap_or(0);
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
    .map(|(t, r, s)| create_key(&aifn, &data, None, t, r, s))
    .collect();
    let server = start_server(&aifn, dir.path(), &raised_limits(1), &[]);
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
    for &c in &args.concurrency {
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
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "data_dir": dir.path().display().to_string(),
    });
    save_json("http_load.json", &json!({"machine": machine, "runs": runs}));
    drop(server);
}
