use aifn_audit::{AuditError, AuditLog, Finding, verify};
use rusqlite::params;

use crate::common::*;

/// Ten records, closed (so a checkpoint covers all ten).
fn ten() -> (tempfile::TempDir, aifn_audit::AuditConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    assert_eq!(fill(&log, "acme", 10), (1..=10).collect::<Vec<_>>());
    log.close().expect("close");
    assert!(verify(&cfg, None).expect("verify").is_ok());
    (dir, cfg)
}

fn finding(cfg: &aifn_audit::AuditConfig) -> Option<Finding> {
    let report = verify(cfg, None).expect("verify runs");
    // The report is ok exactly when it has no finding.
    assert_eq!(report.is_ok(), report.finding.is_none(), "{report:?}");
    report.finding
}

#[test]
fn findings_read_as_sentences() {
    assert_eq!(
        Finding::Edited { seq: 5 }.to_string(),
        "record 5 was edited"
    );
    assert_eq!(
        Finding::Deleted {
            after_seq: 4,
            missing_seq: 5
        }
        .to_string(),
        "record 5 is missing (the chain breaks after 4)"
    );
    assert_eq!(
        Finding::Reordered { seq: 3 }.to_string(),
        "record 3 holds another record's content (reordered)"
    );
}

#[test]
fn editing_a_field_is_found() {
    let (_dir, cfg) = ten();
    let n = db(&cfg)
        .execute(
            "UPDATE audit_entries SET body = replace(body, '\"outcome\":\"ok\"', '\"outcome\":\"trap\"') WHERE seq = 5",
            &[],
        )
        .expect("edit");
    assert_eq!(n, 1);
    assert_eq!(finding(&cfg), Some(Finding::Edited { seq: 5 }));
}

#[test]
fn editing_an_indexed_column_only_is_found() {
    let (_dir, cfg) = ten();
    db(&cfg)
        .execute(
            "UPDATE audit_entries SET tenant_id = 'evil' WHERE seq = 6",
            &[],
        )
        .expect("edit");
    assert_eq!(finding(&cfg), Some(Finding::Edited { seq: 6 }));
}

#[test]
fn editing_and_rehashing_one_record_is_found_at_that_record() {
    let (_dir, cfg) = ten();
    let conn = db(&cfg);
    let [body, prev] = <[String; 2]>::try_from(
        conn.row(
            "SELECT body, prev_hash FROM audit_entries WHERE seq = 4",
            &[],
        )
        .expect("row"),
    )
    .expect("2 columns");
    let body = body.replace("\"user_id\":\"user-1\"", "\"user_id\":\"mallory\"");
    let hash = chain_hash(&prev, 4, &body);
    conn.execute(
        "UPDATE audit_entries SET body = ?1, hash = ?2 WHERE seq = 4",
        params![body, hash],
    )
    .expect("edit");
    assert_eq!(finding(&cfg), Some(Finding::Edited { seq: 4 }));
}

#[test]
fn deleting_a_middle_record_is_found() {
    let (_dir, cfg) = ten();
    db(&cfg)
        .execute("DELETE FROM audit_entries WHERE seq = 5", &[])
        .expect("delete");
    assert_eq!(
        finding(&cfg),
        Some(Finding::Deleted {
            after_seq: 4,
            missing_seq: 5
        })
    );
}

#[test]
fn deleting_the_first_record_is_found() {
    let (_dir, cfg) = ten();
    db(&cfg)
        .execute("DELETE FROM audit_entries WHERE seq = 1", &[])
        .expect("delete");
    assert_eq!(
        finding(&cfg),
        Some(Finding::Deleted {
            after_seq: 0,
            missing_seq: 1
        })
    );
}

#[test]
fn swapping_two_records_is_found() {
    let (_dir, cfg) = ten();
    let conn = db(&cfg);
    let cols = "stream, tenant_id, time_ms, function, agent_id, user_id, outcome, execution_id, body, prev_hash, hash";
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE swap AS SELECT seq, {cols} FROM audit_entries WHERE seq IN (3, 7);
         UPDATE audit_entries SET ({cols}) = (SELECT {cols} FROM swap WHERE swap.seq = 10 - audit_entries.seq)
         WHERE seq IN (3, 7);"
    ))
    .expect("swap");
    let moved = conn
        .one("SELECT execution_id FROM audit_entries WHERE seq = 3", &[])
        .expect("row");
    assert_eq!(moved, "acme-leave_days-0006");
    assert_eq!(finding(&cfg), Some(Finding::Reordered { seq: 3 }));
}

#[test]
fn truncating_the_tail_after_a_checkpoint_is_found_and_refused_at_open() {
    let (_dir, cfg) = ten();
    db(&cfg)
        .execute("DELETE FROM audit_entries WHERE seq > 7", &[])
        .expect("truncate");
    assert_eq!(
        finding(&cfg),
        Some(Finding::Truncated {
            last_seq: 7,
            checkpoint_seq: 10
        })
    );
    match AuditLog::open(cfg.clone()) {
        Err(AuditError::CheckpointMismatch {
            db_seq,
            checkpoint_seq,
            ..
        }) => assert_eq!((db_seq, checkpoint_seq), (7, 10)),
        other => panic!("expected CheckpointMismatch, got {other:?}"),
    }
}

#[test]
fn rewriting_the_whole_chain_is_caught_by_the_signed_checkpoint() {
    let (_dir, cfg) = ten();
    let conn = db(&cfg);
    let mut prev = "00".repeat(32);
    for seq in 1..=10i64 {
        let body = conn
            .one("SELECT body FROM audit_entries WHERE seq = ?1", &[&seq])
            .expect("row");
        let body = if seq == 2 {
            body.replace("\"agent_id\":\"agent-1\"", "\"agent_id\":\"agent-x\"")
        } else {
            body
        };
        let hash = chain_hash(&prev, seq as u64, &body);
        conn.execute(
            "UPDATE audit_entries SET body = ?1, prev_hash = ?2, hash = ?3,
             agent_id = CASE WHEN seq = 2 THEN 'agent-x' ELSE agent_id END WHERE seq = ?4",
            params![body, prev, hash, seq],
        )
        .expect("rewrite");
        prev = hash;
    }
    assert_eq!(
        finding(&cfg),
        Some(Finding::BadCheckpoint {
            line: 1,
            seq: Some(10),
            reason: "signs a hash the chain does not have at this seq".into()
        })
    );
}

#[test]
fn a_forged_checkpoint_is_found() {
    let (_dir, cfg) = ten();
    // The forger knows the real head but not the key: they sign with their own.
    let real = checkpoint_lines(&cfg).remove(0);
    let forger = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let mut forged = real.clone();
    forged["seq"] = 12.into();
    forged["public_key"] = hex::encode(forger.verifying_key().to_bytes()).into();
    forged["signature"] = hex::encode([0u8; 64]).into();
    let mut text = std::fs::read_to_string(&cfg.checkpoint_path).expect("read");
    text.push_str(&format!("{forged}\n"));
    std::fs::write(&cfg.checkpoint_path, &text).expect("write");
    assert_eq!(
        finding(&cfg),
        Some(Finding::BadCheckpoint {
            line: 2,
            seq: Some(12),
            reason: "signed by a key other than the trusted one".into()
        })
    );

    // Trusting only the lines, a bad signature is still bad...
    std::fs::remove_file(&cfg.signing_key_path).expect("remove key");
    assert_eq!(
        finding(&cfg),
        Some(Finding::BadCheckpoint {
            line: 2,
            seq: Some(12),
            reason: "signature does not verify".into()
        })
    );

    // ...but a checkpoint properly signed with the forger's own key needs
    // the real public key to be caught.
    let real_key = {
        let line = &checkpoint_lines(&cfg)[0];
        let mut k = [0u8; 32];
        hex::decode_to_slice(line["public_key"].as_str().expect("key"), &mut k).expect("hex");
        k
    };
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut c: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    let msg = format!(
        "aifn-audit-checkpoint-v1\n{{\"hash\":{},\"node\":{},\"seq\":{},\"time\":{}}}",
        c["hash"], c["node"], c["seq"], c["time"]
    );
    use ed25519_dalek::Signer;
    c["public_key"] = hex::encode(forger.verifying_key().to_bytes()).into();
    c["signature"] = hex::encode(forger.sign(msg.as_bytes()).to_bytes()).into();
    std::fs::write(&cfg.checkpoint_path, format!("{c}\n")).expect("write");
    assert_eq!(
        finding(&cfg),
        None,
        "self-consistent forgery passes without a trusted key"
    );
    assert_eq!(
        verify(&cfg, Some(&real_key)).expect("verify").finding,
        Some(Finding::BadCheckpoint {
            line: 1,
            seq: Some(10),
            reason: "signed by a key other than the trusted one".into()
        })
    );
}

#[test]
fn a_garbled_checkpoint_line_is_found() {
    let (_dir, cfg) = ten();
    let mut text = std::fs::read_to_string(&cfg.checkpoint_path).expect("read");
    text.push_str("not json\n");
    std::fs::write(&cfg.checkpoint_path, text).expect("write");
    assert_eq!(
        finding(&cfg),
        Some(Finding::BadCheckpoint {
            line: 2,
            seq: None,
            reason: "does not parse".into()
        })
    );
}

#[test]
fn a_corrupt_column_type_is_a_finding_not_a_panic() {
    let (_dir, cfg) = ten();
    // SQLite stores a blob in a TEXT column; PostgreSQL's typed columns
    // refuse one, so there a NULL stands for the value of no valid type.
    let edit = if on_postgres() {
        "ALTER TABLE audit_entries ALTER COLUMN body DROP NOT NULL; \
         UPDATE audit_entries SET body = NULL WHERE seq = 8"
    } else {
        "UPDATE audit_entries SET body = x'00ff' WHERE seq = 8"
    };
    db(&cfg).execute_batch(edit).expect("edit");
    assert_eq!(finding(&cfg), Some(Finding::Edited { seq: 8 }));
}

#[test]
fn rehashing_an_edit_of_an_unindexed_field_is_found_at_that_record() {
    // The edited record is self-consistent and its indexed columns agree;
    // only the next record's link shows it, and the finding names the
    // edited record, not the one whose link broke.
    let (_dir, cfg) = ten();
    let conn = db(&cfg);
    let [body, prev] = <[String; 2]>::try_from(
        conn.row(
            "SELECT body, prev_hash FROM audit_entries WHERE seq = 6",
            &[],
        )
        .expect("row"),
    )
    .expect("2 columns");
    let edited = body.replace("\"fuel_used\":", "\"fuel_used\":9");
    assert_ne!(edited, body, "the record has a fuel_used field");
    let hash = chain_hash(&prev, 6, &edited);
    conn.execute(
        "UPDATE audit_entries SET body = ?1, hash = ?2 WHERE seq = 6",
        params![edited, hash],
    )
    .expect("edit");
    assert_eq!(finding(&cfg), Some(Finding::Edited { seq: 6 }));
}

#[test]
fn a_rewritten_hash_at_the_checkpoint_is_refused_at_open() {
    let (_dir, cfg) = ten();
    db(&cfg)
        .execute(
            "UPDATE audit_entries SET hash = ?1 WHERE seq = 10",
            params!["00".repeat(32)],
        )
        .expect("edit");
    match AuditLog::open(cfg.clone()) {
        Err(AuditError::CheckpointMismatch {
            checkpoint_seq,
            reason,
            ..
        }) => {
            assert_eq!(checkpoint_seq, 10);
            assert_eq!(reason, "the record at the checkpoint has a different hash");
        }
        other => panic!("expected a checkpoint mismatch, got {other:?}"),
    }
}

#[test]
fn relinking_and_rehashing_the_first_record_is_found_at_it() {
    let (_dir, cfg) = ten();
    let conn = db(&cfg);
    let body = conn
        .one("SELECT body FROM audit_entries WHERE seq = 1", &[])
        .expect("row");
    // Self-consistent, but linked to a predecessor the log never had.
    let prev = "11".repeat(32);
    let hash = chain_hash(&prev, 1, &body);
    conn.execute(
        "UPDATE audit_entries SET prev_hash = ?1, hash = ?2 WHERE seq = 1",
        params![prev, hash],
    )
    .expect("edit");
    assert_eq!(finding(&cfg), Some(Finding::Edited { seq: 1 }));
}
