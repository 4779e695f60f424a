use aifn_audit::{AuditError, Finding, KeySource, SecurityEvent, SecurityReason, verify};
use aifn_types::RegistryActionKind;

use crate::common::*;

#[test]
fn a_clean_log_verifies_with_every_key_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 5);
    log.record_registry(&registry(
        "acme",
        RegistryActionKind::Approve,
        "leave_days@1",
    ))
    .expect("registry");
    log.record_security(SecurityEvent {
        time: t0().into(),
        route: "/v1/invoke".into(),
        reason: SecurityReason::MissingKey,
        remote_addr: None,
        node: String::new(),
    })
    .expect("security");
    log.close().expect("close");

    let report = verify(&cfg, None).expect("verify");
    assert_eq!(report.finding, None);
    assert!(report.is_ok());
    assert_eq!(report.records, 7);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(7)));
    assert_eq!(report.anchor_seq, 0);
    assert_eq!(report.checkpoints, 1);
    assert_eq!(report.checkpointed_seq, Some(7));
    assert_eq!(report.key_source, KeySource::KeyFile);

    let given = verify(&cfg, Some(&public_key(&cfg))).expect("verify with key");
    assert_eq!((given.finding, given.key_source), (None, KeySource::Given));

    let wrong = ed25519_dalek::SigningKey::from_bytes(&[9; 32])
        .verifying_key()
        .to_bytes();
    let bad = verify(&cfg, Some(&wrong)).expect("verify with wrong key");
    assert_eq!(
        bad.finding,
        Some(Finding::BadCheckpoint {
            line: 1,
            seq: Some(7),
            reason: "signed by a key other than the trusted one".into()
        })
    );

    std::fs::remove_file(&cfg.signing_key_path).expect("remove key");
    let lines = verify(&cfg, None).expect("verify from lines");
    assert_eq!(
        (lines.finding, lines.key_source),
        (None, KeySource::CheckpointLines)
    );
}

#[test]
fn hashes_follow_the_documented_formula() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let a = log
        .record_execution(exec("acme", "f", 1), None)
        .expect("record");
    let b = log
        .record_registry(&registry("acme", RegistryActionKind::Upload, "f@2"))
        .expect("record");
    log.close().expect("close");
    assert_eq!((a.seq, b.seq), (1, 2));

    let conn = db(&cfg);
    let rows: Vec<(i64, String, String, String)> = conn
        .rows(
            "SELECT seq, body, prev_hash, hash FROM audit_entries ORDER BY seq",
            &[],
        )
        .expect("rows")
        .into_iter()
        .map(|r| {
            let [seq, body, prev, hash] = <[String; 4]>::try_from(r).expect("4 columns");
            (seq.parse().expect("seq"), body, prev, hash)
        })
        .collect();
    assert_eq!(rows[0].2, "00".repeat(32));
    assert_eq!(rows[0].3, chain_hash(&rows[0].2, 1, &rows[0].1));
    assert_eq!(rows[0].3, a.hash);
    assert_eq!(rows[1].2, a.hash);
    assert_eq!(rows[1].3, chain_hash(&a.hash, 2, &rows[1].1));
    assert_eq!(rows[1].3, b.hash);
    // Canonical: sorted keys, no whitespace, stream tag and node included.
    let body = &rows[1].1;
    assert!(
        body.starts_with(
            r#"{"action":"upload","actor":"alice","node":"node-1","notes":"looks fine","#
        ),
        "{body}"
    );
    let v: serde_json::Value = serde_json::from_str(body).expect("json");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "action",
            "actor",
            "node",
            "notes",
            "sha256",
            "stream",
            "target",
            "tenant_id",
            "time"
        ]
    );
    assert_eq!(v["stream"], "registry");
    assert!(!body.contains(": ") && !body.contains(", "), "{body}");
}

#[test]
fn checkpoints_every_n_records_on_demand_and_at_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 10);
    let log = open(&cfg);
    fill(&log, "acme", 25);
    assert_eq!(log.stats().checkpoints, 2);
    let c = log.checkpoint().expect("checkpoint");
    assert_eq!(c.seq, 25);
    assert_eq!(c.node, "node-1");
    assert_eq!(c.public_key, hex::encode(public_key(&cfg)));
    fill(&log, "acme", 2);
    log.close().expect("close");
    let seqs: Vec<u64> = checkpoint_lines(&cfg)
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [10, 20, 25, 27]);
    let report = verify(&cfg, None).expect("verify");
    assert_eq!(
        (report.finding, report.checkpoints, report.checkpointed_seq),
        (None, 4, Some(27))
    );
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    assert_eq!(fill(&log, "acme", 3), [1, 2, 3]);
    log.close().expect("close");
    let log = open(&cfg);
    assert_eq!(fill(&log, "acme", 2), [4, 5]);
    drop(log); // the last drop closes, with a final checkpoint
    let seqs: Vec<u64> = checkpoint_lines(&cfg)
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [3, 5]);
    let report = verify(&cfg, None).expect("verify");
    assert_eq!((report.finding, report.records), (None, 5));
}

#[test]
fn verify_of_a_missing_database_is_an_error_not_a_finding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&dir.path().join("nothing-here"), 0);
    // No file on SQLite; on PostgreSQL a database without the log's tables.
    match verify(&cfg, None) {
        Err(AuditError::Io { .. }) if !on_postgres() => {}
        Err(AuditError::Schema { found: 0, .. }) if on_postgres() => {}
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn invalid_records_are_refused_before_queueing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let mut rec = exec("acme", "f", 1);
    rec.tenant_id.clear();
    assert!(matches!(
        log.record_execution(rec, None),
        Err(AuditError::InvalidRecord { .. })
    ));
    let mut rec = exec("acme", "f", 1);
    rec.duration_ms = f64::NAN;
    assert!(matches!(
        log.record_execution(rec, None),
        Err(AuditError::InvalidRecord { .. })
    ));
    assert_eq!(log.stats().records, 0);
    assert!(log.is_healthy());
}
