//! Offline verification of evidence: pure, no database, no files.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::VerifyingKey;

use super::{Evidence, EvidenceError, EvidenceReport};
use crate::canon::{ChainFormat, chain_hash_digest, decode_hash};
use crate::checkpoint::parse_public_key;
use crate::record::AuditRecord;
use crate::verify::KeySource;

/// One place in the chain, as the evidence claims it.
struct Place {
    prev: [u8; 32],
    hash: [u8; 32],
    /// A record shown whole (else a link).
    whole: bool,
}

/// Checks evidence on its own: every record body rehashed with its seq's
/// format and parsed as an [`AuditRecord`], every link rehashed from its
/// body digest, `prev_hash` continuity inside each contiguous segment,
/// each segment starting with a whole record and ending at a checkpoint
/// that signs its seq and hash, and every checkpoint's signature: against
/// `trusted_key` when given, else against the key the first checkpoint
/// names (then every other checkpoint must name the same key). Hex fields
/// must be lowercase, so that no byte of them can change unnoticed.
pub fn verify_evidence(
    e: &Evidence,
    trusted_key: Option<&[u8; 32]>,
) -> Result<EvidenceReport, EvidenceError> {
    let trusted = trusted_key
        .map(|b| VerifyingKey::from_bytes(b).map_err(|_| EvidenceError::BadTrustedKey))
        .transpose()?;
    if e.records.is_empty() {
        return Err(EvidenceError::Empty);
    }
    let chain = places(e)?;
    let segments = segments(&chain)?;
    let key_source = match trusted {
        Some(_) => KeySource::Given,
        None => KeySource::CheckpointLines,
    };
    let mut key = trusted;
    let mut signed = BTreeSet::new();
    for c in &e.checkpoints {
        lower_hex(c.seq, "public_key", &c.public_key, 32)?;
        lower_hex(c.seq, "signature", &c.signature, 64)?;
        c.check(key.as_ref())
            .map_err(|reason| EvidenceError::CheckpointSignature { seq: c.seq, reason })?;
        // Without a trusted key the first checkpoint's key is the one all
        // must share: evidence mixing keys proves nothing consistent.
        key = key.or_else(|| parse_public_key(&c.public_key));
        let signs = hash32(c.seq, "checkpoint hash", &c.hash)?;
        let place = chain
            .get(&c.seq)
            .ok_or(EvidenceError::CheckpointOutside { seq: c.seq })?;
        if place.hash != signs {
            return Err(EvidenceError::CheckpointHash { seq: c.seq });
        }
        signed.insert(c.seq);
    }
    for &(_, last_seq) in &segments {
        if !signed.contains(&last_seq) {
            return Err(EvidenceError::Unsigned { last_seq });
        }
    }
    Ok(EvidenceReport {
        records: e.records.len() as u64,
        links: e.links.len() as u64,
        checkpoints: e.checkpoints.len() as u64,
        segments: segments.len() as u64,
        public_key: key.map_or_else(String::new, |k| hex::encode(k.as_bytes())),
        key_source,
    })
}

/// Every record and link, each checked against its own hash.
fn places(e: &Evidence) -> Result<BTreeMap<u64, Place>, EvidenceError> {
    let format = ChainFormat {
        format_2_from: Some(e.chain_format_2_from),
    };
    let mut chain = BTreeMap::new();
    for r in &e.records {
        let prev = hash32(r.seq, "prev_hash", &r.prev_hash)?;
        let hash = hash32(r.seq, "hash", &r.hash)?;
        if format.hash(&prev, r.seq, &r.body) != hash {
            return Err(EvidenceError::RecordHash { seq: r.seq });
        }
        serde_json::from_str::<AuditRecord>(&r.body).map_err(|err| EvidenceError::BadBody {
            seq: r.seq,
            reason: err.to_string(),
        })?;
        insert(&mut chain, r.seq, prev, hash, true)?;
    }
    for l in &e.links {
        if !format.is_digest(l.seq) {
            return Err(EvidenceError::LinkBeforeFormat2 {
                seq: l.seq,
                from: e.chain_format_2_from,
            });
        }
        let prev = hash32(l.seq, "prev_hash", &l.prev_hash)?;
        let hash = hash32(l.seq, "hash", &l.hash)?;
        let digest = hash32(l.seq, "body_sha256", &l.body_sha256)?;
        if chain_hash_digest(&prev, l.seq, &digest) != hash {
            return Err(EvidenceError::LinkHash { seq: l.seq });
        }
        insert(&mut chain, l.seq, prev, hash, false)?;
    }
    Ok(chain)
}

fn insert(
    chain: &mut BTreeMap<u64, Place>,
    seq: u64,
    prev: [u8; 32],
    hash: [u8; 32],
    whole: bool,
) -> Result<(), EvidenceError> {
    if seq == 0 {
        return Err(EvidenceError::SeqZero);
    }
    let place = Place { prev, hash, whole };
    match chain.insert(seq, place) {
        None => Ok(()),
        Some(_) => Err(EvidenceError::Duplicate { seq }),
    }
}

/// The contiguous runs of seqs as (first, last), each starting with a
/// whole record and linked inside.
fn segments(chain: &BTreeMap<u64, Place>) -> Result<Vec<(u64, u64)>, EvidenceError> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut before: Option<(u64, [u8; 32])> = None;
    for (&seq, place) in chain {
        match (before, out.last_mut()) {
            (Some((s, hash)), Some(run)) if s.checked_add(1) == Some(seq) => {
                if place.prev != hash {
                    return Err(EvidenceError::Broken { seq });
                }
                run.1 = seq;
            }
            _ if !place.whole => return Err(EvidenceError::StartsWithLink { seq }),
            _ => out.push((seq, seq)),
        }
        before = Some((seq, place.hash));
    }
    Ok(out)
}

fn lower_hex(seq: u64, field: &'static str, s: &str, bytes: usize) -> Result<(), EvidenceError> {
    let lower = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if s.len() == 2 * bytes && s.bytes().all(lower) {
        Ok(())
    } else {
        Err(EvidenceError::BadHex { seq, field })
    }
}

fn hash32(seq: u64, field: &'static str, s: &str) -> Result<[u8; 32], EvidenceError> {
    lower_hex(seq, field, s, 32)?;
    decode_hash(s).ok_or(EvidenceError::BadHex { seq, field })
}
