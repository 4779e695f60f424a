//! The agent gateway end to end: two agents of one tenant, one granted and
//! one not, both recorded with their decisions; `aifn policy` and `aifn
//! tenant` against a real server; and `aifn serve`'s warning for a tenant
//! left in open mode.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::Stdio;

use aifn_test_support::ECHO_WAT;
use serde_json::{Value, json};

use crate::*;

/// A server with an active `echo` in tenant acme, its admin and two agents.
struct Gate {
    server: Server,
    data: tempfile::TempDir,
    files: tempfile::TempDir,
    admin: String,
    approver: String,
    hr: String,
    intruder: String,
}

impl Gate {
    fn start() -> Gate {
        let data = tempfile::tempdir().expect("tempdir");
        let files = tempfile::tempdir().expect("tempdir");
        let d = data.path();
        let author = key(d, "acme", "author", "alice");
        let approver = key(d, "acme", "approver", "bob");
        let admin = key(d, "acme", "admin", "carol");
        let hr = key(d, "acme", "agent", "hr-bot");
        let intruder = key(d, "acme", "agent", "intruder-bot");
        let gate = Gate {
            server: Server::start(d, &[]),
            data,
            files,
            admin,
            approver,
            hr,
            intruder,
        };
        let module = gate.file("echo.wat", ECHO_WAT);
        let manifest = gate.file(
            "echo.toml",
            "description = \"echo\"\n[input_schema]\ntype = \"object\"\n",
        );
        let (code, _, err) = gate.cli(
            &author,
            &["upload", "echo", &module, "--manifest", &manifest],
        );
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = gate.cli(&gate.approver, &["approve", "echo@1", "--notes", "fine"]);
        assert_eq!(code, 0, "{err}");
        gate
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.files.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_owned()
    }

    fn cli(&self, key: &str, args: &[&str]) -> (i32, String, String) {
        let url = self.server.url();
        cli(args, &[("AIFN_SERVER", url.as_str()), ("AIFN_KEY", key)])
    }

    fn json(&self, key: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, out, err) = self.cli(key, &all);
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    fn invoke(&self, key: &str) -> (i32, String, String) {
        self.cli(key, &["invoke", "echo", "--input", r#"{"n": 1}"#])
    }
}

#[test]
fn two_agents_of_one_tenant_one_allowed_one_not_both_recorded() {
    let gate = Gate::start();
    let (code, out, err) = gate.cli(&gate.admin, &["policy", "set", "hr-bot", "--allow", "echo"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("allow   echo"), "{out}");

    // The granted agent gets its result...
    let (code, out, err) = gate.invoke(&gate.hr);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json"),
        json!({"n": 1})
    );
    // ...the other one a 403 that says why, and nothing ran.
    let (code, out, err) = gate.invoke(&gate.intruder);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("forbidden"), "{err}");
    assert!(err.contains("HTTP 403, reason not_allowed"), "{err}");
    assert!(err.contains("execution_id: "), "{err}");

    // Both are in the audit log with their decisions.
    let page = gate.json(&gate.admin, &["audit", "list", "--stream", "execution"]);
    let entries = page["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{page}");
    let of = |agent: &str| {
        entries
            .iter()
            .find(|e| e["agent_id"] == agent)
            .unwrap_or_else(|| panic!("no record of {agent}: {page}"))
    };
    let allowed = of("hr-bot");
    assert_eq!(allowed["outcome"], "ok");
    assert_eq!(
        allowed["admission"],
        json!({"decision": "allow", "allowed_by": "policy", "policy_version": 1})
    );
    let refused = of("intruder-bot");
    assert_eq!(refused["outcome"], "forbidden");
    assert_eq!(refused["admission"]["decision"], "reject");
    assert_eq!(refused["admission"]["reason"], "not_allowed");
    // The table says so too.
    let (code, out, err) = gate.cli(&gate.admin, &["audit", "list", "--stream", "execution"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("echo@1 ok by hr-bot [allow policy v1]"),
        "{out}"
    );
    assert!(
        out.contains("forbidden by intruder-bot [reject not_allowed]"),
        "{out}"
    );
}

#[test]
fn policies_are_set_from_a_file_shown_listed_and_deleted() {
    let gate = Gate::start();
    let policy = gate.file(
        "policy.toml",
        "allow = [\"echo\", \"leave_*\"]\ndeny = [\"leave_export\"]\n\n\
         [limits.echo]\nfuel = 1000000\nmemory_mib = 16\n\n[budget]\ncalls_per_hour = 5\n",
    );
    let set = gate.json(&gate.admin, &["policy", "set", "hr-bot", "--file", &policy]);
    assert_eq!(set["version"], 1, "{set}");
    assert_eq!(set["policy"]["limits"]["echo"]["memory_bytes"], 16 << 20);
    assert_eq!(set["policy"]["budget"], json!({"calls_per_hour": 5}));
    // Approvers read it, in words.
    let (code, out, err) = gate.cli(&gate.approver, &["policy", "show", "hr-bot"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "agent hr-bot: policy v1",
        "allow   echo, leave_*",
        "deny    leave_export",
        "limits  echo: fuel 1000000, memory 16777216 bytes",
        "budget  5 calls/hour",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    let (code, out, _) = gate.cli(&gate.admin, &["policy", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("hr-bot") && l.ends_with("v1")),
        "{out}"
    );
    assert!(out.contains("none (invokes nothing)"), "{out}");
    // A call counts against the budget.
    let (code, _, err) = gate.invoke(&gate.hr);
    assert_eq!(code, 0, "{err}");
    let usage = gate.json(&gate.admin, &["policy", "usage", "hr-bot"]);
    assert_eq!(usage["agent"]["calls"], 1, "{usage}");
    let (code, out, _) = gate.cli(&gate.admin, &["policy", "usage", "hr-bot"]);
    assert_eq!(code, 0);
    assert!(out.contains("1 of 5"), "{out}");

    // A mistake in the file points into it, and changes nothing.
    let bad = gate.file("bad.toml", "allow = [\"echo\"]\n[budget]\ncalls = 5\n");
    let (code, _, err) = gate.cli(&gate.admin, &["policy", "set", "hr-bot", "--file", &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{bad}:3:1: ")), "{err}");
    // Only the admin sets; agents cannot even read.
    let (code, _, err) = gate.cli(&gate.approver, &["policy", "set", "hr-bot", "--allow", "*"]);
    assert_eq!(code, 1);
    assert!(err.contains("forbidden"), "{err}");
    let (code, _, err) = gate.cli(&gate.hr, &["policy", "show", "hr-bot"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("forbidden") && err.contains("HTTP 403"),
        "{err}"
    );
    let shown = gate.json(&gate.admin, &["policy", "show", "hr-bot"]);
    assert_eq!(shown["version"], 1, "{shown}");

    let (code, out, err) = gate.cli(&gate.admin, &["policy", "delete", "hr-bot"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted"), "{out}");
    let (code, _, err) = gate.cli(&gate.admin, &["policy", "show", "hr-bot"]);
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
    let (code, _, err) = gate.invoke(&gate.hr);
    assert_eq!(code, 1);
    assert!(err.contains("reason not_allowed"), "{err}");
}

#[test]
fn tenant_mode_open_round_trip_and_the_serve_warning() {
    let gate = Gate::start();
    let (code, _, _) = gate.invoke(&gate.intruder);
    assert_eq!(code, 1);
    let (code, out, err) = gate.cli(&gate.admin, &["tenant", "mode", "open"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mode          open"), "{out}");
    let shown = gate.json(&gate.approver, &["tenant", "show"]);
    assert_eq!(shown["settings"]["mode"], "open", "{shown}");
    let (code, _, err) = gate.invoke(&gate.intruder);
    assert_eq!(code, 0, "open mode admits an agent without a policy: {err}");
    let (status, ready) = http("GET", &format!("{}/readyz", gate.server.url()), None, None);
    assert_eq!((status, &ready["open_tenants"]), (200, &json!(["acme"])));

    // A server started on a data dir with an open tenant warns of it.
    let Gate {
        server,
        data,
        admin,
        intruder,
        ..
    } = gate;
    assert!(server.stop().success());
    let d = data.path().to_str().expect("utf-8").to_owned();
    let (server, lines) = serve_logs(&d);
    let warning = lines
        .iter()
        .find(|l| l.contains("open mode"))
        .unwrap_or_else(|| panic!("no open-mode warning: {lines:?}"));
    let line: Value = serde_json::from_str(warning).expect("a JSON log line");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["fields"]["tenant"], "acme", "{line}");

    // Back to allowlist: the agent without a policy is refused again, and
    // a restarted server says nothing.
    let (code, out, err) = cli(
        &["tenant", "mode", "allowlist"],
        &[
            ("AIFN_SERVER", server.url.as_str()),
            ("AIFN_KEY", admin.as_str()),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("allowlist"), "{out}");
    let (code, _, err) = cli(
        &["invoke", "echo", "--input", "{}"],
        &[
            ("AIFN_SERVER", server.url.as_str()),
            ("AIFN_KEY", intruder.as_str()),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("reason not_allowed"), "{err}");
    server.stop();
    let (server, lines) = serve_logs(&d);
    assert!(!lines.iter().any(|l| l.contains("open mode")), "{lines:?}");
    server.stop();
}

/// A server whose stderr was read up to its listening line.
struct Logged {
    child: std::process::Child,
    url: String,
}

impl Logged {
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

/// Starts `aifn serve` on `data` with JSON logs; returns it and its log
/// lines up to the listening line.
fn serve_logs(data: &str) -> (Logged, Vec<String>) {
    let mut child = aifn()
        .args([
            "serve",
            "--data-dir",
            data,
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aifn serve starts");
    let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = Vec::new();
    let mut line = String::new();
    let url = loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read");
        assert!(n > 0, "serve exited early: {lines:?}");
        if let Some(rest) = line.strip_prefix("aifn listening on ") {
            break rest.trim().to_owned();
        }
        lines.push(line.trim_end().to_owned());
    };
    std::thread::spawn(move || {
        let _ = reader.read_to_end(&mut Vec::new());
    });
    (Logged { child, url }, lines)
}
