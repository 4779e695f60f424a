//! The approver console end to end: a real `aifn serve`, a real Chromium
//! (Debian's) driven by Playwright (`tests/console`, installed by `cargo
//! xtask test`). The browser script reports what it saw; this test checks
//! it, and checks through the API that what the browser did took effect.
//! Its screenshots go to a temporary directory; with
//! `AIFN_CONSOLE_SHOTS=docs/console` they refresh the ones in
//! docs/console.md (a test run leaves the working tree alone).

use std::path::Path;
use std::process::Command;

use aifn_test_support::ECHO_WAT;
use serde_json::{Value, json};

use crate::{Server, cli, http, key, repo};

/// Markup and script in author-written text: shown as text, never run.
const DESCRIPTION: &str = r#"Echoes <b>its</b> input <script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"#;
const NOTES: &str =
    r#"<i>reviewed</i> <script>window.__pwned=3</script><img src=x onerror="window.__pwned=4">"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_str().expect("utf-8").to_owned()
}

#[test]
fn an_approver_reviews_tests_and_decides_in_a_browser() {
    let dir = repo().join("tests/console");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (`cargo xtask test` does)",
        dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium (`cargo xtask test` does, as root)"
    );
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let author = key(d, "acme", "author", "alice");
    let approver = key(d, "acme", "approver", "bob");
    let admin = key(d, "acme", "admin", "carol");
    let agent = key(d, "acme", "agent", "bot");
    let server = Server::start(d, &[]);
    let url = server.url();
    let env = |k: &str| vec![("AIFN_SERVER", url.clone()), ("AIFN_KEY", k.to_owned())];
    let run = |k: &str, args: &[&str]| {
        let env = env(k);
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let (code, out, err) = cli(args, &env);
        assert_eq!(code, 0, "aifn {args:?}: {err}");
        out
    };
    let module = write(d, "echo.wat", ECHO_WAT);
    let schema = "[input_schema]\ntype = \"object\"\n";
    let tests = "[[tests]]\nname = \"echoes\"\ninput = { text = \"hi\" }\nexpect_output = { text = \"hi\" }\n";
    for (name, description) in [
        ("echo", DESCRIPTION),
        ("other", "Another echo"),
        ("mine", "Uploaded by its author"),
    ] {
        let manifest = write(
            d,
            &format!("{name}.toml"),
            &format!("description = '{description}'\n{schema}{tests}"),
        );
        run(&author, &["upload", name, &module, "--manifest", &manifest]);
    }
    run(&admin, &["policy", "set", "bot", "--allow", "*"]);
    let (status, mine) = http(
        "GET",
        &format!("{url}/v1/functions/mine/versions/1"),
        Some(&approver),
        None,
    );
    assert_eq!(status, 200, "{mine}");

    let scratch = tempfile::tempdir().expect("tempdir");
    let shots = match std::env::var_os("AIFN_CONSOLE_SHOTS") {
        Some(dir) => repo().join(dir),
        None => scratch.path().to_owned(),
    };
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let settings = json!({
        "approver": approver, "author": author, "admin": admin, "agent": agent,
        "review": "echo", "reject": "other", "own": "mine",
        "own_sha256": mine["sha256"], "payload": NOTES,
        "shots": shots.to_str().expect("utf-8"),
    });
    let out = Command::new("node")
        .current_dir(&dir)
        .env("CHROMIUM", &chromium)
        .args(["console.mjs", &url, &settings.to_string()])
        .output()
        .expect("node runs (install Node.js 18 or newer)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser script failed: {stderr}");
    let o: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let text = |k: &str| o[k].as_str().unwrap_or_default().to_owned();

    // Sign-in: agents refused; a session cookie, never the key.
    assert_eq!(o["agent_sign_in_url"], "/console/sign-in", "{o}");
    assert!(
        text("agent_sign_in_alert").contains("Agent keys cannot sign in"),
        "{o}"
    );
    assert_eq!(o["agent_cookies"], 0, "{o}");
    assert_eq!(o["approver_landing"], "/console/pending", "{o}");
    assert_eq!(
        o["session_cookie"],
        json!({"httpOnly": true, "sameSite": "Strict", "path": "/console"}),
        "{o}"
    );
    assert_eq!(o["key_in_storage"], false, "{o}");

    // The queue, the version's report and source.
    let rows = o["pending_rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{o}");
    assert!(
        rows.iter()
            .all(|r| r.as_str().unwrap_or_default().contains("pending")),
        "{o}"
    );
    assert_eq!(o["version_heading"], "echo v1", "{o}");
    assert_eq!(o["has_report"], true, "{o}");
    assert!(text("source_text").contains("aifn_call"), "{o}");
    assert_eq!(o["pending_badge"], "pending", "{o}");

    // Author text is text: the markup shows, the script never ran.
    assert_eq!(text("description_text"), DESCRIPTION, "{o}");
    assert_eq!(o["pwned_after_view"], Value::Null, "{o}");
    assert_eq!(o["pwned_after_approve"], Value::Null, "{o}");
    assert_eq!(text("notes_cell"), NOTES, "{o}");
    assert_eq!(o["alerts"], json!([]), "{o}");

    // Times in the viewer's zone (New York), UTC on hover.
    let (shown, utc) = (text("time_text"), text("time_datetime"));
    assert!(!shown.is_empty() && shown != utc, "{o}");
    assert_eq!(text("time_title"), format!("{utc} (UTC)"), "{o}");

    // The test run.
    let result = text("test_result");
    assert!(
        result.contains("ok") && result.contains("from the console") && result.contains("Fuel"),
        "{o}"
    );

    // CSRF and origin.
    assert_eq!(o["no_csrf_status"], 403, "{o}");
    assert_eq!(o["foreign_origin_status"], 403, "{o}");

    // Approval, then the agent's call; rejection.
    assert_eq!(o["after_approve_badge"], "active", "{o}");
    assert_eq!(o["revoke_button"], 1, "{o}");
    assert_eq!(o["agent_call_status"], 200, "{o}");
    assert_eq!(o["agent_call_output"], json!({"text": "agent"}), "{o}");
    assert_eq!(o["after_reject_badge"], "rejected", "{o}");
    assert!(text("functions_text").contains("rejected"), "{o}");
    assert!(o["audit_rows"].as_u64().unwrap_or(0) >= 4, "{o}");
    assert!(text("audit_text").contains("test_run"), "{o}");
    assert!(text("record_text").contains("\"seq\""), "{o}");

    // Sign-out ends the session on the server.
    assert_eq!(o["after_sign_out"], "/console/sign-in", "{o}");
    assert_eq!(o["reused_session_status"], 303, "{o}");
    assert_eq!(o["reused_session_location"], "/console/sign-in", "{o}");

    // The author: no approve button; a forged approval refused.
    assert_eq!(o["author_sees_heading"], "mine v1", "{o}");
    assert_eq!(o["author_approve_buttons"], 0, "{o}");
    assert_eq!(o["author_forged_status"], 403, "{o}");
    assert!(text("author_forged_text").contains("approver role"), "{o}");

    // What the browser did, through the API.
    let version = |name: &str| {
        let (s, v) = http(
            "GET",
            &format!("{url}/v1/functions/{name}/versions/1"),
            Some(&approver),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v
    };
    let echo = version("echo");
    assert_eq!(echo["state"], "active", "{echo}");
    assert_eq!(echo["decisions"][0]["actor"], "bob", "{echo}");
    assert_eq!(echo["decisions"][0]["notes"], NOTES, "{echo}");
    assert_eq!(version("other")["state"], "rejected");
    assert_eq!(version("mine")["state"], "pending");
    let (s, policy) = http(
        "GET",
        &format!("{url}/v1/agents/bot/policy"),
        Some(&admin),
        None,
    );
    assert_eq!(s, 200, "{policy}");
    assert_eq!(policy["policy"]["allow"], json!(["echo"]), "{policy}");
    assert_eq!(policy["updated_by"], "carol", "{policy}");
    let (s, audit) = http(
        "GET",
        &format!("{url}/v1/audit?function=echo&limit=100"),
        Some(&admin),
        None,
    );
    assert_eq!(s, 200, "{audit}");
    let runs: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .collect();
    assert!(
        runs.iter()
            .any(|r| r["run"] == "test_run" && r["user_id"] == "bob"),
        "the console's test run is recorded as one: {audit}"
    );
    for page in [
        "sign-in",
        "pending",
        "version",
        "test-run",
        "approved",
        "functions",
        "audit",
        "agent",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "screenshot {page}"
        );
    }
}
