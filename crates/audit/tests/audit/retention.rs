use std::time::{Duration, SystemTime};

use aifn_audit::{AuditRecord, Captured, Finding, SecurityQuery, Stream, SystemEvent, verify};

use crate::common::*;

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn prune_keeps_a_verifiable_chain_and_still_detects_deletions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 2);
    let log = open(&cfg);
    let now = SystemTime::now();
    let mut old = Vec::new();
    for i in 0..5 {
        let mut rec = exec("acme", "f", i);
        rec.time = (now - 10 * DAY).into();
        old.push(log.record_execution(rec, None).expect("old"));
    }
    for i in 5..8 {
        let mut rec = exec("acme", "f", i);
        rec.time = (now).into();
        log.record_execution(rec, None).expect("new");
    }
    let report = log.prune(now - DAY, "retention-job").expect("prune");
    assert_eq!(report.pruned, 5);
    assert_eq!(report.anchor_seq, 5);
    assert_eq!(report.anchor_hash, old[4].hash);
    assert_eq!(report.record.seq, 9);

    let page = log
        .query_security(&SecurityQuery {
            stream: Some(Stream::System),
            ..Default::default()
        })
        .expect("q");
    assert_eq!(page.entries.len(), 1);
    match &page.entries[0].record {
        AuditRecord::System(s) => {
            assert_eq!(s.event, SystemEvent::Prune);
            assert_eq!(
                (s.pruned, s.anchor_seq, s.anchor_hash.as_str()),
                (5, 5, old[4].hash.as_str())
            );
            assert_eq!(s.actor, "retention-job");
        }
        other => panic!("expected a system record, got {other:?}"),
    }
    log.record_execution(exec("acme", "f", 8), None)
        .expect("after prune");
    log.close().expect("close");

    let v = verify(&cfg, None).expect("verify");
    assert_eq!(v.finding, None);
    assert_eq!(
        (v.anchor_seq, v.first_seq, v.last_seq, v.records),
        (5, Some(6), Some(10), 5)
    );
    assert_eq!(v.checkpointed_seq, Some(10));

    // Deleting the first kept record is not a prune.
    let conn = db(&cfg);
    conn.execute("DELETE FROM audit_entries WHERE seq = 6", &[])
        .expect("delete");
    assert_eq!(
        verify(&cfg, None).expect("verify").finding,
        Some(Finding::Deleted {
            after_seq: 5,
            missing_seq: 6
        })
    );
}

#[test]
fn a_middle_deletion_after_prune_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    for i in 0..3 {
        let mut rec = exec("acme", "f", i);
        rec.time = (t0() - 10 * DAY).into();
        log.record_execution(rec, None).expect("old");
    }
    fill(&log, "acme", 4); // seqs 4..=7, at t0 + i seconds
    assert_eq!(log.prune(t0() - DAY, "ops").expect("prune").pruned, 3);
    log.close().expect("close");
    assert!(verify(&cfg, None).expect("verify").is_ok());
    db(&cfg)
        .execute("DELETE FROM audit_entries WHERE seq = 6", &[])
        .expect("delete");
    assert_eq!(
        verify(&cfg, None).expect("verify").finding,
        Some(Finding::Deleted {
            after_seq: 5,
            missing_seq: 6
        })
    );
}

#[test]
fn only_a_prefix_is_pruned_and_prunes_repeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let now = SystemTime::now();
    let times = [now - 10 * DAY, now, now - 10 * DAY];
    for (i, t) in times.into_iter().enumerate() {
        let mut rec = exec("acme", "f", i as u64);
        rec.time = (t).into();
        log.record_execution(rec, None).expect("record");
    }
    // The old record at seq 3 stays: deleting it would leave a gap.
    let first = log.prune(now - DAY, "ops").expect("prune");
    assert_eq!(
        (first.pruned, first.anchor_seq, first.record.seq),
        (1, 1, 4)
    );
    // Prune everything up to now + a day: all of it, including the first prune record.
    let second = log.prune(now + DAY, "ops").expect("prune again");
    assert_eq!(
        (second.pruned, second.anchor_seq, second.record.seq),
        (3, 4, 5)
    );
    // Nothing left to prune: the anchor stays.
    let third = log
        .prune(SystemTime::UNIX_EPOCH + DAY, "ops")
        .expect("prune nothing");
    assert_eq!(
        (third.pruned, third.anchor_seq, third.anchor_hash),
        (0, 4, second.anchor_hash.clone())
    );
    log.close().expect("close");
    let v = verify(&cfg, None).expect("verify");
    assert_eq!(
        (v.finding, v.anchor_seq, v.first_seq, v.last_seq),
        (None, 4, Some(5), Some(6))
    );
}

#[test]
fn prune_on_an_empty_log_anchors_at_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let r = log.prune(SystemTime::now(), "ops").expect("prune");
    assert_eq!(
        (r.pruned, r.anchor_seq, r.anchor_hash, r.record.seq),
        (0, 0, "00".repeat(32), 1)
    );
    log.close().expect("close");
    assert!(verify(&cfg, None).expect("verify").is_ok());
}

#[test]
fn captured_payloads_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let now = SystemTime::now();
    let capture = |days| {
        Some(Captured {
            input: b"{}".to_vec(),
            output: None,
            retention_days: days,
        })
    };
    let mut stale = exec("acme", "f", 1);
    stale.time = (now - 2 * DAY).into();
    log.record_execution(stale.clone(), capture(1))
        .expect("stale");
    let mut fresh = exec("acme", "f", 2);
    fresh.time = (now).into();
    log.record_execution(fresh.clone(), capture(30))
        .expect("fresh");

    // Expired payloads are never served, even before they are deleted.
    assert_eq!(
        log.captured("acme", &stale.execution_id).expect("read"),
        None
    );
    let kept = log
        .captured("acme", &fresh.execution_id)
        .expect("read")
        .expect("fresh kept");
    assert_eq!(kept.seq, 2);

    let r = log
        .prune(SystemTime::UNIX_EPOCH + DAY, "ops")
        .expect("prune");
    assert_eq!((r.pruned, r.captures_expired), (0, 1));
    let n: i64 = db(&cfg)
        .one("SELECT COUNT(*) FROM audit_captures", &[])
        .expect("count")
        .parse()
        .expect("a number");
    assert_eq!(n, 1);
    log.close().expect("close");
    assert!(verify(&cfg, None).expect("verify").is_ok());
}

#[test]
fn a_checkpoint_at_the_first_kept_record_is_checked_against_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let now = SystemTime::now();
    for i in 0..5 {
        let mut rec = exec("acme", "f", i);
        rec.time = (now - 10 * DAY).into();
        log.record_execution(rec, None).expect("old");
    }
    let recent = |i| {
        let mut rec = exec("acme", "f", i);
        rec.time = now.into();
        rec
    };
    log.record_execution(recent(5), None).expect("new");
    assert_eq!(log.checkpoint().expect("checkpoint").seq, 6);
    log.record_execution(recent(6), None).expect("new");
    assert_eq!(
        log.prune(now - DAY, "retention-job")
            .expect("prune")
            .anchor_seq,
        5
    );
    log.close().expect("close");

    // Keep only the checkpoint that signs seq 6, now the first record kept:
    // it is compared with that record's hash, not skipped as pruned.
    let kept: Vec<String> = std::fs::read_to_string(&cfg.checkpoint_path)
        .expect("checkpoints")
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["seq"] == 6)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(kept.len(), 1);
    std::fs::write(&cfg.checkpoint_path, kept.concat()).expect("rewrite");
    let v = verify(&cfg, None).expect("verify");
    assert_eq!((v.finding, v.first_seq), (None, Some(6)));
    assert_eq!(v.checkpointed_seq, Some(6));
}

#[test]
fn records_before_the_prune_anchor_without_the_first_are_a_deletion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let now = SystemTime::now();
    for i in 0..8 {
        let mut rec = exec("acme", "f", i);
        rec.time = (if i < 3 { now - 10 * DAY } else { now }).into();
        log.record_execution(rec, None).expect("record");
    }
    let report = log.prune(now - DAY, "retention-job").expect("prune");
    assert_eq!(report.anchor_seq, 3);
    log.close().expect("close");
    // The prune record now claims more was pruned (up to 6) than was: seqs
    // 4 to 6 are still there, but 1 to 3 are gone.
    let conn = db(&cfg);
    let body = conn
        .one(
            "SELECT body FROM audit_entries WHERE seq = ?1",
            &[&(report.record.seq as i64)],
        )
        .expect("prune row");
    let body = body.replace("\"anchor_seq\":3", "\"anchor_seq\":6");
    conn.execute(
        "UPDATE audit_entries SET body = ?1 WHERE seq = ?2",
        rusqlite::params![body, report.record.seq as i64],
    )
    .expect("edit");
    assert_eq!(
        verify(&cfg, None).expect("verify").finding,
        Some(Finding::Deleted {
            after_seq: 0,
            missing_seq: 1
        })
    );
}

#[test]
fn a_prune_record_claiming_records_that_are_all_still_here_is_an_edit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 5);
    // Nothing is old enough: the prune anchors at the start.
    let report = log
        .prune(SystemTime::now() - 1000 * DAY, "ops")
        .expect("prune");
    assert_eq!((report.pruned, report.anchor_seq), (0, 0));
    log.close().expect("close");
    let conn = db(&cfg);
    let seq = report.record.seq as i64;
    let body = conn
        .one("SELECT body FROM audit_entries WHERE seq = ?1", &[&seq])
        .expect("prune row");
    let body = body.replace("\"anchor_seq\":0", "\"anchor_seq\":3");
    conn.execute(
        "UPDATE audit_entries SET body = ?1 WHERE seq = ?2",
        rusqlite::params![body, seq],
    )
    .expect("edit");
    // Records 1 to 3 are still here, so the chain from 1 decides, and it
    // finds the edited prune record itself.
    assert_eq!(
        verify(&cfg, None).expect("verify").finding,
        Some(Finding::Edited {
            seq: report.record.seq
        })
    );
}
