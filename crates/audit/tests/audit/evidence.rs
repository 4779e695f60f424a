//! Evidence: a tenant's records tied to signed checkpoints, verified
//! offline; every kind of tampering found.

use aifn_audit::{
    AuditConfig, AuditError, AuditLog, Checkpoint, Evidence, EvidenceError, KeySource,
    SecurityEvent, SecurityReason, verify_evidence,
};
use aifn_types::RegistryActionKind;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::common::*;

/// Eight records of two tenants and the host, a checkpoint after every
/// four: 1 acme, 2 globex, 3 acme, 4 security | 5 acme (registry),
/// 6 globex, 7 acme, 8 globex |.
pub(crate) fn scenario() -> (tempfile::TempDir, AuditConfig, AuditLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 4);
    let log = open(&cfg);
    let exec_at = |t: &str, i: u64| {
        log.record_execution(exec(t, "leave_days", i), None)
            .expect("record")
            .seq
    };
    assert_eq!(
        [exec_at("acme", 1), exec_at("globex", 2), exec_at("acme", 3)],
        [1, 2, 3]
    );
    let security = SecurityEvent {
        time: t0().into(),
        route: "/v1/functions/secret-route".into(),
        reason: SecurityReason::UnknownKey,
        remote_addr: None,
        node: String::new(),
    };
    assert_eq!(log.record_security(security).expect("security").seq, 4);
    let approve = registry("acme", RegistryActionKind::Approve, "leave_days@1");
    assert_eq!(log.record_registry(&approve).expect("registry").seq, 5);
    assert_eq!(
        [
            exec_at("globex", 6),
            exec_at("acme", 7),
            exec_at("globex", 8)
        ],
        [6, 7, 8]
    );
    (dir, cfg, log)
}

fn hashes(c: &[Checkpoint]) -> Vec<u64> {
    c.iter().map(|c| c.seq).collect()
}

fn seqs(e: &Evidence) -> (Vec<u64>, Vec<u64>) {
    (
        e.records.iter().map(|r| r.seq).collect(),
        e.links.iter().map(|l| l.seq).collect(),
    )
}

#[test]
fn evidence_ties_a_tenants_records_to_signed_checkpoints() {
    let (_dir, cfg, log) = scenario();
    let e = log.evidence(&tenant("acme"), &[7, 1]).expect("evidence");
    assert_eq!(seqs(&e), (vec![1, 7], vec![2, 3, 4, 8]));
    assert_eq!(hashes(&e.checkpoints), [4, 8]);
    assert_eq!(e.chain_format_2_from, 1);

    let report = verify_evidence(&e, None).expect("verified");
    assert_eq!(
        (
            report.records,
            report.links,
            report.checkpoints,
            report.segments
        ),
        (2, 4, 2, 2)
    );
    assert_eq!(report.key_source, KeySource::CheckpointLines);
    let pk = public_key(&cfg);
    assert_eq!(report.public_key, hex::encode(pk));
    let given = verify_evidence(&e, Some(&pk)).expect("verified with the key");
    assert_eq!(given.key_source, KeySource::Given);

    // Other tenants' and host records are links only: no body, no tenant.
    let text = serde_json::to_string(&e).expect("json");
    assert!(
        !text.contains("globex") && !text.contains("secret-route"),
        "{text}"
    );
    assert!(text.contains("acme-leave_days-0007"));
    let conn = db(&cfg);
    for l in &e.links {
        let body = conn
            .one(
                "SELECT body FROM audit_entries WHERE seq = ?1",
                &[&(l.seq as i64)],
            )
            .expect("body");
        assert_eq!(l.body_sha256, hex::encode(Sha256::digest(body.as_bytes())));
    }
    let back: Evidence = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, e);
    log.close().expect("close");
}

#[test]
fn segments_under_one_checkpoint_merge_and_touching_ones_chain_on() {
    let (_dir, _cfg, log) = scenario();
    let one = log.evidence(&tenant("acme"), &[1, 3, 3]).expect("evidence");
    assert_eq!(seqs(&one), (vec![1, 3], vec![2, 4]));
    assert_eq!(hashes(&one.checkpoints), [4]);
    assert_eq!(verify_evidence(&one, None).expect("verified").segments, 1);
    // 3..4 and 5..8 touch: one run through the checkpoint at 4.
    let touching = log.evidence(&tenant("acme"), &[3, 5]).expect("evidence");
    assert_eq!(seqs(&touching), (vec![3, 5], vec![4, 6, 7, 8]));
    assert_eq!(hashes(&touching.checkpoints), [4, 8]);
    let report = verify_evidence(&touching, None).expect("verified");
    assert_eq!((report.segments, report.checkpoints), (1, 2));
    log.close().expect("close");
}

#[test]
fn only_the_tenants_existing_records_are_evidence() {
    let (_dir, _cfg, log) = scenario();
    let acme = tenant("acme");
    for (seq, why) in [(2, "another tenant's"), (4, "host-level"), (99, "missing")] {
        assert!(
            matches!(log.evidence(&acme, &[1, seq]), Err(AuditError::UnknownRecord { seq: s }) if s == seq),
            "{why}"
        );
    }
    assert!(matches!(
        log.evidence(&acme, &[]),
        Err(AuditError::InvalidQuery { .. })
    ));
    // Pair: globex's own record is its evidence.
    let e = log.evidence(&tenant("globex"), &[2]).expect("evidence");
    assert_eq!(seqs(&e), (vec![2], vec![3, 4]));
    log.close().expect("close");
}

#[test]
fn a_record_no_checkpoint_covers_yet_gets_one_signed_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 3);
    assert_eq!(checkpoint_lines(&cfg).len(), 0);
    let e = log.evidence(&tenant("acme"), &[2]).expect("evidence");
    assert_eq!(checkpoint_lines(&cfg).len(), 1, "one checkpoint signed");
    assert_eq!(
        (seqs(&e), hashes(&e.checkpoints)),
        ((vec![2], vec![3]), vec![3])
    );
    verify_evidence(&e, Some(&public_key(&cfg))).expect("verified");
    // Pair: covered now, nothing more is signed.
    log.evidence(&tenant("acme"), &[1]).expect("evidence");
    assert_eq!(checkpoint_lines(&cfg).len(), 1);
    log.close().expect("close");
}

/// A checkpoint signed with `key`, as the log signs them.
pub(crate) fn sign(key: &SigningKey, seq: u64, hash: &str) -> Checkpoint {
    let (time, node) = ("2026-11-22T10:00:00.000Z", "node-1");
    let body = format!(r#"{{"hash":"{hash}","node":"{node}","seq":{seq},"time":"{time}"}}"#);
    let message = [b"aifn-audit-checkpoint-v1\n".as_slice(), body.as_bytes()].concat();
    Checkpoint {
        seq,
        hash: hash.to_owned(),
        time: time.into(),
        node: node.into(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        signature: hex::encode(key.sign(&message).to_bytes()),
    }
}

fn append_line(cfg: &AuditConfig, c: &Checkpoint) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&cfg.checkpoint_path)
        .expect("open checkpoints");
    writeln!(f, "{}", serde_json::to_string(c).expect("json")).expect("append");
}

#[test]
fn only_checkpoints_of_this_logs_key_that_match_the_chain_are_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 3);
    std::fs::write(&cfg.checkpoint_path, "not json\n").expect("write");
    // Another key's line is passed over: a checkpoint of ours is signed.
    append_line(
        &cfg,
        &sign(&SigningKey::from_bytes(&[5; 32]), 3, &"ab".repeat(32)),
    );
    let e = log.evidence(&tenant("acme"), &[1]).expect("evidence");
    assert_eq!(checkpoint_lines_raw(&cfg), 3);
    assert_eq!(e.checkpoints[0].public_key, hex::encode(public_key(&cfg)));
    verify_evidence(&e, Some(&public_key(&cfg))).expect("verified");

    // Our key but a hash the chain does not have: not used either.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 3);
    append_line(&cfg, &sign(&signing_key(&cfg), 3, &"ab".repeat(32)));
    assert!(matches!(
        log.evidence(&tenant("acme"), &[1]),
        Err(AuditError::Unprovable { seq: 1, .. })
    ));
    // Pair: once a genuine one at the same seq follows, it is the one used.
    let genuine = log.checkpoint().expect("checkpoint");
    let e = log.evidence(&tenant("acme"), &[1]).expect("evidence");
    assert_eq!(e.checkpoints, [genuine]);
    verify_evidence(&e, None).expect("verified");
    log.close().expect("close");
}

fn checkpoint_lines_raw(cfg: &AuditConfig) -> usize {
    std::fs::read_to_string(&cfg.checkpoint_path)
        .expect("read")
        .lines()
        .count()
}

#[test]
fn a_tenants_format_1_records_are_shown_whole_and_anothers_cannot_be_crossed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Format 1 records exist only in SQLite logs older releases wrote.
    let cfg = sqlite_config(dir.path(), 0);
    legacy_db(&cfg, &["acme", "globex", "acme", "acme"]);
    let log = open(&cfg);
    assert_eq!(fill(&log, "acme", 2), [5, 6]);
    let acme = tenant("acme");
    // 3 and 4 are format 1 (whole, 4 being the tenant's own), 5 and 6 links.
    let e = log.evidence(&acme, &[3]).expect("evidence");
    assert_eq!(seqs(&e), (vec![3, 4], vec![5, 6]));
    assert_eq!(e.chain_format_2_from, 5);
    verify_evidence(&e, None).expect("verified");
    // From 1 the segment crosses globex's format 1 record 2.
    match log.evidence(&acme, &[1]) {
        Err(AuditError::Unprovable { seq: 1, reason }) => {
            assert!(reason.contains("record 2"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The boundary is part of what is checked.
    let mut later = e.clone();
    later.chain_format_2_from = 6;
    assert_eq!(
        verify_evidence(&later, None),
        Err(EvidenceError::LinkBeforeFormat2 { seq: 5, from: 6 })
    );
    let mut earlier = e;
    earlier.chain_format_2_from = 4;
    assert_eq!(
        verify_evidence(&earlier, None),
        Err(EvidenceError::RecordHash { seq: 4 })
    );
    log.close().expect("close");
}

#[test]
fn evidence_is_capped_before_any_row_is_read() {
    let (_dir, _cfg, log) = scenario();
    // Records 1 and 7: segments 1..=4 and 7..=8, six entries in all.
    let e = log
        .evidence_within(&tenant("acme"), &[7, 1], 6)
        .expect("six fit");
    assert_eq!(e.records.len() + e.links.len(), 6);
    let err = log
        .evidence_within(&tenant("acme"), &[7, 1], 5)
        .expect_err("six do not fit in five");
    assert!(
        matches!(&err, AuditError::InvalidQuery { reason } if reason.contains("6 records and links, over the 5")),
        "{err:?}"
    );
    assert_eq!(aifn_audit::MAX_EVIDENCE_ENTRIES, 100_000);
    log.close().expect("close");
}
