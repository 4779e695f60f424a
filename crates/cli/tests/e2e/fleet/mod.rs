//! A fleet end to end: several real `aifn serve` processes, each with its
//! own data dir, on one real PostgreSQL server. Any node answers any
//! request; an approval or a revocation on one takes effect on the
//! others; a node killed with SIGKILL loses no acknowledged record; a
//! database that goes away fails calls closed, and they recover by
//! themselves when it returns; `aifn audit verify --database` checks it
//! all.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use aifn_test_support::{ECHO_WAT, postgres_url};
use serde_json::{Value, json};

use crate::*;

mod limits;
mod outage;
mod tls;

pub(super) const ECHO_MANIFEST: &str =
    "description = \"echo\"\n[input_schema]\ntype = \"object\"\n";

/// One node: its data dir and its server.
pub(super) struct Node {
    pub(super) data: tempfile::TempDir,
    pub(super) server: Server,
}

impl Node {
    /// A node whose caches trust an entry for ten minutes: only the
    /// database's notifications can make another node's change visible
    /// here within the tests' seconds.
    pub(super) fn start(name: &str, url: &str) -> Node {
        Node::start_with(name, url, "")
    }

    /// [`Node::start`] with more of the `[service]` table (TOML lines).
    pub(super) fn start_with(name: &str, url: &str, service: &str) -> Node {
        let data = tempfile::tempdir().expect("tempdir");
        let config = data.path().join("aifn.toml");
        std::fs::write(
            &config,
            format!("[service]\nactive_cache_ms = 600000\n{service}"),
        )
        .expect("config");
        let server = Server::start(
            data.path(),
            &[
                "--database",
                url,
                "--node",
                name,
                "--config",
                config.to_str().expect("utf-8"),
            ],
        );
        Node { data, server }
    }

    pub(super) fn get(&self, key: &str, path: &str) -> (u16, Value) {
        http(
            "GET",
            &format!("{}{path}", self.server.url()),
            Some(key),
            None,
        )
    }

    pub(super) fn post(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        http(
            "POST",
            &format!("{}{path}", self.server.url()),
            Some(key),
            Some(body),
        )
    }

    pub(super) fn invoke(&self, key: &str, input: Value) -> (u16, Value) {
        self.post(
            key,
            "/v1/functions/echo/invoke",
            &json!({"input": input, "user_id": "u-1"}),
        )
    }

    /// `aifn` as a client of this node.
    pub(super) fn cli(&self, key: &str, args: &[&str]) -> (i32, String, String) {
        let url = self.server.url();
        cli(args, &[("AIFN_SERVER", url.as_str()), ("AIFN_KEY", key)])
    }
}

/// The keys of one tenant, made with `aifn keys create --database`.
pub(super) struct Keys {
    pub(super) author: String,
    pub(super) approver: String,
    pub(super) agent: String,
    pub(super) admin: String,
}

pub(super) fn fleet_key(url: &str, role: &str, subject: &str) -> String {
    fleet_key_in(url, "acme", role, subject)
}

pub(super) fn fleet_key_in(url: &str, tenant: &str, role: &str, subject: &str) -> String {
    // The keys live in the database: any data dir will do.
    let scratch = tempfile::tempdir().expect("tempdir");
    key_with(scratch.path(), &["--database", url], tenant, role, subject)
}

pub(super) fn keys(url: &str) -> Keys {
    Keys {
        author: fleet_key(url, "author", "alice"),
        approver: fleet_key(url, "approver", "bob"),
        agent: fleet_key(url, "agent", "hr-bot"),
        admin: fleet_key(url, "admin", "carol"),
    }
}

/// Uploads the echo function through `node` and returns its version.
pub(super) fn upload_echo(node: &Node, k: &Keys) -> u64 {
    let files = tempfile::tempdir().expect("tempdir");
    let wat = files.path().join("echo.wat");
    let manifest = files.path().join("echo.toml");
    std::fs::write(&wat, ECHO_WAT).expect("write");
    std::fs::write(&manifest, ECHO_MANIFEST).expect("write");
    let (code, out, err) = node.cli(
        &k.author,
        &[
            "upload",
            "echo",
            wat.to_str().expect("utf-8"),
            "--manifest",
            manifest.to_str().expect("utf-8"),
            "--json",
        ],
    );
    assert_eq!(code, 0, "upload: {err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["state"], "pending");
    v["version"].as_u64().expect("version")
}

/// Polls `f` until it is true, for at most `limit`; returns how long it took.
pub(super) fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

pub(super) fn verify(data: &std::path::Path, url: &str) -> (i32, String) {
    let (code, out, err) = cli(
        &[
            "audit",
            "verify",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--database",
            url,
            "--json",
        ],
        &[],
    );
    assert!(code == 0 || code == 1, "verify could not run: {err}");
    (code, out)
}

/// Every execution id the audit log holds for the tenant (through a node).
pub(super) fn recorded(node: &Node, admin: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/v1/audit?stream=execution&limit=1000&before_seq={b}"),
            None => "/v1/audit?stream=execution&limit=1000".to_owned(),
        };
        let (status, page) = node.get(admin, &path);
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().expect("entries").clone();
        for e in &entries {
            if let Some(id) = e["execution_id"].as_str() {
                ids.insert(id.to_owned());
            }
        }
        match page["next_before_seq"].as_u64() {
            Some(b) if !entries.is_empty() => before = Some(b),
            _ => return ids,
        }
    }
}

#[test]
fn three_nodes_on_one_database_are_one_fleet() {
    let url = postgres_url();
    let k = keys(&url);
    let nodes = [
        Node::start("node-1", &url),
        Node::start("node-2", &url),
        Node::start("node-3", &url),
    ];
    let (code, _, err) = nodes[2].cli(&k.admin, &["policy", "set", "hr-bot", "--allow", "echo"]);
    assert_eq!(code, 0, "{err}");

    // Uploaded on node 1: pending everywhere, and node 3 refuses to run it.
    let version = upload_echo(&nodes[0], &k);
    let (status, body) = nodes[2].invoke(&k.agent, json!({"n": 0}));
    assert_eq!(
        (status, &body["error"]["kind"]),
        (409, &json!("not_active")),
        "{body}"
    );

    // Approved on node 2; node 3, which just cached "not active", runs it
    // without waiting for its cache to expire (LISTEN/NOTIFY).
    let (code, _, err) = nodes[1].cli(
        &k.approver,
        &[
            "approve",
            &format!("echo@{version}"),
            "--notes",
            "reviewed on node 2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let took = eventually(Duration::from_secs(5), "approval reaches node 3", || {
        nodes[2].invoke(&k.agent, json!({"n": 1})).0 == 200
    });
    eprintln!("approval on node 2 ran on node 3 after {took:?}");
    for (i, node) in nodes.iter().enumerate() {
        let (status, body) = node.invoke(&k.agent, json!({"from": i}));
        assert_eq!(
            (status, &body["output"]),
            (200, &json!({"from": i})),
            "node {i}"
        );
    }

    // The author cannot approve, on any node: four eyes hold fleet-wide.
    let v2 = upload_echo(&nodes[2], &k);
    let (code, _, err) = nodes[0].cli(
        &k.author,
        &["approve", &format!("echo@{v2}"), "--notes", "mine"],
    );
    assert_ne!(code, 0, "approve by the author succeeded");
    assert!(err.contains("forbidden") || err.contains("author"), "{err}");

    // Revoked on node 1: the others stop running it.
    let (code, _, err) = nodes[0].cli(
        &k.approver,
        &["revoke", &format!("echo@{version}"), "--notes", "withdrawn"],
    );
    assert_eq!(code, 0, "{err}");
    for node in &nodes[1..] {
        eventually(
            Duration::from_secs(5),
            "revocation reaches the node",
            || node.invoke(&k.agent, json!({})).0 == 409,
        );
    }

    // A key revoked with the local command is refused by every node at
    // its next request.
    let (status, body) = nodes[1].get(&k.agent, "/v1/tools");
    assert_eq!(status, 200, "{body}");
    let key_id = {
        let scratch = tempfile::tempdir().expect("tempdir");
        let d = scratch.path().to_str().expect("utf-8");
        let (code, out, err) = cli(
            &[
                "keys",
                "list",
                "--data-dir",
                d,
                "--database",
                &url,
                "--json",
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        let list: Value = serde_json::from_str(&out).expect("json");
        let agent = list
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["subject"] == "hr-bot")
            .expect("the agent's key")
            .clone();
        agent["key_id"].as_str().expect("id").to_owned()
    };
    let scratch = tempfile::tempdir().expect("tempdir");
    let d = scratch.path().to_str().expect("utf-8");
    let (code, _, err) = cli(
        &[
            "keys",
            "revoke",
            "--data-dir",
            d,
            "--database",
            &url,
            &key_id,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    for node in &nodes {
        let (status, body) = node.get(&k.agent, "/v1/tools");
        assert_eq!(status, 401, "{body}");
    }

    // One chain holds every node's records; each node's checkpoints cover
    // it, and verification passes from every node's data dir.
    let datas: Vec<_> = nodes.iter().map(|n| n.data.path().to_owned()).collect();
    let mut nodes = nodes.into_iter();
    for node in nodes.by_ref() {
        assert!(node.server.stop().success());
    }
    for data in &datas {
        let (code, out) = verify(data, &url);
        assert_eq!(code, 0, "{out}");
        let report: Value = serde_json::from_str(&out).expect("json");
        assert!(
            report["records"].as_u64().expect("records") > 10,
            "{report}"
        );
    }
}

#[test]
fn a_node_killed_mid_stream_loses_no_acknowledged_record() {
    let url = postgres_url();
    let k = keys(&url);
    let survivor = Node::start("node-a", &url);
    let victim = Node::start("node-b", &url);
    let (code, _, err) = survivor.cli(&k.admin, &["policy", "set", "hr-bot", "--allow", "echo"]);
    assert_eq!(code, 0, "{err}");
    let v = upload_echo(&survivor, &k);
    let (code, _, err) = survivor.cli(
        &k.approver,
        &["approve", &format!("echo@{v}"), "--notes", "ok"],
    );
    assert_eq!(code, 0, "{err}");

    // Two clients stream calls at the victim, collecting every execution
    // id it acknowledged, until it dies.
    let stop = Arc::new(AtomicBool::new(false));
    let victim_url = victim.server.url();
    let streams: Vec<_> = (0..2)
        .map(|c| {
            let (stop, url, key) = (Arc::clone(&stop), victim_url.clone(), k.agent.clone());
            thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let Some((status, body)) = try_http(
                        &format!("{url}/v1/functions/echo/invoke"),
                        &key,
                        &json!({"input": {"c": c, "i": i}}),
                    ) else {
                        break; // the node is gone
                    };
                    if status == 200 {
                        acked.push(body["execution_id"].as_str().expect("id").to_owned());
                    }
                }
                acked
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    victim.server.kill();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = streams
        .into_iter()
        .flat_map(|t| t.join().expect("stream"))
        .collect();
    assert!(
        acked.len() > 20,
        "only {} calls were acknowledged",
        acked.len()
    );

    let have = recorded(&survivor, &k.admin);
    let lost: Vec<_> = acked.iter().filter(|id| !have.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost: {lost:?}",
        lost.len()
    );
    // The survivor goes on appending to the same chain.
    assert_eq!(survivor.invoke(&k.agent, json!({})).0, 200);
    let (code, out) = verify(survivor.data.path(), &url);
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify(victim.data.path(), &url);
    assert_eq!(code, 0, "the killed node's checkpoints still hold: {out}");
}

/// One invocation; `None` when the server is gone (connection refused or
/// reset), so a stream can end when its node is killed.
fn try_http(url: &str, key: &str, body: &Value) -> Option<(u16, Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(url)
        .header("Authorization", &format!("Bearer {key}"))
        .send_json(body)
        .ok()?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}
