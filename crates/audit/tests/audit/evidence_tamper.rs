//! Evidence tampering: each kind of change to records, links, checkpoints
//! or keys is found, with the error that names it.

use aifn_audit::{Evidence, EvidenceError, verify_evidence};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::common::*;
use crate::evidence::{scenario, sign};

/// The evidence of acme's records 1 and 7 (records 1, 7; links 2, 3, 4,
/// 8; checkpoints 4, 8) with the log's public key and secret.
fn base() -> (Evidence, [u8; 32], SigningKey) {
    let (_dir, cfg, log) = scenario();
    let e = log.evidence(&tenant("acme"), &[1, 7]).expect("evidence");
    log.close().expect("close");
    (e, public_key(&cfg), signing_key(&cfg))
}

/// A different lowercase hex digit at `at`.
fn flip(s: &mut String, at: usize) {
    let c = if s.as_bytes()[at] == b'0' { "1" } else { "0" };
    s.replace_range(at..=at, c);
}

fn v2(prev: &str, seq: u64, digest: &str) -> String {
    let mut h = Sha256::new();
    h.update(hex::decode(prev).expect("hex"));
    h.update(seq.to_be_bytes());
    h.update(hex::decode(digest).expect("hex"));
    hex::encode(h.finalize())
}

type Tamper = fn(&mut Evidence, &SigningKey);

#[test]
fn every_kind_of_tampering_is_found() {
    let (e, pk, key) = base();
    assert!(verify_evidence(&e, Some(&pk)).is_ok());
    let cases: Vec<(&str, Tamper, EvidenceError)> = vec![
        (
            "a byte of a record body",
            |e, _| {
                e.records[0].body = e.records[0].body.replace("user-1", "user-2");
            },
            EvidenceError::RecordHash { seq: 1 },
        ),
        (
            "a record's hash",
            |e, _| flip(&mut e.records[1].hash, 10),
            EvidenceError::RecordHash { seq: 7 },
        ),
        (
            "a record's prev_hash",
            |e, _| flip(&mut e.records[0].prev_hash, 0),
            EvidenceError::RecordHash { seq: 1 },
        ),
        (
            "a record's seq",
            |e, _| e.records[0].seq = 9,
            EvidenceError::RecordHash { seq: 9 },
        ),
        (
            "a record rewritten and rehashed",
            |e, _| {
                let r = &mut e.records[0];
                r.body = r.body.replace("user-1", "user-2");
                r.hash = chain_hash(&r.prev_hash, 1, &r.body);
            },
            EvidenceError::Broken { seq: 2 },
        ),
        (
            "the last record before a checkpoint rewritten and rehashed",
            |e, _| {
                let l = &mut e.links[3];
                l.body_sha256 = "ab".repeat(32);
                l.hash = v2(&l.prev_hash, 8, &l.body_sha256);
            },
            EvidenceError::CheckpointHash { seq: 8 },
        ),
        (
            "a link's body_sha256",
            |e, _| flip(&mut e.links[0].body_sha256, 63),
            EvidenceError::LinkHash { seq: 2 },
        ),
        (
            "a link's hash",
            |e, _| flip(&mut e.links[0].hash, 5),
            EvidenceError::LinkHash { seq: 2 },
        ),
        (
            "a link's prev_hash",
            |e, _| flip(&mut e.links[0].prev_hash, 5),
            EvidenceError::LinkHash { seq: 2 },
        ),
        (
            "a link rewritten and rehashed",
            |e, _| {
                let l = &mut e.links[0];
                l.body_sha256 = "ab".repeat(32);
                l.hash = v2(&l.prev_hash, 2, &l.body_sha256);
            },
            EvidenceError::Broken { seq: 3 },
        ),
        (
            "the first record removed",
            |e, _| drop(e.records.remove(0)),
            EvidenceError::StartsWithLink { seq: 2 },
        ),
        (
            "every record removed",
            |e, _| e.records.clear(),
            EvidenceError::Empty,
        ),
        (
            "a link removed",
            |e, _| drop(e.links.remove(1)),
            EvidenceError::StartsWithLink { seq: 4 },
        ),
        (
            "the link a checkpoint signs removed",
            |e, _| drop(e.links.remove(3)),
            EvidenceError::CheckpointOutside { seq: 8 },
        ),
        (
            "a checkpoint removed",
            |e, _| drop(e.checkpoints.remove(1)),
            EvidenceError::Unsigned { last_seq: 8 },
        ),
        (
            "a checkpoint's signature",
            |e, _| flip(&mut e.checkpoints[0].signature, 3),
            EvidenceError::CheckpointSignature {
                seq: 4,
                reason: "signature does not verify".into(),
            },
        ),
        (
            "a checkpoint's seq",
            |e, _| e.checkpoints[0].seq = 3,
            EvidenceError::CheckpointSignature {
                seq: 3,
                reason: "signature does not verify".into(),
            },
        ),
        (
            "a checkpoint's hash",
            |e, _| flip(&mut e.checkpoints[1].hash, 0),
            EvidenceError::CheckpointSignature {
                seq: 8,
                reason: "signature does not verify".into(),
            },
        ),
        (
            "a checkpoint validly signed over another hash",
            |e, key| {
                e.checkpoints[0] = sign(key, 4, &"ab".repeat(32));
            },
            EvidenceError::CheckpointHash { seq: 4 },
        ),
        (
            "a checkpoint at a seq no segment reaches",
            |e, key| {
                e.checkpoints.push(sign(key, 5, &"ab".repeat(32)));
            },
            EvidenceError::CheckpointOutside { seq: 5 },
        ),
        (
            "a checkpoint re-signed by another key",
            |e, _| {
                let other = SigningKey::from_bytes(&[5; 32]);
                e.checkpoints[0] = sign(&other, 4, &e.checkpoints[0].hash.clone());
            },
            EvidenceError::CheckpointSignature {
                seq: 4,
                reason: "signed by a key other than the trusted one".into(),
            },
        ),
        (
            "an upper-case hash",
            |e, _| e.records[0].hash.make_ascii_uppercase(),
            EvidenceError::BadHex {
                seq: 1,
                field: "hash",
            },
        ),
        (
            "a short prev_hash",
            |e, _| {
                e.records[1].prev_hash.pop();
            },
            EvidenceError::BadHex {
                seq: 7,
                field: "prev_hash",
            },
        ),
        (
            "a short body_sha256",
            |e, _| {
                e.links[2].body_sha256.pop();
            },
            EvidenceError::BadHex {
                seq: 4,
                field: "body_sha256",
            },
        ),
        (
            "a link's hash not hex",
            |e, _| e.links[1].hash.replace_range(0..1, "g"),
            EvidenceError::BadHex {
                seq: 3,
                field: "hash",
            },
        ),
        (
            "a link's prev_hash not hex",
            |e, _| e.links[1].prev_hash.replace_range(0..1, "g"),
            EvidenceError::BadHex {
                seq: 3,
                field: "prev_hash",
            },
        ),
        (
            "an upper-case signature",
            |e, _| e.checkpoints[0].signature.make_ascii_uppercase(),
            EvidenceError::BadHex {
                seq: 4,
                field: "signature",
            },
        ),
        (
            "an upper-case public key",
            |e, _| e.checkpoints[1].public_key.make_ascii_uppercase(),
            EvidenceError::BadHex {
                seq: 8,
                field: "public_key",
            },
        ),
        (
            "a checkpoint hash not hex, validly signed",
            |e, key| {
                e.checkpoints[0] = sign(key, 4, "zz");
            },
            EvidenceError::BadHex {
                seq: 4,
                field: "checkpoint hash",
            },
        ),
        (
            "a record twice",
            |e, _| {
                let r = e.records[0].clone();
                e.records.push(r);
            },
            EvidenceError::Duplicate { seq: 1 },
        ),
        (
            "a link at a record's seq",
            |e, _| {
                let mut l = e.links[0].clone();
                l.seq = 1;
                l.hash = v2(&l.prev_hash, 1, &l.body_sha256);
                e.links.push(l);
            },
            EvidenceError::Duplicate { seq: 1 },
        ),
        (
            "a record at seq 0",
            |e, _| {
                let mut r = e.records[0].clone();
                r.seq = 0;
                // Below the boundary (1): format 1.
                r.hash = chain_hash_v1(&r.prev_hash, 0, &r.body);
                e.records.push(r);
            },
            EvidenceError::SeqZero,
        ),
        (
            "the format boundary moved past a record",
            |e, _| e.chain_format_2_from = 2,
            EvidenceError::RecordHash { seq: 1 },
        ),
    ];
    for (what, tamper, expected) in cases {
        let mut t = e.clone();
        tamper(&mut t, &key);
        assert_eq!(
            verify_evidence(&t, Some(&pk)).err(),
            Some(expected),
            "{what}"
        );
    }
}

#[test]
fn a_body_that_is_not_an_audit_record_is_found_even_when_it_hashes() {
    let (e, pk, _) = base();
    let mut t = e;
    let r = &mut t.records[0];
    r.body = "{\"stream\":\"nope\"}".into();
    r.hash = chain_hash(&r.prev_hash, 1, &r.body);
    assert!(matches!(
        verify_evidence(&t, Some(&pk)),
        Err(EvidenceError::BadBody { seq: 1, .. })
    ));
}

#[test]
fn the_trusted_key_decides_and_without_one_all_checkpoints_share_a_key() {
    let (e, pk, _) = base();
    let other = SigningKey::from_bytes(&[5; 32]);
    // An attacker re-signs every checkpoint with a key of their own: the
    // evidence is consistent, so only a trusted key tells.
    let mut resigned = e.clone();
    for c in &mut resigned.checkpoints {
        *c = sign(&other, c.seq, &c.hash.clone());
    }
    let report = verify_evidence(&resigned, None).expect("consistent");
    assert_eq!(
        report.public_key,
        hex::encode(other.verifying_key().to_bytes())
    );
    assert_eq!(
        verify_evidence(&resigned, Some(&pk)).err(),
        Some(EvidenceError::CheckpointSignature {
            seq: 4,
            reason: "signed by a key other than the trusted one".into()
        })
    );
    // Mixed keys without a trusted one: the first checkpoint's key rules.
    let mut mixed = e.clone();
    mixed.checkpoints[1] = sign(&other, 8, &mixed.checkpoints[1].hash.clone());
    assert_eq!(
        verify_evidence(&mixed, None).err(),
        Some(EvidenceError::CheckpointSignature {
            seq: 8,
            reason: "signed by a key other than the trusted one".into()
        })
    );
    // A trusted key that is not a key at all.
    let invalid = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .expect("some bytes are no curve point");
    assert_eq!(
        verify_evidence(&e, Some(&invalid)).err(),
        Some(EvidenceError::BadTrustedKey)
    );
    let wrong = other.verifying_key().to_bytes();
    assert!(verify_evidence(&e, Some(&wrong)).is_err());
    assert!(verify_evidence(&e, Some(&pk)).is_ok());
}

#[test]
fn evidence_errors_read_as_sentences() {
    assert_eq!(
        EvidenceError::RecordHash { seq: 3 }.to_string(),
        "record 3 does not hash to its hash (edited)"
    );
    assert_eq!(
        EvidenceError::LinkBeforeFormat2 { seq: 2, from: 5 }.to_string(),
        "link 2 is chained with format 1 (before 5) and cannot be checked without its body"
    );
    assert_eq!(
        EvidenceError::Unsigned { last_seq: 8 }.to_string(),
        "the segment ending at 8 ends at no checkpoint"
    );
}
