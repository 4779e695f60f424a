//! Replay of captured executions: reproduced, diverged with a tampered
//! capture (edited in the audit database directly), refused without a
//! capture, and who may replay.

use aifn_service::{AuditStream, ReplayVerdict, ServiceError};
use aifn_test_support::{CONTEXT_ECHO_WAT, ECHO_WAT};
use aifn_types::{OutcomeKind, Role};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::testing::key_for;
use crate::{Harness, harness, manifest};

fn captured() -> aifn_types::Manifest {
    manifest(json!({"capture": {"retention_days": 1}}))
}

/// Deploys `wat` as `name` with capture on and invokes it once.
fn captured_call(h: &Harness, name: &str, wat: &str) -> String {
    h.deploy(name, wat::parse_str(wat).expect("wat"), captured());
    let out = h.invoke(name, json!({"n": 1})).expect("runs");
    assert_eq!(out.kind, OutcomeKind::Ok);
    out.execution_id
}

fn audit_db(h: &Harness) -> rusqlite::Connection {
    let path = h
        .service
        .config()
        .layout()
        .expect("layout")
        .audit_config()
        .db_path;
    rusqlite::Connection::open(path).expect("audit db")
}

#[test]
fn a_captured_execution_is_reproduced_and_the_replay_recorded() {
    let h = harness(|_| {});
    let id = captured_call(&h, "echo", ECHO_WAT);
    let report = h.service.replay(&h.approver, &id).expect("replay");
    assert_eq!(report.verdict, ReplayVerdict::Reproduced);
    assert!(report.input_matches_record && report.message.is_none());
    assert_eq!(
        (report.recorded_kind, report.replayed_kind),
        (OutcomeKind::Ok, OutcomeKind::Ok)
    );
    let original = h.record(&id);
    assert_eq!(
        report.replayed_output_sha256.as_deref(),
        original["output_sha256"].as_str()
    );
    assert_eq!(report.recorded_output_sha256, report.replayed_output_sha256);
    assert_eq!((report.function.as_str(), report.version), ("echo", 1));
    assert_ne!(report.replay_execution_id, id);
    let rec = h.record(&report.replay_execution_id);
    assert_eq!(
        (
            &rec["run"],
            &rec["replay_of"],
            &rec["agent_id"],
            &rec["user_id"]
        ),
        (&json!("replay"), &json!(id), &json!("bob"), &json!("u"))
    );
    assert_eq!(rec["input_sha256"], original["input_sha256"]);
    // A replay is no agent's execution.
    assert_eq!(h.service.metrics().count(OutcomeKind::Ok), 1);
    // Admins may replay too.
    let by_admin = h.service.replay(&h.admin, &id).expect("admin");
    assert_eq!(by_admin.verdict, ReplayVerdict::Reproduced);
}

#[test]
fn the_guest_sees_the_recorded_context_again() {
    let h = harness(|_| {});
    let id = captured_call(&h, "ctx", CONTEXT_ECHO_WAT);
    let original = h.record(&id);
    let report = h.service.replay(&h.approver, &id).expect("replay");
    // The output is the context: same bytes only if the guest saw the
    // original agent, user and execution id.
    assert_eq!(report.verdict, ReplayVerdict::Reproduced, "{report:?}");
    assert_eq!(
        report.replayed_output_sha256.as_deref(),
        original["output_sha256"].as_str()
    );
}

#[test]
fn a_tampered_capture_diverges() {
    let h = harness(|_| {});
    let id = captured_call(&h, "echo", ECHO_WAT);
    let changed = audit_db(&h)
        .execute(
            "UPDATE audit_captures SET input = ?1 WHERE execution_id = ?2",
            rusqlite::params![br#"{"n":2}"#.to_vec(), id],
        )
        .expect("tamper");
    assert_eq!(changed, 1);
    let report = h.service.replay(&h.approver, &id).expect("replay");
    assert_eq!(report.verdict, ReplayVerdict::Diverged);
    assert!(!report.input_matches_record);
    let why = report.message.as_deref().expect("why");
    assert!(why.contains("capture was altered"), "{why}");
    assert_eq!(report.replayed_kind, OutcomeKind::Ok);
    assert_eq!(
        report.replayed_output_sha256,
        Some(hex::encode(Sha256::digest(br#"{"n":2}"#)))
    );
    assert_ne!(report.replayed_output_sha256, report.recorded_output_sha256);
}

#[test]
fn an_execution_without_a_capture_cannot_be_replayed() {
    let h = harness(|_| {});
    h.deploy(
        "plain",
        wat::parse_str(ECHO_WAT).expect("wat"),
        manifest(json!({})),
    );
    let id = h.invoke("plain", json!({})).expect("runs").execution_id;
    let e = h.service.replay(&h.approver, &id).expect_err("no capture");
    assert!(
        matches!(&e, ServiceError::Conflict { message } if message.contains("no captured input")),
        "{e:?}"
    );
    // The refusal is recorded as a replay of that execution, by whom.
    let refusals: Vec<_> = h
        .entries(AuditStream::Execution)
        .into_iter()
        .filter(|r| r["run"] == "replay")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let r = &refusals[0];
    assert_eq!(
        (
            &r["replay_of"],
            &r["agent_id"],
            &r["outcome"],
            &r["function"]
        ),
        (
            &json!(id),
            &json!("bob"),
            &json!("not_found"),
            &json!("plain")
        )
    );
    assert!(
        r["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("no captured input"),
        "{r}"
    );
    // A refused call ran nothing and captured nothing either.
    let refused = h
        .invoke("missing", json!({}))
        .expect_err("no such function");
    let refused_id = refused.execution_id.expect("recorded");
    assert!(matches!(
        h.service.replay(&h.approver, &refused_id),
        Err(ServiceError::Conflict { .. })
    ));
    let e = h
        .service
        .replay(&h.approver, "0123456789abcdef0123456789abcdef")
        .expect_err("unknown");
    assert!(matches!(e, ServiceError::NotFound { .. }), "{e:?}");
}

#[test]
fn replay_is_for_approvers_and_admins_of_the_tenant() {
    let h = harness(|_| {});
    let id = captured_call(&h, "echo", ECHO_WAT);
    for who in [&h.author, &h.agent] {
        let e = h.service.replay(who, &id).expect_err("forbidden");
        assert!(matches!(e, ServiceError::Forbidden { .. }), "{e:?}");
    }
    let stranger = key_for(&h, "globex", Role::Approver, "gina");
    let e = h
        .service
        .replay(&stranger, &id)
        .expect_err("another tenant's");
    assert!(matches!(e, ServiceError::NotFound { .. }), "{e:?}");
    assert!(h.service.replay(&h.approver, &id).is_ok());
}

/// Outputs the realtime clock, in nanoseconds, as a JSON number.
const CLOCK_WAT: &str = r#"(module
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (local $t i64) (local $p i32)
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 600)))
    (local.set $t (i64.load (i32.const 600)))
    (local.set $p (i32.const 100))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $t) (i64.const 10)))))
      (local.set $t (i64.div_u (local.get $t) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $t) (i64.const 0))))
    (call $output_write (local.get $p) (i32.sub (i32.const 100) (local.get $p)))
    (i32.const 0)))"#;

#[test]
fn a_guest_that_reads_the_clock_reads_the_recorded_start_time_again() {
    let h = harness(|_| {});
    h.deploy("clock", wat::parse_str(CLOCK_WAT).expect("wat"), captured());
    let out = h.invoke("clock", json!({})).expect("runs");
    let nanos = out
        .output
        .as_ref()
        .and_then(|v| v.as_u64())
        .expect("a number");
    // Every run starts on a whole millisecond, the one its record keeps.
    assert_eq!(nanos % 1_000_000, 0, "{nanos}");
    let rec = h.record(&out.execution_id);
    let recorded: aifn_types::Timestamp =
        rec["time"].as_str().expect("time").parse().expect("a time");
    assert_eq!(
        i64::try_from(nanos / 1_000_000).expect("ms"),
        recorded.unix_ms()
    );
    let report = h
        .service
        .replay(&h.approver, &out.execution_id)
        .expect("replay");
    assert_eq!(report.verdict, ReplayVerdict::Reproduced, "{report:?}");
    assert_eq!(report.recorded_output_sha256, report.replayed_output_sha256);
}

#[test]
fn replays_count_against_the_hourly_test_runs() {
    let h = harness(|c| c.tenant.test_runs_per_hour = 1);
    let id = captured_call(&h, "echo", ECHO_WAT);
    h.service.replay(&h.approver, &id).expect("the hour's one");
    let e = h
        .service
        .replay(&h.approver, &id)
        .expect_err("over the cap");
    assert!(
        matches!(
            e,
            ServiceError::RateLimited {
                scope: "test_runs",
                ..
            }
        ),
        "{e:?}"
    );
    let outcomes: Vec<_> = h
        .entries(AuditStream::Execution)
        .into_iter()
        .filter(|r| r["run"] == "replay")
        .map(|r| r["outcome"].clone())
        .collect();
    // Newest first: the refusal is recorded too.
    assert_eq!(outcomes, [json!("rate_limited"), json!("ok")]);
}
