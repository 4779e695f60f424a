//! Looking an execution up by id: in the caller's tenant only, with the
//! run kind, test name and replayed id it was recorded with.

use aifn_audit::{AuditError, AuditRecord, ExecutionRecord};
use aifn_types::{RegistryActionKind, RunKind};

use crate::common::*;

fn found(e: Option<aifn_audit::AuditEntry>) -> Option<(u64, ExecutionRecord)> {
    e.map(|e| match e.record {
        AuditRecord::Execution(r) => (e.seq, r),
        other => panic!("not an execution: {other:?}"),
    })
}

#[test]
fn an_execution_is_found_by_id_in_its_tenant_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let mine = exec("acme", "f", 1);
    let id = mine.execution_id.clone();
    log.record_execution(mine, None).expect("record");
    // Another tenant's record with the very same id.
    let mut theirs = exec("globex", "f", 2);
    theirs.execution_id = id.clone();
    log.record_execution(theirs, None).expect("record");
    log.record_registry(&registry("acme", RegistryActionKind::Upload, "f@1"))
        .expect("registry");

    let (seq, rec) = found(log.execution(&tenant("acme"), &id).expect("lookup")).expect("acme's");
    assert_eq!((seq, rec.tenant_id.as_str()), (1, "acme"));
    let (seq, rec) =
        found(log.execution(&tenant("globex"), &id).expect("lookup")).expect("globex's");
    assert_eq!((seq, rec.tenant_id.as_str()), (2, "globex"));
    assert_eq!(
        log.execution(&tenant("initech"), &id).expect("lookup"),
        None
    );
    assert_eq!(
        log.execution(&tenant("acme"), "acme-f-0099")
            .expect("lookup"),
        None
    );
    log.close().expect("close");
}

#[test]
fn test_runs_and_replays_keep_what_they_were() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let mut test = exec("acme", "f", 1);
    test.run = RunKind::TestRun;
    test.test_name = Some("three_days".into());
    let mut replay = exec("acme", "f", 2);
    replay.run = RunKind::Replay;
    replay.replay_of = Some("acme-f-0001".into());
    let plain = exec("acme", "f", 3);
    for r in [test, replay, plain] {
        log.record_execution(r, None).expect("record");
    }
    let get = |i: u64| {
        found(
            log.execution(&tenant("acme"), &format!("acme-f-{i:04}"))
                .expect("lookup"),
        )
        .expect("found")
        .1
    };
    let t = get(1);
    assert_eq!(
        (t.run, t.test_name.as_deref()),
        (RunKind::TestRun, Some("three_days"))
    );
    let r = get(2);
    assert_eq!(
        (r.run, r.replay_of.as_deref()),
        (RunKind::Replay, Some("acme-f-0001"))
    );
    let p = get(3);
    assert_eq!(
        (p.run, p.test_name, p.replay_of),
        (RunKind::Invocation, None, None)
    );
    log.close().expect("close");
    // An invocation's chained body has none of the three fields.
    let body = db(&cfg)
        .one("SELECT body FROM audit_entries WHERE seq = 3", &[])
        .expect("body");
    assert!(
        !body.contains("\"run\"") && !body.contains("test_name") && !body.contains("replay_of")
    );
    let body = db(&cfg)
        .one("SELECT body FROM audit_entries WHERE seq = 1", &[])
        .expect("body");
    assert!(body.contains(r#""run":"test_run""#) && body.contains(r#""test_name":"three_days""#));
}

#[test]
fn an_edited_execution_id_column_is_an_error_not_another_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 2);
    let second = "acme-leave_days-0001";
    // Pair: before the edit, the lookup finds the second record.
    let (seq, _) = found(log.execution(&tenant("acme"), second).expect("lookup")).expect("found");
    assert_eq!(seq, 2);
    db(&cfg)
        .execute(
            "UPDATE audit_entries SET execution_id = ?1 WHERE seq = 1",
            &[&second],
        )
        .expect("edit");
    assert!(matches!(
        log.execution(&tenant("acme"), second),
        Err(AuditError::Corrupt { seq: 1, .. })
    ));
    log.close().expect("close");
}
