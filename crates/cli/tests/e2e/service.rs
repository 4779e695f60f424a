//! The service end to end: keys, upload, four-eyes approval, invocation,
//! tenant isolation, schema errors, a hostile guest beside a well-behaved
//! tenant, revocation, and an audit log that holds it all and verifies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;

use aifn_test_support::ECHO_WAT;
use serde_json::{Value, json};

use crate::*;

const SPIN: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

struct Env {
    server: Server,
    data: tempfile::TempDir,
}

impl Env {
    fn as_key(&self, key: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AIFN_SERVER", self.server.url()),
            ("AIFN_KEY", key.to_owned()),
        ]
    }

    fn cli(&self, key: &str, args: &[&str]) -> (i32, String, String) {
        let env = self.as_key(key);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cli(args, &env)
    }

    fn get(&self, key: &str, path: &str) -> (u16, Value) {
        http(
            "GET",
            &format!("{}{path}", self.server.url()),
            Some(key),
            None,
        )
    }

    fn post(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        http(
            "POST",
            &format!("{}{path}", self.server.url()),
            Some(key),
            Some(body),
        )
    }

    fn invoke(&self, key: &str, name: &str, input: Value) -> (u16, Value) {
        self.post(
            key,
            &format!("/v1/functions/{name}/invoke"),
            &json!({"input": input, "user_id": "u-42"}),
        )
    }
}

fn manifest(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).expect("write manifest");
    p.to_str().expect("utf-8").to_owned()
}

fn module(dir: &Path, name: &str, wat: &str) -> String {
    let p = dir.join(format!("{name}.wat"));
    std::fs::write(&p, wat).expect("write module");
    p.to_str().expect("utf-8").to_owned()
}

#[test]
fn the_whole_lifecycle_over_a_real_socket() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let alice = key(d, "acme", "author", "alice");
    let alice_approver = key(d, "acme", "approver", "alice");
    let bob = key(d, "acme", "approver", "bob");
    let agent = key(d, "acme", "agent", "hr-bot");
    let admin = key(d, "acme", "admin", "carol");
    let g_author = key(d, "globex", "author", "gina");
    let g_approver = key(d, "globex", "approver", "gus");
    let g_agent = key(d, "globex", "agent", "fin-bot");
    let g_admin = key(d, "globex", "admin", "gail");
    // A host fuel maximum far above what 300 ms of spinning burns, so the
    // hostile guest below is stopped by its deadline, not its fuel.
    let config = files.path().join("aifn.toml");
    std::fs::write(
        &config,
        "log_format = \"json\"\n[service.limits]\nfuel = 100000000000\n",
    )
    .expect("config");
    let env = Env {
        server: Server::start(d, &["--config", config.to_str().expect("utf-8")]),
        data,
    };
    // Agents invoke nothing until their admin grants them: hr-bot what it
    // is meant for, fin-bot every function of its own tenant.
    let (code, out, err) = env.cli(
        &admin,
        &[
            "policy",
            "set",
            "hr-bot",
            "--allow",
            "calculate_leave_days,spin",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("policy v1"), "{out}");
    let (code, _, err) = env.cli(&g_admin, &["policy", "set", "fin-bot", "--allow", "*"]);
    assert_eq!(code, 0, "{err}");

    // An author uploads a real example function: pending, and cannot run.
    let wasm = function_wasm("calculate_leave_days");
    let leave_manifest = repo().join("functions/calculate_leave_days/aifn.toml");
    let (code, out, err) = env.cli(
        &alice,
        &[
            "upload",
            "calculate_leave_days",
            wasm.to_str().expect("utf-8"),
            "--manifest",
            leave_manifest.to_str().expect("utf-8"),
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let uploaded: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(uploaded["state"], "pending");
    assert_eq!(uploaded["version"], 1);
    let sha = uploaded["sha256"].as_str().expect("sha").to_owned();
    let leave = json!({"start_date": "2024-12-23", "end_date": "2025-01-03", "holidays": ["2024-12-25", "2024-12-26", "2025-01-01"]});
    let (status, body) = env.invoke(&agent, "calculate_leave_days", leave.clone());
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (409, Some("not_active"))
    );

    // The author's own approval is refused, whatever role the key has.
    let (code, _, err) = env.cli(
        &alice_approver,
        &["approve", "calculate_leave_days@1", "--notes", "mine"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    let (status, _) = env.post(
        &alice,
        "/v1/functions/calculate_leave_days/versions/1/approve",
        &json!({"sha256": sha, "notes": "mine"}),
    );
    assert_eq!(status, 403);
    // An approval bound to another hash is refused.
    let (status, body) = env.post(
        &bob,
        "/v1/functions/calculate_leave_days/versions/1/approve",
        &json!({"sha256": "00".repeat(32), "notes": "ok"}),
    );
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (409, Some("conflict"))
    );
    // Another approver approves the exact hash.
    let (code, out, err) = env.cli(
        &bob,
        &[
            "approve",
            "calculate_leave_days@1",
            "--notes",
            "reviewed: pure date math",
            "--sha256",
            &sha,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("active"), "{out}");

    // An agent invokes it and gets the right output.
    let (status, body) = env.invoke(&agent, "calculate_leave_days", leave.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!({"working_days": 7, "calendar_days": 12, "weekend_days": 2, "holidays_excluded": ["2024-12-25", "2024-12-26", "2025-01-01"]})
    );
    assert_eq!(body["execution_id"].as_str().map(str::len), Some(32));
    let (code, out, _) = env.cli(
        &agent,
        &[
            "invoke",
            "calculate_leave_days",
            "--input",
            &leave.to_string(),
            "--user",
            "u-7",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json")["working_days"],
        7
    );
    // The tool catalog offers it with its schema.
    let (status, tools) = env.get(&agent, "/v1/tools");
    assert_eq!(status, 200);
    assert_eq!(
        tools["tools"][0]["function"]["name"],
        "calculate_leave_days"
    );
    assert_eq!(
        tools["tools"][0]["function"]["parameters"]["required"],
        json!(["start_date", "end_date"])
    );

    // Another tenant can neither see nor invoke it.
    let (status, list) = env.get(&g_agent, "/v1/functions");
    assert_eq!(
        (status, list["functions"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(
        env.get(&g_agent, "/v1/functions/calculate_leave_days").0,
        404
    );
    let (status, body) = env.invoke(&g_agent, "calculate_leave_days", leave.clone());
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (404, Some("not_found"))
    );

    // A bad input gets 400 with the schema violation, for the model to fix.
    let (status, body) = env.invoke(
        &agent,
        "calculate_leave_days",
        json!({"start_date": "2024-12-23", "end_date": 5}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["kind"], "invalid_input");
    let violations = body["error"]["violations"].as_array().expect("violations");
    assert!(
        violations.iter().any(|v| v["path"] == "/end_date"),
        "{body}"
    );

    // A hostile function times out while another tenant keeps being served.
    let dir = files.path();
    let spin_manifest = manifest(
        dir,
        "spin",
        "description = \"spins forever\"\n[input_schema]\ntype = \"object\"\n[limits]\ntimeout_ms = 300\n",
    );
    let (code, out, err) = env.cli(
        &alice,
        &[
            "upload",
            "spin",
            &module(dir, "spin", SPIN),
            "--manifest",
            &spin_manifest,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let spin_sha = serde_json::from_str::<Value>(&out).expect("json")["sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    let (code, _, err) = env.cli(
        &bob,
        &[
            "approve",
            "spin@1",
            "--notes",
            "test of the sandbox",
            "--sha256",
            &spin_sha,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let echo_manifest = manifest(
        dir,
        "echo",
        "description = \"echo\"\n[input_schema]\ntype = \"object\"\n",
    );
    let (code, _, err) = env.cli(
        &g_author,
        &[
            "upload",
            "echo",
            &module(dir, "echo", ECHO_WAT),
            "--manifest",
            &echo_manifest,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.cli(&g_approver, &["approve", "echo@1", "--notes", "fine"]);
    assert_eq!(code, 0, "{err}");

    let env = Arc::new(env);
    let hostile_done = Arc::new(AtomicBool::new(false));
    let served_meanwhile = Arc::new(AtomicU32::new(0));
    let hostile: Vec<_> = (0..4)
        .map(|_| {
            let (env, agent) = (Arc::clone(&env), agent.clone());
            thread::spawn(move || {
                let mut kinds = Vec::new();
                for _ in 0..3 {
                    let (status, body) = env.invoke(&agent, "spin", json!({}));
                    assert_eq!(status, 422, "{body}");
                    kinds.push(body["error"]["kind"].as_str().unwrap_or("").to_owned());
                    assert!(body["execution_id"].is_string());
                }
                kinds
            })
        })
        .collect();
    let neighbour = {
        let (env, g_agent, done, served) = (
            Arc::clone(&env),
            g_agent.clone(),
            Arc::clone(&hostile_done),
            Arc::clone(&served_meanwhile),
        );
        thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                let (status, body) = env.invoke(&g_agent, "echo", json!({"n": 1}));
                assert_eq!((status, &body["output"]), (200, &json!({"n": 1})), "{body}");
                assert_eq!(env.get(&g_agent, "/v1/functions").0, 200);
                served.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for h in hostile {
        let kinds = h.join().expect("hostile caller");
        assert!(kinds.iter().all(|k| k == "timeout"), "{kinds:?}");
    }
    hostile_done.store(true, Ordering::Release);
    neighbour
        .join()
        .expect("the neighbour tenant was served correctly throughout");
    assert!(
        served_meanwhile.load(Ordering::Relaxed) > 0,
        "the other tenant got answers while guests spun"
    );
    let (status, _) = http("GET", &format!("{}/healthz", env.server.url()), None, None);
    assert_eq!(status, 200);

    // Revoke, and the next call gets 409.
    let (code, _, err) = env.cli(
        &bob,
        &[
            "revoke",
            "calculate_leave_days@1",
            "--notes",
            "policy change",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (status, body) = env.invoke(&agent, "calculate_leave_days", leave);
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (409, Some("not_active"))
    );

    // The audit log holds every attempt, per tenant, and verifies.
    let (code, out, err) = env.cli(&admin, &["audit", "list", "--limit", "1000", "--json"]);
    assert_eq!(code, 0, "{err}");
    let page: Value = serde_json::from_str(&out).expect("json");
    let entries = page["entries"].as_array().expect("entries");
    let outcomes: Vec<&str> = entries
        .iter()
        .rev()
        .filter(|e| e["stream"] == "execution")
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    let expected: Vec<&str> = ["not_active", "ok", "ok", "invalid_input"]
        .into_iter()
        .chain(["timeout"; 12])
        .chain(["not_active"])
        .collect();
    assert_eq!(outcomes, expected);
    assert!(
        entries.iter().all(|e| e["tenant_id"] == "acme"),
        "only acme's records"
    );
    let registry = || entries.iter().rev().filter(|e| e["stream"] == "registry");
    // The actions that took effect...
    let actions: Vec<&str> = registry()
        .filter(|e| e["refused"].is_null())
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "key_created",
            "key_created",
            "key_created",
            "key_created",
            "key_created",
            "policy_set",
            "upload",
            "approve",
            "upload",
            "approve",
            "revoke"
        ]
    );
    // ...and the refused ones: the author's own approval (as an approver
    // key, then as an author key) and an approval bound to another hash.
    let refused: Vec<(&str, &str)> = registry()
        .filter(|e| !e["refused"].is_null())
        .filter_map(|e| Some((e["action"].as_str()?, e["refused"]["kind"].as_str()?)))
        .collect();
    assert_eq!(
        refused,
        [
            ("approve", "forbidden"),
            ("approve", "forbidden"),
            ("approve", "conflict")
        ]
    );
    let ok = entries
        .iter()
        .find(|e| e["outcome"] == "ok")
        .expect("an ok record");
    assert_eq!(ok["module_sha256"], sha.as_str());
    assert_eq!(ok["agent_id"], "hr-bot");
    assert_eq!(ok["input_summary"]["start_date"], "string");
    let (_, g_page) = env.get(&g_admin, "/v1/audit?stream=execution&outcome=not_found");
    assert_eq!(
        g_page["entries"].as_array().map(Vec::len),
        Some(1),
        "{g_page}"
    );
    // Agents cannot read the audit log.
    assert_eq!(env.get(&agent, "/v1/audit").0, 403);

    let env = Arc::into_inner(env).expect("threads are done");
    let status = env.server.stop();
    assert!(status.success(), "graceful shutdown: {status:?}");
    let data_dir = env.data.path().to_str().expect("utf-8").to_owned();
    let (code, out, err) = cli(&["audit", "verify", "--data-dir", &data_dir], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: the audit log verifies"), "{out}");
}

#[test]
fn a_tampered_audit_log_fails_verification_with_exit_1() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    for i in 0..5 {
        key(d, "acme", "agent", &format!("bot-{i}"));
    }
    let dir = d.to_str().expect("utf-8");
    let (code, _, _) = cli(&["audit", "checkpoint", "--data-dir", dir], &[]);
    assert_eq!(code, 0);
    let (code, out, _) = cli(&["audit", "verify", "--data-dir", dir], &[]);
    assert_eq!(code, 0, "{out}");
    // Delete the tail after the checkpoint: truncation must be detected.
    let db = d.join("audit.sqlite3");
    let status = Command::new("python3")
        .args(["-c", &format!("import sqlite3; c=sqlite3.connect({:?}); c.execute('DELETE FROM audit_entries WHERE seq >= 4'); c.commit()", db.to_str().expect("utf-8"))])
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let (code, out, _) = cli(&["audit", "verify", "--data-dir", dir], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
}

/// The signing key kept outside the data dir (`audit_signing_key`, the
/// deployment checklist): local commands sign with it when
/// `AIFN_AUDIT_SIGNING_KEY` names it, and create no second key in the data
/// dir. Without it, a local command would sign with another key, and
/// verification against the trusted public key refuses that checkpoint.
#[test]
fn local_commands_sign_with_the_key_kept_outside_the_data_dir() {
    let data = tempfile::tempdir().expect("tempdir");
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_str().expect("utf-8");
    let signing = keys_dir.path().join("audit-signing.key");
    let env = [("AIFN_AUDIT_SIGNING_KEY", signing.to_str().expect("utf-8"))];
    let create = [
        "keys",
        "create",
        "--data-dir",
        dir,
        "--tenant",
        "acme",
        "--role",
        "agent",
        "--subject",
        "bot",
    ];

    let (code, _, err) = cli(&create, &env);
    assert_eq!(code, 0, "{err}");
    assert!(signing.exists(), "the key outside the data dir was created");
    assert!(
        !data.path().join("audit-signing.key").exists(),
        "no second key inside the data dir"
    );
    let (code, out, err) = cli(&["audit", "checkpoint", "--data-dir", dir], &env);
    assert_eq!(code, 0, "{err}");
    let public = out
        .trim()
        .rsplit(' ')
        .next()
        .expect("public key")
        .to_owned();
    let verify = [
        "audit",
        "verify",
        "--data-dir",
        dir,
        "--public-key",
        &public,
    ];
    let (code, out, _) = cli(&verify, &env);
    assert_eq!(code, 0, "{out}");

    // The same command without the variable signs with a key in the data
    // dir: the trusted public key no longer verifies the log.
    let (code, _, err) = cli(&create, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(data.path().join("audit-signing.key").exists());
    let (code, out, _) = cli(&verify, &env);
    assert_eq!(
        code, 1,
        "a checkpoint by another key must fail verification: {out}"
    );
}
