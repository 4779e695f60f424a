//! Chain formats: a log made before migration 3 keeps format 1 for its
//! records and chains new ones with format 2; `verify` checks each record
//! with its own format, and moving the boundary is found.

use aifn_audit::{AuditError, AuditLog, Finding, verify};
use rusqlite::params;

use crate::common::*;

/// Three format 1 records of the previous release, then the log opened
/// (migrated: the boundary is 4) and three format 2 records, closed.
fn mixed() -> (tempfile::TempDir, aifn_audit::AuditConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = sqlite_config(dir.path(), 0);
    legacy_db(&cfg, &["acme", "globex", "acme"]);
    let log = open(&cfg);
    assert_eq!(fill(&log, "acme", 3), [4, 5, 6]);
    log.close().expect("close");
    (dir, cfg)
}

fn finding(cfg: &aifn_audit::AuditConfig) -> Option<Finding> {
    verify(cfg, Some(&public_key(cfg)))
        .expect("verify runs")
        .finding
}

fn rows(cfg: &aifn_audit::AuditConfig) -> Vec<(String, String, String)> {
    sqlite_db(cfg)
        .prepare("SELECT body, prev_hash, hash FROM audit_entries ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_log_from_before_migration_3_verifies_before_and_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = sqlite_config(dir.path(), 0);
    legacy_db(&cfg, &["acme", "globex", "acme"]);
    // Verified as the previous release left it (not migrated): format 1.
    let before = verify(&cfg, None).expect("verify");
    assert_eq!((before.finding, before.records), (None, 3));
    assert_eq!(before.chain_format_2_from, None);

    let log = open(&cfg);
    assert_eq!(fill(&log, "acme", 3), [4, 5, 6]);
    log.close().expect("close");
    let after = verify(&cfg, Some(&public_key(&cfg))).expect("verify");
    assert_eq!((after.finding, after.records), (None, 6));
    assert_eq!(after.chain_format_2_from, Some(4));
    assert_eq!(after.checkpointed_seq, Some(6));

    // The old records kept their bytes and hashes; the new ones chain on.
    let rows = rows(&cfg);
    for (seq, (body, prev, hash)) in rows.iter().enumerate().map(|(i, r)| (i as u64 + 1, r)) {
        if seq < 4 {
            assert_eq!(*hash, chain_hash_v1(prev, seq, body), "record {seq}");
        } else {
            assert_eq!(*hash, chain_hash(prev, seq, body), "record {seq}");
            assert_ne!(*hash, chain_hash_v1(prev, seq, body), "record {seq}");
        }
    }
    assert_eq!(
        rows[3].1, rows[2].2,
        "the first format 2 record links to the last format 1 one"
    );
}

#[test]
fn a_fresh_log_is_format_2_from_seq_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 2);
    log.close().expect("close");
    let report = verify(&cfg, None).expect("verify");
    assert_eq!(
        (report.finding, report.chain_format_2_from),
        (None, Some(1))
    );
}

#[test]
fn editing_a_record_of_either_format_is_found() {
    for seq in [2, 5] {
        let (_dir, cfg) = mixed();
        let n = sqlite_db(&cfg)
            .execute(
                "UPDATE audit_entries SET body = replace(body, '\"user_id\":\"user-1\"', '\"user_id\":\"eve\"') WHERE seq = ?1",
                [seq as i64],
            )
            .expect("edit");
        assert_eq!(n, 1);
        assert_eq!(
            finding(&cfg),
            Some(Finding::Edited { seq }),
            "format of {seq}"
        );
    }
}

/// Rewrites a record's body and rehashes it with `hash`; the records after
/// it keep their links.
fn rewrite(cfg: &aifn_audit::AuditConfig, seq: u64, hash: fn(&str, u64, &str) -> String) {
    let conn = sqlite_db(cfg);
    let (body, prev): (String, String) = conn
        .query_row(
            "SELECT body, prev_hash FROM audit_entries WHERE seq = ?1",
            [seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    let body = body.replace("\"user_id\":\"user-1\"", "\"user_id\":\"eve\"");
    conn.execute(
        "UPDATE audit_entries SET body = ?1, hash = ?2 WHERE seq = ?3",
        params![body, hash(&prev, seq, &body), seq as i64],
    )
    .expect("rewrite");
}

#[test]
fn rehashing_a_record_with_either_formula_is_found() {
    // With its own format the record is self-consistent: the next record's
    // link names it. With the other format it does not even hash.
    for (seq, hash) in [
        (2, chain_hash_v1 as fn(&str, u64, &str) -> String),
        (2, chain_hash),
        (5, chain_hash),
        (5, chain_hash_v1),
    ] {
        let (_dir, cfg) = mixed();
        rewrite(&cfg, seq, hash);
        assert_eq!(finding(&cfg), Some(Finding::Edited { seq }), "record {seq}");
    }
}

#[test]
fn moving_or_deleting_the_format_boundary_is_found() {
    // Earlier: a format 1 record is checked as format 2. Later: a format 2
    // record is checked as format 1. Gone: everything reads as format 1.
    for (value, seq) in [(Some(3), 3), (Some(1), 1), (Some(5), 4), (None, 4)] {
        let (_dir, cfg) = mixed();
        let conn = sqlite_db(&cfg);
        match value {
            Some(v) => conn.execute("UPDATE audit_meta SET value = ?1", [v]),
            None => conn.execute("DELETE FROM audit_meta", []),
        }
        .expect("move boundary");
        assert_eq!(
            finding(&cfg),
            Some(Finding::Edited { seq }),
            "boundary {value:?}"
        );
    }
    // Pair: the boundary where it is verifies.
    let (_dir, cfg) = mixed();
    assert_eq!(finding(&cfg), None);
}

#[test]
fn the_writer_refuses_a_log_whose_boundary_was_deleted() {
    let (_dir, cfg) = mixed();
    sqlite_db(&cfg)
        .execute("DELETE FROM audit_meta", [])
        .expect("delete");
    assert!(matches!(
        AuditLog::open(cfg.clone()),
        Err(AuditError::Corrupt { seq: 0, .. })
    ));
    // Pair: with it, the log opens and appends with format 2.
    let (_dir, cfg) = mixed();
    let log = open(&cfg);
    assert_eq!(fill(&log, "acme", 1), [7]);
    log.close().expect("close");
    assert_eq!(finding(&cfg), None);
}
