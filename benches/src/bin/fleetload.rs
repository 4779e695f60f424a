//! HTTP load against aifn on one PostgreSQL (issue 16): the echo's
//! invocations per second and p50/p99 latency, durable audit, for the
//! SQLite single node, one node on PostgreSQL and two nodes sharing that
//! PostgreSQL; and what PostgreSQL spends per invocation, from which the
//! number of nodes one PostgreSQL can carry is computed.
//!
//! ```sh
//! cargo build --release --bin aifn -p aifn-cli
//! cargo run --release -p aifn-benches --bin fleetload -- --aifn target/release/aifn
//! ```
//!
//! Flags: `--seconds N` (10), `--concurrency 16,64`, `--only
//! sqlite,pg-1,pg-2`. The PostgreSQL server is a private one (Debian's
//! `postgresql` package), durable: fsync, synchronous commit and
//! full-page writes on, its data in /tmp on the same disk. Everything (the
//! nodes, PostgreSQL and this generator) shares the machine's cores, and
//! their CPU time is measured apart over each window from `/proc`. Writes
//! `results/fleet_load.json`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aifn_benches::http::{
    LoadArgs, Server, Target, Window, agent, create_key, deploy, fail, grant_all, parse_args, post,
    raised_limits, run_level, start_server,
};
use aifn_benches::pgstat::{
    clock_ticks, cpu_ticks, delta, machine_ticks, postmaster_pid, sample, tree_ticks,
};
use aifn_benches::{ECHO_INPUT, ECHO_WAT, disk_dir, save_json};
use aifn_test_support::{PostgresServer, psql_at};
use serde_json::{Value, json};

/// One configuration: a name, its nodes, and whether they share a
/// PostgreSQL database (else each has SQLite files in its data dir).
struct Config {
    name: &'static str,
    nodes: usize,
    postgres: bool,
}

const CONFIGS: [Config; 3] = [
    Config {
        name: "sqlite",
        nodes: 1,
        postgres: false,
    },
    Config {
        name: "pg-1",
        nodes: 1,
        postgres: true,
    },
    Config {
        name: "pg-2",
        nodes: 2,
        postgres: true,
    },
];

/// CPU ticks of the parts, and PostgreSQL's counters, at one moment.
struct Sample {
    at: Instant,
    generator: u64,
    nodes: u64,
    postgres: u64,
    machine: (u64, u64),
    pg: Option<Value>,
}

fn take(node_pids: &[u32], pg: Option<(&str, u32)>) -> Sample {
    Sample {
        at: Instant::now(),
        generator: cpu_ticks(std::process::id()),
        nodes: node_pids.iter().map(|&p| cpu_ticks(p)).sum(),
        postgres: pg.map_or(0, |(_, pid)| tree_ticks(pid)),
        machine: machine_ticks(),
        pg: pg.map(|(url, _)| sample(url)),
    }
}

/// CPU seconds of each part between two samples.
fn cpu(a: &Sample, b: &Sample, tck: f64) -> Value {
    let s = |x: u64, y: u64| y.saturating_sub(x) as f64 / tck;
    let (generator, nodes, postgres) = (
        s(a.generator, b.generator),
        s(a.nodes, b.nodes),
        s(a.postgres, b.postgres),
    );
    let busy = s(a.machine.0, b.machine.0);
    let wall = b.at.duration_since(a.at).as_secs_f64();
    json!({
        "wall_seconds": wall,
        "generator_s": generator,
        "nodes_s": nodes,
        "postgres_s": postgres,
        "machine_busy_s": busy,
        "machine_all_s": s(a.machine.1, b.machine.1),
        "other_s": (busy - generator - nodes - postgres).max(0.0),
    })
}

/// Runs one configuration at every concurrency; returns its runs and
/// the check of its audit chain afterwards.
fn run_config(
    aifn: &Path,
    config: &Config,
    pg: Option<&PostgresServer>,
    args: &LoadArgs,
    tck: f64,
) -> Value {
    let dir = disk_dir(&format!("aifn-fleet-{}-", config.name));
    let url = pg.map(|pg| {
        let url = pg.database();
        let (ok, text) = psql_at(&url, "CREATE EXTENSION pg_stat_statements");
        if !ok {
            fail(&format!("CREATE EXTENSION pg_stat_statements: {text}"));
        }
        url
    });
    let postmaster = url.as_deref().map(|u| (u, postmaster_pid(u)));
    let node_dirs: Vec<_> = (0..config.nodes)
        .map(|i| {
            let d = dir.path().join(format!("node-{}", i + 1));
            std::fs::create_dir_all(&d).unwrap_or_else(|e| fail(&format!("{e}")));
            d
        })
        .collect();
    let keys: Vec<String> = [
        ("acme", "author", "alice"),
        ("acme", "approver", "bob"),
        ("acme", "agent", "assistant"),
        ("acme", "admin", "root"),
    ]
    .iter()
    .map(|(t, r, s)| create_key(aifn, &node_dirs[0].join("data"), url.as_deref(), t, r, s))
    .collect();
    let toml = raised_limits(config.nodes as u32);
    let servers: Vec<Server> = node_dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let node = format!("node-{}", i + 1);
            let mut extra = vec!["--node", node.as_str()];
            if let Some(u) = url.as_deref() {
                extra.extend(["--database", u]);
            }
            start_server(aifn, d, &toml, &extra)
        })
        .collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    deploy(&bases[0], &keys[0], &keys[1], "echo", ECHO_WAT, json!({}));
    grant_all(&bases[0], &keys[3], "assistant");
    // Every node answers before the runs (the approval reached them all).
    let input: Value = serde_json::from_slice(ECHO_INPUT).unwrap_or(Value::Null);
    let body = json!({"input": input, "user_id": "u-1"});
    for base in &bases {
        let url = format!("{base}/v1/functions/echo/invoke");
        let (status, reply) = post(&agent(), &url, &keys[2], &body);
        if status != 200 {
            fail(&format!("{url}: {status} {reply}"));
        }
    }
    let target = Arc::new(Target {
        benign_urls: bases
            .iter()
            .map(|b| format!("{b}/v1/functions/echo/invoke"))
            .collect(),
        benign_key: keys[2].clone(),
        hostile_urls: Vec::new(),
        hostile_key: String::new(),
    });
    let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
    let mut runs = Vec::new();
    for &c in &args.concurrency {
        let mut samples = Vec::new();
        eprint!("{:<6} ", config.name);
        let mut run = run_level(&target, c, 0, args.seconds, &mut |_: Window| {
            samples.push(take(&pids, postmaster));
        });
        let (a, b) = (&samples[0], &samples[1]);
        let ok = run["benign"]["statuses"]["200"].as_f64().unwrap_or(0.0);
        let seconds = run["seconds"].as_f64().unwrap_or(1.0);
        let cpu = cpu(a, b, tck);
        let per_call_us = |k: &str| cpu[k].as_f64().unwrap_or(0.0) * 1e6 / ok.max(1.0);
        run["cpu"] = cpu.clone();
        run["cpu_us_per_invocation"] = json!({
            "generator": per_call_us("generator_s"),
            "nodes": per_call_us("nodes_s"),
            "postgres": per_call_us("postgres_s"),
        });
        if let (Some(x), Some(y)) = (&a.pg, &b.pg) {
            let wall = b.at.duration_since(a.at).as_secs_f64();
            run["postgres"] = delta(x, y, ok, wall.max(seconds));
            let p = &run["postgres"]["per_invocation"];
            eprintln!(
                "       postgres: {:.2} statements, {:.3} commits, {:.0} WAL bytes per call; {:.0} commits/s; {:.1} records per batch; CPU {:.0} us/call",
                p["statements"].as_f64().unwrap_or(0.0),
                p["commits"].as_f64().unwrap_or(0.0),
                p["wal_bytes"].as_f64().unwrap_or(0.0),
                run["postgres"]["commits_per_second"]
                    .as_f64()
                    .unwrap_or(0.0),
                run["postgres"]["records_per_audit_batch"]
                    .as_f64()
                    .unwrap_or(0.0),
                per_call_us("postgres_s"),
            );
        }
        runs.push(run);
    }
    drop(servers);
    // The chain the nodes wrote together, checked as an operator would.
    let mut verify = std::process::Command::new(aifn);
    verify
        .args(["audit", "verify", "--data-dir"])
        .arg(node_dirs[0].join("data"))
        .env_remove("AIFN_DATABASE_URL");
    if let Some(u) = url.as_deref() {
        verify.args(["--database", u]);
    }
    let out = verify
        .output()
        .unwrap_or_else(|e| fail(&format!("audit verify: {e}")));
    let verify = json!({
        "ok": out.status.success(),
        "output": String::from_utf8_lossy(&out.stdout).trim(),
        "stderr": String::from_utf8_lossy(&out.stderr).trim(),
    });
    eprintln!("{:<6} audit verify: {}", config.name, verify["output"]);
    let records = url.as_deref().map(|u| {
        let (_, n) = psql_at(u, "SELECT count(*) FROM audit_entries");
        n.trim().parse::<u64>().unwrap_or(0)
    });
    json!({
        "name": config.name,
        "nodes": config.nodes,
        "database": if config.postgres { "postgresql" } else { "sqlite" },
        "runs": runs,
        "audit_verify": verify,
        "audit_records": records,
    })
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// How many invocations per second one PostgreSQL could carry on this
/// machine with its cores to itself, and so how many nodes, from the
/// PostgreSQL run with the most invocations per second.
fn capacity(configs: &[Value], cores: f64) -> Value {
    let runs = || {
        configs.iter().flat_map(|c| {
            c["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |r| (c, r))
        })
    };
    let peak = runs()
        .filter(|(_, r)| r.get("postgres").is_some())
        .max_by(|a, b| f(&a.1["requests_per_second"]).total_cmp(&f(&b.1["requests_per_second"])));
    let Some((peak_config, peak)) = peak else {
        return Value::Null;
    };
    let single = runs()
        .filter(|(c, r)| c["name"] == "pg-1" && r.get("postgres").is_some())
        .map(|(_, r)| f(&r["requests_per_second"]))
        .fold(0.0, f64::max);
    let pg = &peak["postgres"];
    let cpu_us = f(&peak["cpu_us_per_invocation"]["postgres"]);
    let cpu_bound = cores * 1e6 / cpu_us.max(1e-9);
    // Batches are appended one at a time (the advisory lock), each
    // holding it for its statements and its commit's WAL flush: at most
    // 1 / hold batches a second, of at most 256 records (of the measured
    // batch size as run).
    let hold_us = f(&pg["wal_sync_mean_us"]) + f(&pg["audit_batch_exec_us"]);
    let serial_bound = 256.0 * 1e6 / hold_us.max(1e-9);
    let serial_as_run = f(&pg["records_per_audit_batch"]) * 1e6 / hold_us.max(1e-9);
    let carried = cpu_bound.min(serial_bound);
    json!({
        "from_run": {"config": peak_config["name"], "concurrency": peak["concurrency"],
                     "requests_per_second": peak["requests_per_second"]},
        "cores": cores,
        "postgres_cpu_us_per_invocation": cpu_us,
        "cpu_bound_per_second": cpu_bound,
        "wal_sync_mean_us": pg["wal_sync_mean_us"],
        "audit_batch_exec_us": pg["audit_batch_exec_us"],
        "lock_hold_us": hold_us,
        "records_per_audit_batch": pg["records_per_audit_batch"],
        "serial_bound_per_second": serial_bound,
        "serial_bound_at_run_batch_per_second": serial_as_run,
        "postgres_carries_per_second": carried,
        "single_node_per_second": single,
        "nodes": (carried / single.max(1e-9)).floor(),
        "formula": "lock_hold_us = wal_sync_mean_us + audit_batch_exec_us; \
                    carried = min(cores * 1e6 / postgres_cpu_us_per_invocation, \
                    256 * 1e6 / lock_hold_us); nodes = floor(carried / single_node_per_second)",
    })
}

fn main() {
    let args = parse_args(LoadArgs {
        aifn: "target/release/aifn".into(),
        seconds: 10,
        concurrency: vec![16, 64],
        hostile_percent: None,
        only: Some(CONFIGS.iter().map(|c| c.name.to_owned()).collect()),
        wrk: None,
    });
    let aifn = std::fs::canonicalize(&args.aifn)
        .unwrap_or_else(|e| fail(&format!("{}: {e} (build it first)", args.aifn.display())));
    let only = args.only.clone().unwrap_or_default();
    let chosen: Vec<&Config> = CONFIGS
        .iter()
        .filter(|c| only.iter().any(|o| o == c.name))
        .collect();
    let tck = clock_ticks();
    let pg = chosen
        .iter()
        .any(|c| c.postgres)
        .then(PostgresServer::start_durable);
    let version = pg.as_ref().map(|pg| {
        let url = pg.database();
        psql_at(&url, "SHOW server_version").1.trim().to_owned()
    });
    let configs: Vec<Value> = chosen
        .iter()
        .map(|c| run_config(&aifn, c, pg.as_ref().filter(|_| c.postgres), &args, tck))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let capacity = capacity(&configs, cores);
    eprintln!("capacity: {capacity}");
    let machine = json!({
        "cpus": cores,
        "postgres": version,
        "postgres_settings": "fsync=on synchronous_commit=on full_page_writes=on, \
                              otherwise PostgreSQL's defaults; data in /tmp (same ext4 disk)",
    });
    save_json(
        "fleet_load.json",
        &json!({"machine": machine, "configs": configs, "capacity": capacity}),
    );
}
