//! The approver's tools end to end, through the real binary and a real
//! server: manifest tests gating approval and the recorded override,
//! `aifn test` on a pending version, `aifn inspect --diff`; and the
//! [`Demo`] that `evidence.rs` (fetch, replay, bundles) shares.

use aifn_test_support::ECHO_WAT;
use serde_json::{Value, json};

use crate::*;

/// A module that always traps.
const TRAP_WAT: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32) unreachable))"#;

/// The echo module with one more import: a new capability, one line more.
fn echo_with_log() -> String {
    let line = "  (import \"aifn\" \"output_write\" (func $output_write (param i32 i32)))\n";
    assert!(ECHO_WAT.contains(line), "the echo fixture changed");
    ECHO_WAT.replacen(
        line,
        &format!("{line}  (import \"aifn\" \"log\" (func $log (param i32 i32 i32)))\n"),
        1,
    )
}

pub(crate) const ECHO_MANIFEST: &str =
    "description = \"echoes its input\"\ninput_schema = { type = \"object\" }\n";

/// A test that passes on echo.
const PASSING_TEST: &str =
    "[[tests]]\nname = \"echoes\"\ninput = { a = 1 }\nexpect_output = { a = 1 }\n";

/// A test that fails on echo: it never runs out of fuel.
const FAILING_TEST: &str =
    "[[tests]]\nname = \"runs out of fuel\"\ninput = {}\nexpect_kind = \"fuel_exhausted\"\n";

/// A server with keys for one tenant, and a directory for files.
pub(crate) struct Demo {
    pub(crate) server: Server,
    pub(crate) data: tempfile::TempDir,
    pub(crate) files: tempfile::TempDir,
    pub(crate) author: String,
    pub(crate) approver: String,
    pub(crate) admin: String,
    pub(crate) agent: String,
}

impl Demo {
    pub(crate) fn start() -> Demo {
        let data = tempfile::tempdir().expect("tempdir");
        let d = data.path();
        let author = key(d, "acme", "author", "alice");
        let approver = key(d, "acme", "approver", "bob");
        let admin = key(d, "acme", "admin", "carol");
        let agent = key(d, "acme", "agent", "hr-bot");
        Demo {
            server: Server::start(d, &[]),
            data,
            files: tempfile::tempdir().expect("tempdir"),
            author,
            approver,
            admin,
            agent,
        }
    }

    pub(crate) fn cli(&self, key: &str, args: &[&str]) -> (i32, String, String) {
        let url = self.server.url();
        cli(args, &[("AIFN_SERVER", url.as_str()), ("AIFN_KEY", key)])
    }

    /// Writes a file in the files dir; returns its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let p = self.files.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_owned()
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.files
            .path()
            .join(name)
            .to_str()
            .expect("utf-8")
            .to_owned()
    }

    pub(crate) fn data_dir(&self) -> &str {
        self.data.path().to_str().expect("utf-8")
    }

    /// Uploads `wat` with `manifest` as `name` (extra flags after), as the
    /// author; returns the version's JSON.
    pub(crate) fn upload(&self, name: &str, wat: &str, manifest: &str, extra: &[&str]) -> Value {
        let module = self.file(&format!("{name}.wat"), wat);
        let manifest = self.file(&format!("{name}.toml"), manifest);
        let mut args = vec!["upload", name, &module, "--manifest", &manifest, "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = self.cli(&self.author, &args);
        assert_eq!(code, 0, "upload {name}: {err}");
        serde_json::from_str(&out).expect("json")
    }

    pub(crate) fn approve(&self, target: &str) {
        let (code, _, err) = self.cli(&self.approver, &["approve", target, "--notes", "reviewed"]);
        assert_eq!(code, 0, "approve {target}: {err}");
    }

    /// Lets the agent invoke everything.
    pub(crate) fn grant(&self) {
        let (code, _, err) = self.cli(&self.admin, &["policy", "set", "hr-bot", "--allow", "*"]);
        assert_eq!(code, 0, "{err}");
    }

    /// Invokes as the agent; returns the execution id.
    pub(crate) fn invoke(&self, name: &str, input: &str) -> String {
        let (code, out, err) = self.cli(&self.agent, &["invoke", name, "--input", input, "--json"]);
        assert_eq!(code, 0, "invoke {name}: {err}");
        let v: Value = serde_json::from_str(&out).expect("json");
        v["execution_id"].as_str().expect("execution_id").to_owned()
    }

    /// The tenant's audit records, oldest first, read by the approver.
    pub(crate) fn audit(&self) -> Vec<Value> {
        let (code, out, err) = self.cli(&self.approver, &["audit", "export"]);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The public key of the data dir's checkpoints (signing one now).
    pub(crate) fn public_key(&self) -> String {
        let (code, out, err) = cli(&["audit", "checkpoint", "--data-dir", self.data_dir()], &[]);
        assert_eq!(code, 0, "{err}");
        out.trim()
            .rsplit(' ')
            .next()
            .expect("the key ends the line")
            .to_owned()
    }
}

pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_failing_manifest_test_blocks_approval_until_overridden_on_the_record() {
    let demo = Demo::start();
    let manifest = format!("{ECHO_MANIFEST}{PASSING_TEST}{FAILING_TEST}");
    let module = demo.file("echo.wat", ECHO_WAT);
    let manifest_path = demo.file("echo.toml", &manifest);
    // The upload runs both tests and says which failed.
    let (code, out, err) = demo.cli(
        &demo.author,
        &["upload", "echo", &module, "--manifest", &manifest_path],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tests: 1 passed, 1 failed"), "{out}");
    assert!(
        out.contains("echoes passed: expected output, got ok"),
        "{out}"
    );
    assert!(
        out.contains("runs out of fuel FAILED: expected kind fuel_exhausted, got ok"),
        "{out}"
    );
    assert!(out.contains("Failing tests: runs out of fuel."), "{out}");
    // The report keeps the results; the source is the WAT sent.
    let (code, out, err) = demo.cli(&demo.approver, &["inspect", "echo@1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let tests = v["report"]["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 2, "{v}");
    assert_eq!(
        (tests[0]["passed"].as_bool(), tests[1]["passed"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(tests[0]["output_sha256"].is_string(), "{v}");
    assert_eq!(v["source"]["language"], "wat", "{v}");
    assert_eq!(v["source"]["sha256"], sha256_of(ECHO_WAT.as_bytes()), "{v}");

    // Approval is refused while the test fails, and says how to override.
    let (code, _, err) = demo.cli(
        &demo.approver,
        &["approve", "echo@1", "--notes", "looks fine"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("conflict"), "{err}");
    assert!(err.contains("runs out of fuel"), "{err}");
    let (code, out, _) = demo.cli(&demo.approver, &["inspect", "echo@1"]);
    assert_eq!(code, 0);
    assert!(out.contains("echo@1  pending"), "{out}");
    // The override approves it, and is on the record with the notes.
    let notes = "the fuel test is wrong: echo is cheap by design";
    let (code, out, err) = demo.cli(
        &demo.approver,
        &[
            "approve",
            "echo@1",
            "--override-failing-tests",
            "--notes",
            notes,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("echo@1 is now active"), "{out}");
    assert!(
        out.contains("approved over failing tests (runs out of fuel)"),
        "{out}"
    );
    let (_, out, _) = demo.cli(&demo.approver, &["inspect", "echo@1"]);
    assert!(
        out.contains("(overriding failing tests): the fuel test is wrong"),
        "{out}"
    );
    let records = demo.audit();
    let approvals: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "approve")
        .collect();
    assert_eq!(approvals.len(), 2, "one refused, one approved: {records:?}");
    assert!(approvals[0]["refused"].is_object(), "{:?}", approvals[0]);
    assert_eq!(approvals[0].get("override_failing_tests"), None);
    assert_eq!(approvals[1]["override_failing_tests"], true);
    assert_eq!(approvals[1]["notes"], notes);
    // Each manifest test ran as a test run, never as an agent's execution.
    let test_runs: Vec<&Value> = records.iter().filter(|r| r["run"] == "test_run").collect();
    assert_eq!(test_runs.len(), 2, "{records:?}");
    assert_eq!(test_runs[0]["test_name"], "echoes");
    assert_eq!(test_runs[1]["test_name"], "runs out of fuel");
    assert!(
        records
            .iter()
            .all(|r| r["stream"] != "execution" || r["run"] == "test_run")
    );

    // A version whose tests all pass is approved without the override.
    demo.upload(
        "echo",
        ECHO_WAT,
        &format!("{ECHO_MANIFEST}{PASSING_TEST}"),
        &[],
    );
    let (code, out, err) = demo.cli(
        &demo.approver,
        &["approve", "echo@2", "--notes", "tests pass"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("echo@2 is now active"), "{out}");
    assert!(!out.contains("over failing tests"), "{out}");
    // A manifest test without exactly one expectation is refused before
    // anything is sent, pointing into the file.
    let bad = demo.file(
        "bad.toml",
        &format!("{ECHO_MANIFEST}[[tests]]\nname = \"none\"\ninput = {{}}\n"),
    );
    let (code, _, err) = demo.cli(
        &demo.author,
        &["upload", "echo", &module, "--manifest", &bad],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:3:1: "), "{err}");
    assert!(err.contains("exactly one of expect_output"), "{err}");
}

#[test]
fn aifn_test_runs_a_pending_version_as_a_recorded_test_run() {
    let demo = Demo::start();
    demo.upload("echo", ECHO_WAT, ECHO_MANIFEST, &[]);
    demo.upload("trap", TRAP_WAT, ECHO_MANIFEST, &[]);
    // The author runs their own pending version.
    let (code, out, err) = demo.cli(
        &demo.author,
        &["test", "echo@1", "--input", r#"{"a":[1,2]}"#],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json"),
        json!({"a": [1, 2]})
    );
    assert!(err.contains("test run of echo@1"), "{err}");
    // An approver, for an end user, from a file; the answer is an invocation's.
    let input = demo.file("input.json", r#"{"b":true}"#);
    let (code, out, err) = demo.cli(
        &demo.approver,
        &[
            "test",
            "echo@1",
            "--input-file",
            &input,
            "--user",
            "u-9",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["output"], json!({"b": true}));
    assert_eq!(v["version"], 1);
    let test_id = v["execution_id"].as_str().expect("execution_id").to_owned();
    // A run that fails says how, with exit 1.
    let (code, _, err) = demo.cli(&demo.author, &["test", "trap@1", "--input", "{}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("trap"), "{err}");
    // Not for agents; not for another author's version; not a version
    // that does not exist; not an input that is not JSON.
    demo.grant();
    let (code, _, err) = demo.cli(&demo.agent, &["test", "echo@1", "--input", "{}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    let other = key(demo.data.path(), "acme", "author", "dave");
    let (code, _, err) = demo.cli(&other, &["test", "echo@1", "--input", "{}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    let (code, _, err) = demo.cli(&demo.approver, &["test", "echo@7", "--input", "{}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not_found"), "{err}");
    let (code, _, err) = demo.cli(&demo.approver, &["test", "echo@1", "--input", "{nope"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = demo.cli(&demo.approver, &["test", "echo", "--input", "{}"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("NAME@VERSION"), "{err}");
    // The version is still pending: agents cannot invoke it.
    let (code, _, err) = demo.cli(&demo.agent, &["invoke", "echo", "--input", "{}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not_active"), "{err}");
    // Recorded as test runs with who ran them, not as invocations.
    let records = demo.audit();
    let run = records
        .iter()
        .find(|r| r["execution_id"] == test_id.as_str())
        .expect("the test run's record");
    assert_eq!(run["run"], "test_run", "{run}");
    assert_eq!(
        (run["agent_id"].as_str(), run["user_id"].as_str()),
        (Some("bob"), Some("u-9"))
    );
    assert_eq!(run.get("test_name"), None, "{run}");
    let (code, out, _) = demo.cli(&demo.approver, &["audit", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("echo@1 ok by bob for u-9 (test run)"), "{out}");
    let invocations = records
        .iter()
        .filter(|r| r["stream"] == "execution" && r.get("run").is_none())
        .count();
    assert_eq!(
        invocations, 1,
        "only the agent's refused invoke: {records:?}"
    );
}

#[test]
fn inspect_diff_shows_what_changed_against_the_previous_and_the_active_version() {
    let demo = Demo::start();
    demo.upload("echo", ECHO_WAT, ECHO_MANIFEST, &[]);
    demo.approve("echo@1");
    let v2_manifest = "description = \"echoes its input, and can log\"\n\
         input_schema = { type = \"object\", required = [\"a\"] }\n[limits]\nfuel = 5000\n";
    demo.upload(
        "echo",
        &echo_with_log(),
        &format!("{v2_manifest}{PASSING_TEST}"),
        &[],
    );
    let (code, out, err) = demo.cli(&demo.approver, &["inspect", "echo@2", "--diff"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "echo@2 against v1 (the previous version):",
        "description: \"echoes its input\" -> \"echoes its input, and can log\"",
        "+ /required: [\"a\"]",
        "fuel (host default) -> 5000",
        "imports added: aifn.log",
        "echoes (added)",
        "source: +1 -0 lines",
        "    +  (import \"aifn\" \"log\"",
    ] {
        assert!(out.contains(want), "{want:?} missing in\n{out}");
    }
    // v1 is both the previous and the active version: one diff.
    assert_eq!(out.matches(" against v").count(), 1, "{out}");
    // A third version is compared with v2 (previous) and v1 (active).
    demo.upload("echo", ECHO_WAT, ECHO_MANIFEST, &[]);
    let (code, out, err) = demo.cli(&demo.approver, &["inspect", "echo@3", "--diff", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let against: Vec<(u64, &str)> = v["diffs"]
        .as_array()
        .expect("diffs")
        .iter()
        .map(|d| {
            (
                d["against"].as_u64().unwrap_or(0),
                d["relation"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(against, vec![(2, "previous"), (1, "active")], "{v}");
    // Against v1 chosen: the same module and manifest, nothing differs.
    let (code, out, err) = demo.cli(
        &demo.author,
        &["inspect", "echo@3", "--diff", "--against", "1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("echo@3 against v1 (the version asked for):"),
        "{out}"
    );
    assert!(out.contains("no differences"), "{out}");
    // The first version has nothing to compare with... unless asked.
    let (code, out, _) = demo.cli(&demo.approver, &["inspect", "echo@1", "--diff"]);
    assert_eq!(code, 0);
    assert!(out.contains("no earlier version"), "{out}");
    // Violations: no version, a version that does not exist, --against
    // without --diff, another tenant.
    let (code, _, err) = demo.cli(&demo.approver, &["inspect", "echo", "--diff"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = demo.cli(
        &demo.approver,
        &["inspect", "echo@3", "--diff", "--against", "9"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not_found"), "{err}");
    let (code, _, err) = demo.cli(&demo.approver, &["inspect", "echo@3", "--against", "1"]);
    assert_eq!(code, 2, "{err}");
    let stranger = key(demo.data.path(), "globex", "approver", "gus");
    let (code, _, err) = demo.cli(&stranger, &["inspect", "echo@3", "--diff"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not_found"), "{err}");
}
