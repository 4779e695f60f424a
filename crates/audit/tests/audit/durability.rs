use std::sync::Arc;

use aifn_audit::{AuditError, AuditLog, AuditQuery, verify};

use crate::common::*;

#[test]
fn concurrent_writers_are_batched_and_nothing_is_lost() {
    const THREADS: u64 = 16;
    const EACH: u64 = 40;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 100);
    let log = Arc::new(open(&cfg));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        log.record_execution(exec(&format!("t{t}"), "f", i), None)
                            .expect("record")
                            .seq
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    acked.sort_unstable();
    let total = THREADS * EACH;
    assert_eq!(
        acked,
        (1..=total).collect::<Vec<_>>(),
        "every ack is a distinct, contiguous seq"
    );

    let stats = log.stats();
    assert_eq!(stats.records, total);
    assert_eq!(stats.failed_commits, 0);
    assert!(
        stats.commits < total,
        "group commit batches callers: {stats:?}"
    );
    assert!(stats.commits >= total / 256);

    for t in 0..THREADS {
        let mut out = Vec::new();
        assert_eq!(
            log.export_jsonl(&tenant(&format!("t{t}")), &AuditQuery::default(), &mut out)
                .expect("export"),
            EACH
        );
    }
    // Verify works on the files while the log is still open...
    let live = verify(&cfg, None).expect("verify live");
    assert_eq!((live.finding, live.records), (None, total));
    log.close().expect("close");
    let report = verify(&cfg, None).expect("verify");
    assert_eq!(
        (report.finding, report.records, report.last_seq),
        (None, total, Some(total))
    );
    assert_eq!(report.checkpointed_seq, Some(total));
}

#[test]
fn a_tiny_queue_applies_backpressure_without_losing_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 0);
    cfg.queue_capacity = 1;
    cfg.max_batch = 2;
    let log = Arc::new(open(&cfg));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    log.record_execution(exec(&format!("t{t}"), "f", i), None)
                        .expect("record");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(log.stats().records, 80);
    log.close().expect("close");
    assert_eq!(verify(&cfg, None).expect("verify").records, 80);
}

#[test]
fn a_full_disk_fails_closed_and_writes_nothing_half() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The size cap is SQLite's (`max_page_count`); PostgreSQL's quota is
    // its server's.
    let mut cfg = sqlite_config(dir.path(), 0);
    cfg.max_db_bytes = Some(96 * 1024);
    let log = open(&cfg);
    assert!(log.is_healthy());
    let big = |i: u64| {
        let mut rec = exec("acme", "f", i);
        rec.error_message = Some("x".repeat(3000));
        rec
    };
    let mut acked = 0u64;
    let err = loop {
        match log.record_execution(big(acked), None) {
            Ok(a) => {
                acked += 1;
                assert_eq!(a.seq, acked);
            }
            Err(e) => break e,
        }
        assert!(acked < 1000, "the size cap never hit");
    };
    match &err {
        AuditError::CommitFailed { batch, reason, .. } => {
            assert_eq!(*batch, 1);
            assert!(reason.contains("full"), "{reason}");
        }
        other => panic!("expected CommitFailed, got {other:?}"),
    }
    assert!(!log.is_healthy(), "fail closed");
    assert_eq!(log.stats().failed_commits, 1);
    assert!(acked > 0);
    // The rollback left the same state, so the same record fails again, and
    // so does every caller of every batch that follows.
    let log = Arc::new(log);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || log.record_execution(big(acked), None))
        })
        .collect();
    for h in handles {
        let r = h.join().expect("thread");
        assert!(matches!(r, Err(AuditError::CommitFailed { .. })), "{r:?}");
    }
    assert!(!log.is_healthy());
    assert_eq!(log.stats().records, acked);
    log.close().expect("close");

    // Exactly the acknowledged records are there, and they chain.
    let report = verify(&cfg, None).expect("verify");
    assert_eq!(
        (report.finding, report.records, report.last_seq),
        (None, acked, Some(acked))
    );

    // With room again the chain continues where it was.
    cfg.max_db_bytes = None;
    let log = open(&cfg);
    let next = log
        .record_execution(exec("acme", "f", 0), None)
        .expect("record");
    assert_eq!(next.seq, acked + 1);
    assert!(log.is_healthy());
    log.close().expect("close");
    assert!(verify(&cfg, None).expect("verify").is_ok());
}

#[test]
fn after_close_nothing_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let clone = log.clone();
    fill(&log, "acme", 2);
    log.close().expect("close");
    log.close().expect("close twice");
    assert!(!clone.is_healthy());
    assert!(matches!(
        clone.record_execution(exec("acme", "f", 9), None),
        Err(AuditError::Closed)
    ));
    assert!(matches!(clone.checkpoint(), Err(AuditError::Closed)));
    // Reads still work on a closed log.
    assert_eq!(
        clone
            .query(&tenant("acme"), &AuditQuery::default())
            .expect("query")
            .entries
            .len(),
        2
    );
    assert_eq!(verify(&cfg, None).expect("verify").records, 2);
}

#[test]
fn the_last_drop_flushes_and_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log: AuditLog = open(&cfg);
    let other = log.clone();
    fill(&log, "acme", 3);
    drop(log);
    assert!(other.is_healthy(), "a clone keeps the writer alive");
    fill(&other, "acme", 1);
    drop(other);
    let lines = checkpoint_lines(&cfg);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["seq"], 4);
}

/// The checkpoint file's lines, as JSON.
fn checkpoint_lines(cfg: &aifn_audit::AuditConfig) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&cfg.checkpoint_path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a checkpoint line"))
        .collect()
}

#[test]
fn a_quiet_log_is_checkpointed_once_per_new_head_on_its_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 0);
    cfg.checkpoint_interval = std::time::Duration::from_millis(40);
    let log = open(&cfg);
    fill(&log, "acme", 3);
    let last_seq = |cfg: &aifn_audit::AuditConfig| {
        checkpoint_lines(cfg).last().and_then(|l| l["seq"].as_u64())
    };
    // Without a close or a record count, the interval signs the head (a
    // tick may also have signed an earlier head while the records came)...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while last_seq(&cfg) != Some(3) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(last_seq(&cfg), Some(3));
    // ...and later ticks with nothing new add no line.
    let settled = checkpoint_lines(&cfg).len();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(
        checkpoint_lines(&cfg).len(),
        settled,
        "{:?}",
        checkpoint_lines(&cfg)
    );
    // A prune is one more record and is signed at once.
    let before = log.stats().records;
    log.prune(t0(), "test").expect("prune");
    assert_eq!(log.stats().records, before + 1);
    assert_eq!(last_seq(&cfg), Some(4));
    let signed = checkpoint_lines(&cfg).len();
    log.close().expect("close");
    assert_eq!(
        checkpoint_lines(&cfg).len(),
        signed,
        "the close had nothing new to sign"
    );
}

#[test]
fn without_an_interval_nothing_is_signed_until_the_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    assert!(cfg.checkpoint_interval.is_zero());
    let log = open(&cfg);
    fill(&log, "acme", 2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(checkpoint_lines(&cfg), Vec::<serde_json::Value>::new());
    log.close().expect("close");
    let lines = checkpoint_lines(&cfg);
    assert_eq!((lines.len(), &lines[0]["seq"]), (1, &serde_json::json!(2)));
}

#[test]
fn missing_parent_directories_are_created_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = aifn_audit::AuditConfig::in_dir(dir.path(), "node-1");
    let nested = dir.path().join("a").join("b");
    cfg.db_path = nested.join("audit.db");
    cfg.checkpoint_path = nested.join("c").join("checkpoints.jsonl");
    cfg.signing_key_path = nested.join("k").join("signing.key");
    let log = aifn_audit::AuditLog::open(cfg.clone()).expect("open creates its folders");
    log.close().expect("close");
    assert!(cfg.db_path.is_file() && cfg.signing_key_path.is_file());
}

#[test]
fn no_commit_holds_more_than_max_batch_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 0);
    cfg.max_batch = 1;
    let log = open(&cfg);
    // Queued faster than fsync drains them, so batches would form.
    let pending: Vec<_> = (0..64)
        .map(|i| log.submit_execution(exec("acme", "f", i), None))
        .collect();
    for p in pending {
        p.wait().expect("durable");
    }
    let stats = log.stats();
    assert_eq!((stats.records, stats.commits), (64, 64), "{stats:?}");
    log.close().expect("close");
}

#[test]
fn the_interval_checkpoint_waits_for_its_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 0);
    cfg.checkpoint_interval = std::time::Duration::from_secs(3600);
    let log = open(&cfg);
    for i in 0..3 {
        log.record_execution(exec("acme", "f", i), None)
            .expect("record");
    }
    // Records, queries and their commits are not a tick: nothing is signed
    // before the hour is up (or the log closes).
    log.query(&tenant("acme"), &AuditQuery::default())
        .expect("query");
    assert_eq!(checkpoint_lines(&cfg).len(), 0);
    log.close().expect("close");
    assert_eq!(checkpoint_lines(&cfg).len(), 1);
}
