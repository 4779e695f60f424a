//! The approver's evidence end to end: `aifn fetch` writes the exact
//! bytes, `aifn replay` reproduces a captured execution and catches an
//! altered capture, and evidence bundles verify offline and show any
//! changed byte.

use std::path::Path;

use aifn_test_support::ECHO_WAT;
use serde_json::Value;

use crate::approval::{Demo, ECHO_MANIFEST, sha256_of};
use crate::cli;

#[test]
fn fetch_writes_the_exact_bytes_and_the_source() {
    let demo = Demo::start();
    let v1 = demo.upload("echo", ECHO_WAT, ECHO_MANIFEST, &[]);
    let v2 = demo.upload("echo", ECHO_WAT, ECHO_MANIFEST, &["--as-module"]);
    // Sent compiled, the bytes are the module's; sent as source, the server
    // built the same module from it.
    let compiled = wat::parse_str(ECHO_WAT).expect("wat");
    assert_eq!(v2["sha256"], sha256_of(&compiled), "{v2}");
    assert_eq!(v1["sha256"], v2["sha256"], "{v1}");
    assert!(v2.get("source").is_none(), "{v2}");
    let readers = [
        (&demo.author, "echo@1"),
        (&demo.approver, "echo@2"),
        (&demo.admin, "echo@1"),
    ];
    for (i, (who, target)) in readers.into_iter().enumerate() {
        let out = demo.path(&format!("fetched-{i}.wasm"));
        let (code, _, err) = demo.cli(who, &["fetch", target, "-o", &out]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("(matches the version)"), "{err}");
        assert_eq!(std::fs::read(&out).expect("written"), compiled);
    }
    let src = demo.path("echo-1.wat");
    let (code, _, err) = demo.cli(&demo.approver, &["fetch", "echo@1", "--source", "-o", &src]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&src).expect("written"), ECHO_WAT);
    // Refused: an agent; a version sent compiled has no source; a version
    // that does not exist. Nothing is written.
    let none = demo.path("none.wasm");
    let (code, _, err) = demo.cli(&demo.agent, &["fetch", "echo@1", "-o", &none]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    let (code, _, err) = demo.cli(
        &demo.approver,
        &["fetch", "echo@2", "--source", "-o", &none],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not_found"), "{err}");
    let (code, _, err) = demo.cli(&demo.approver, &["fetch", "echo@5", "-o", &none]);
    assert_eq!(code, 1, "{err}");
    assert!(!Path::new(&none).exists());
    let (code, _, err) = demo.cli(&demo.approver, &["fetch", "echo@1"]);
    assert_eq!(code, 2, "-o is required: {err}");
}

#[test]
fn replay_reproduces_a_captured_execution_and_catches_an_altered_capture() {
    let demo = Demo::start();
    let captured = format!("{ECHO_MANIFEST}[capture]\nretention_days = 1\n");
    demo.upload("echo", ECHO_WAT, &captured, &[]);
    demo.upload("plain", ECHO_WAT, ECHO_MANIFEST, &[]);
    demo.approve("echo@1");
    demo.approve("plain@1");
    demo.grant();
    let id = demo.invoke("echo", r#"{"n":1}"#);
    let (code, out, err) = demo.cli(&demo.approver, &["replay", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("reproduced: echo@1 execution {id}")),
        "{out}"
    );
    let (code, out, err) = demo.cli(&demo.admin, &["replay", &id, "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["verdict"], "reproduced");
    assert_eq!(report["input_matches_record"], true);
    assert_eq!(
        report["recorded_output_sha256"],
        report["replayed_output_sha256"]
    );
    // The replay is recorded, naming the original.
    let records = demo.audit();
    let replays: Vec<&Value> = records.iter().filter(|r| r["run"] == "replay").collect();
    assert_eq!(replays.len(), 2, "{records:?}");
    assert_eq!(replays[0]["replay_of"], id.as_str());
    assert_ne!(replays[0]["execution_id"], id.as_str());
    assert_eq!(replays[0]["agent_id"], "bob");

    // Refused: an agent or an author; an execution without a capture; an
    // execution id that is not there.
    for who in [&demo.agent, &demo.author] {
        let (code, _, err) = demo.cli(who, &["replay", &id]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("forbidden"), "{err}");
    }
    let plain = demo.invoke("plain", "{}");
    let (code, _, err) = demo.cli(&demo.approver, &["replay", &plain]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("conflict") && err.contains("captured"),
        "{err}"
    );
    let (code, _, err) = demo.cli(&demo.approver, &["replay", &"0".repeat(32)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not_found"), "{err}");

    // A capture altered in the database diverges, and says why.
    let db = rusqlite::Connection::open(demo.data.path().join("audit.sqlite3")).expect("open");
    let changed = db
        .execute(
            "UPDATE audit_captures SET input = CAST('{\"n\":2}' AS BLOB) WHERE execution_id = ?1",
            [&id],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(db);
    let (code, out, err) = demo.cli(&demo.approver, &["replay", &id]);
    assert_eq!(code, 1, "{err}");
    assert!(out.starts_with("DIVERGED: echo@1"), "{out}");
    assert!(out.contains("the capture was altered"), "{out}");
}

/// Changes one byte of the first record body of a bundle file that
/// contains `needle` (its first character), keeping the file JSON.
fn tamper_record(file: &str, needle: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    let mut bundle: Value = serde_json::from_str(&text).expect("json");
    let records = bundle["evidence"]["records"]
        .as_array_mut()
        .expect("records");
    let record = records
        .iter_mut()
        .find(|r| r["body"].as_str().is_some_and(|b| b.contains(needle)))
        .expect("a record with the needle");
    let body = record["body"].as_str().expect("body");
    let at = body.find(needle).expect("needle");
    let flipped = if body[at..].starts_with('0') {
        "1"
    } else {
        "0"
    };
    let body = format!("{}{flipped}{}", &body[..at], &body[at + 1..]);
    record["body"] = Value::String(body);
    std::fs::write(file, serde_json::to_vec(&bundle).expect("json")).expect("write");
}

#[test]
fn an_evidence_bundle_verifies_offline_and_shows_any_changed_byte() {
    let demo = Demo::start();
    demo.upload("echo", ECHO_WAT, ECHO_MANIFEST, &[]);
    demo.approve("echo@1");
    demo.grant();
    let id = demo.invoke("echo", r#"{"n":1}"#);
    let key = demo.public_key();
    // Through the server, by execution, with the module.
    let file = demo.path("evidence.json");
    let (code, _, err) = demo.cli(
        &demo.approver,
        &[
            "audit",
            "bundle",
            "--execution",
            &id,
            "--include-module",
            "--out",
            &file,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("with their modules"), "{err}");
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_eq!(bundle["format"], "aifn-evidence-bundle/1");
    assert_eq!(bundle["tenant_id"], "acme");
    assert!(
        bundle["versions"][0]["module_base64"].is_string(),
        "{bundle}"
    );
    let (code, out, err) = cli(
        &["audit", "verify-bundle", &file, "--public-key", &key],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok: the bundle verifies"), "{out}");
    assert!(out.contains("1 modules checked"), "{out}");
    // Without the trusted key it is only consistent, and says so.
    let (code, out, err) = cli(&["audit", "verify-bundle", &file], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("UNTRUSTED"), "{out}");
    assert!(!out.contains("ok: the bundle verifies"), "{out}");
    // A key other than the one that signed: refused.
    let (code, out, _) = cli(
        &[
            "audit",
            "verify-bundle",
            &file,
            "--public-key",
            &"ab".repeat(32),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED: "), "{out}");
    // One character of a record changed: refused, whichever record.
    let copy = demo.path("edited.json");
    std::fs::copy(&file, &copy).expect("copy");
    tamper_record(&copy, &id[..8]);
    let (code, out, _) = cli(
        &["audit", "verify-bundle", &copy, "--public-key", &key],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED: ") && out.contains("does not hash"),
        "{out}"
    );
    std::fs::copy(&file, &copy).expect("copy");
    tamper_record(&copy, "reviewed");
    let (code, out, _) = cli(&["audit", "verify-bundle", &copy], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED: "), "{out}");

    // As the operator, from the data dir, by function and version.
    let local = demo.path("local.json");
    let (code, _, err) = cli(
        &[
            "audit",
            "bundle",
            "--data-dir",
            demo.data_dir(),
            "--tenant",
            "acme",
            "--function",
            "echo@1",
            "--out",
            &local,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        &[
            "audit",
            "verify-bundle",
            &local,
            "--public-key",
            &key,
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["report"]["records"].as_u64().unwrap_or(0) >= 3,
        "upload, approve, invoke: {v}"
    );

    // Refused: an agent's key; neither or both of --execution and
    // --function; --data-dir without --tenant; a file that is not there.
    let none = demo.path("none.json");
    let (code, _, err) = demo.cli(
        &demo.agent,
        &["audit", "bundle", "--execution", &id, "--out", &none],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    assert!(!Path::new(&none).exists());
    let (code, _, _) = demo.cli(&demo.approver, &["audit", "bundle", "--out", &none]);
    assert_eq!(code, 2);
    let (code, _, _) = demo.cli(
        &demo.approver,
        &[
            "audit",
            "bundle",
            "--execution",
            &id,
            "--function",
            "echo",
            "--out",
            &none,
        ],
    );
    assert_eq!(code, 2);
    let (code, _, err) = cli(
        &[
            "audit",
            "bundle",
            "--data-dir",
            demo.data_dir(),
            "--execution",
            &id,
            "--out",
            &none,
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tenant"), "{err}");
    let (code, _, err) = cli(&["audit", "verify-bundle", &none], &[]);
    assert_eq!(code, 2, "{err}");
}
