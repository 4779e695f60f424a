//! The log of a fleet, on PostgreSQL whatever `AIFN_TEST_BACKEND` says:
//! several nodes, each with its own key and checkpoints, appending to one
//! chain; a lost connection; a schema from a newer release.

use std::collections::BTreeSet;
use std::sync::Barrier;

use aifn_audit::{AuditConfig, AuditError, AuditLog, Finding, verify};

use crate::common::*;

/// Node `name`'s config: its own files in `dir`, the shared `url`.
fn node(dir: &std::path::Path, name: &str, url: &str) -> AuditConfig {
    let mut cfg = sqlite_config(dir, 25);
    cfg.node = name.to_owned();
    cfg.postgres = Some(url.parse().expect("url"));
    cfg
}

#[test]
fn two_nodes_appending_at_once_make_one_chain_each_nodes_checkpoints_cover() {
    let url = aifn_test_support::postgres_url();
    let (d1, d2) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let cfgs = [
        node(d1.path(), "node-1", &url),
        node(d2.path(), "node-2", &url),
    ];
    let logs: Vec<AuditLog> = cfgs.iter().map(open).collect();
    const THREADS: u64 = 4;
    const EACH: u64 = 30;
    let barrier = Barrier::new(THREADS as usize * 2);
    let seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS * 2)
            .map(|t| {
                let (log, barrier) = (&logs[(t % 2) as usize], &barrier);
                s.spawn(move || {
                    barrier.wait();
                    (0..EACH)
                        .map(|i| {
                            log.record_execution(exec("acme", "f", t * 1000 + i), None)
                                .expect("record")
                                .seq
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    for log in &logs {
        log.close().expect("close");
    }
    // Every acknowledged record has its own seq, and they are 1..=N.
    let n = THREADS * 2 * EACH;
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len() as u64, n, "no seq given twice");
    assert_eq!(unique, (1..=n).collect(), "no gap");
    // Both nodes wrote, each record naming its node.
    let raw = db(&cfgs[0]);
    let by_node = raw
        .rows(
            "SELECT body::json->>'node', count(*) FROM audit_entries GROUP BY 1 ORDER BY 1",
            &[],
        )
        .expect("rows");
    let half = (n / 2).to_string();
    assert_eq!(
        by_node,
        vec![
            vec!["node-1".to_owned(), half.clone()],
            vec!["node-2".to_owned(), half]
        ]
    );
    // Each node's own checkpoints, signed with its own key, cover the chain.
    for cfg in &cfgs {
        let report = verify(cfg, Some(&public_key(cfg))).expect("verify");
        assert_eq!(report.finding, None, "{report:?}");
        assert_eq!((report.records, report.checkpointed_seq), (n, Some(n)));
    }
}

#[test]
fn a_node_opening_behind_the_head_appends_and_sees_another_nodes_tampering() {
    let url = aifn_test_support::postgres_url();
    let (d1, d2) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (c1, c2) = (
        node(d1.path(), "node-1", &url),
        node(d2.path(), "node-2", &url),
    );
    let first = open(&c1);
    fill(&first, "acme", 3);
    first.close().expect("close");
    // Node 2 appends after node 1's checkpoint at seq 3...
    let second = open(&c2);
    fill(&second, "acme", 4);
    second.close().expect("close");
    // ...and node 1, whose last checkpoint is behind the head, opens fine.
    let first = open(&c1);
    let next = first
        .record_execution(exec("acme", "f", 99), None)
        .expect("record");
    assert_eq!(next.seq, 8);
    first.close().expect("close");
    assert!(verify(&c1, None).expect("verify").is_ok());
    // A record node 2 wrote, edited: found from node 1's files too.
    db(&c1)
        .execute(
            "UPDATE audit_entries SET body = replace(body, '\"user_id\":\"user-1\"', '\"user_id\":\"eve\"') WHERE seq = 5",
            &[],
        )
        .expect("edit");
    assert_eq!(
        verify(&c1, Some(&public_key(&c1))).expect("verify").finding,
        Some(Finding::Edited { seq: 5 })
    );
}

#[test]
fn a_lost_connection_is_opened_again_by_the_next_record() {
    let url = aifn_test_support::postgres_url();
    let dir = tempfile::tempdir().expect("dir");
    let cfg = node(dir.path(), "node-1", &url);
    let log = open(&cfg);
    fill(&log, "acme", 2);
    let (ok, out) = aifn_test_support::psql_at(
        &url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert!(ok, "{out}");
    assert_ne!(out.trim(), "0", "the writer's connection was there to kill");
    // Found closed before the batch was sent: opened again, not failed.
    let rec = log
        .record_execution(exec("acme", "f", 3), None)
        .expect("record after the connection was lost");
    assert_eq!(rec.seq, 3);
    assert!(log.is_healthy());
    assert_eq!(log.stats().failed_commits, 0);
    log.close().expect("close");
    assert!(verify(&cfg, None).expect("verify").is_ok());
}

#[test]
fn a_database_that_cannot_be_reached_is_unavailable() {
    let dir = tempfile::tempdir().expect("dir");
    let cfg = node(
        dir.path(),
        "node-1",
        "postgresql://nobody@%2Fnonexistent/none",
    );
    match AuditLog::open(cfg) {
        Err(e @ AuditError::Unavailable { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with(
                    "audit database postgresql://nobody@%2Fnonexistent/none unavailable"
                ),
                "{text}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn a_schema_newer_than_this_build_is_refused() {
    let url = aifn_test_support::postgres_url();
    let dir = tempfile::tempdir().expect("dir");
    let cfg = node(dir.path(), "node-1", &url);
    open(&cfg).close().expect("close");
    let (ok, out) = aifn_test_support::psql_at(
        &url,
        "INSERT INTO audit_schema_migrations (version) VALUES (99)",
    );
    assert!(ok, "{out}");
    match AuditLog::open(cfg.clone()) {
        Err(AuditError::Schema { found: 99, .. }) => {}
        other => panic!("expected Schema, got {other:?}"),
    }
    assert!(matches!(
        verify(&cfg, None),
        Err(AuditError::Schema { found: 99, .. })
    ));
}

#[test]
fn nodes_opening_a_fresh_database_at_once_migrate_once() {
    let url = aifn_test_support::postgres_url();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let barrier = Barrier::new(dirs.len());
    std::thread::scope(|s| {
        for (i, d) in dirs.iter().enumerate() {
            let (barrier, url) = (&barrier, &url);
            s.spawn(move || {
                barrier.wait();
                let log = open(&node(d.path(), &format!("node-{i}"), url));
                log.close().expect("close");
            });
        }
    });
    let (ok, out) =
        aifn_test_support::psql_at(&url, "SELECT count(*) FROM audit_schema_migrations");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "1");
}

#[test]
fn a_nul_in_a_callers_text_does_not_fail_its_batch() {
    let url = aifn_test_support::postgres_url();
    let dir = tempfile::tempdir().expect("dir");
    let cfg = node(dir.path(), "node-1", &url);
    let log = open(&cfg);
    let mut hostile = exec("acme", "f\0", 1);
    hostile.user_id = "eve\0".into();
    let rec = log.record_execution(hostile, None).expect("recorded");
    assert!(log.is_healthy());
    let user = db(&cfg)
        .one(
            "SELECT user_id FROM audit_entries WHERE seq = ?1",
            &[&(rec.seq as i64)],
        )
        .expect("row");
    assert_eq!(user, "eve\u{fffd}");
    log.close().expect("close");
    assert!(verify(&cfg, None).expect("verify").is_ok());
}
