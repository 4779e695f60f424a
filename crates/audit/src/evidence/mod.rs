//! Evidence: a tenant's records with the chain links that tie each of them
//! to a signed checkpoint, checkable offline without the database.
//!
//! For every record asked for, [`AuditLog::evidence`](crate::AuditLog::evidence)
//! takes the chain from that record up to the nearest checkpoint at or
//! after it (one *segment*; segments that touch are merged). The records
//! asked for are carried whole (their exact stored body). Every other
//! record of a segment is carried as a *link* only: its `seq`,
//! `prev_hash`, `hash` and `body_sha256`, never its body. That is what
//! chain format 2 is for: `hash = sha256(prev_hash || seq || sha256(body))`
//! can be recomputed from the body's digest alone.
//!
//! Privacy: a link shows that some record existed at that seq, and its
//! body's sha256; nothing else about another tenant's record (not its
//! tenant, stream, time or content). Bodies hold random execution ids and
//! millisecond times, so the digest cannot be matched against guesses.
//! Records chained with format 1 (before migration 3) need their body to
//! be checked, so a segment crossing another tenant's format 1 record
//! cannot be shown: [`AuditError::Unprovable`](crate::AuditError::Unprovable).
//!
//! [`verify_evidence`] is pure: it rehashes every record body with its
//! seq's format, checks every link, the `prev_hash` continuity inside each
//! segment, that each segment ends at a checkpoint with that seq and hash,
//! and each checkpoint's Ed25519 signature. Evidence proves that what it
//! holds is in the signed chain; it cannot prove it holds everything that
//! was asked for, since the evidence itself is not signed.

mod build;
mod check;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::verify::KeySource;

pub use check::verify_evidence;

/// The most entries (records and links) one evidence holds: the chain
/// between a record and its checkpoint can be long on a busy log, so the
/// size is checked before any row is read.
pub const MAX_EVIDENCE_ENTRIES: u64 = 100_000;

/// A tenant's records, the links that tie them to checkpoints, and those
/// checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Records from this seq on are chained with format 2 (body digest);
    /// older ones with format 1 (body).
    pub chain_format_2_from: u64,
    /// The records shown whole, ascending by seq.
    pub records: Vec<EvidenceRecord>,
    /// The other records of the segments, as links only, ascending by seq.
    pub links: Vec<EvidenceLink>,
    /// The checkpoints the segments end at, ascending by seq.
    pub checkpoints: Vec<Checkpoint>,
}

/// A record shown whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    /// Its place in the chain.
    pub seq: u64,
    /// The previous record's hash (lowercase hex).
    pub prev_hash: String,
    /// Its hash (lowercase hex).
    pub hash: String,
    /// The exact stored canonical JSON of the tagged record.
    pub body: String,
}

/// A record shown as its link only (another tenant's, a host-level one, or
/// the tenant's own outside what was asked for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceLink {
    /// Its place in the chain.
    pub seq: u64,
    /// The previous record's hash (lowercase hex).
    pub prev_hash: String,
    /// Its hash (lowercase hex).
    pub hash: String,
    /// The sha256 of its body (lowercase hex).
    pub body_sha256: String,
}

/// What [`verify_evidence`] checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceReport {
    /// Records rehashed from their bodies.
    pub records: u64,
    /// Links checked.
    pub links: u64,
    /// Checkpoint signatures checked.
    pub checkpoints: u64,
    /// Contiguous segments, each ending at a checkpoint.
    pub segments: u64,
    /// The public key (hex) every checkpoint was signed with.
    pub public_key: String,
    /// Where that key came from: [`KeySource::Given`] (the trusted key
    /// passed in) or [`KeySource::CheckpointLines`] (the key the
    /// checkpoints name, which only proves consistency).
    pub key_source: KeySource,
}

/// Why evidence does not verify, naming the seq.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The trusted key passed in is not an Ed25519 public key.
    #[error("the trusted public key is not a valid Ed25519 key")]
    BadTrustedKey,
    /// There is no record: nothing is proven.
    #[error("the evidence holds no record")]
    Empty,
    /// A record or link has seq 0 (the chain starts at 1).
    #[error("seq 0 is not a place in the chain")]
    SeqZero,
    /// A seq appears twice (as records or links).
    #[error("seq {seq} appears twice")]
    Duplicate {
        /// The seq.
        seq: u64,
    },
    /// A hash field is not 64 lowercase hex digits.
    #[error("seq {seq}: {field} is not 64 lowercase hex digits")]
    BadHex {
        /// The seq of the record, link or checkpoint.
        seq: u64,
        /// Which field.
        field: &'static str,
    },
    /// A record's body, seq and prev_hash do not hash to its hash.
    #[error("record {seq} does not hash to its hash (edited)")]
    RecordHash {
        /// The record.
        seq: u64,
    },
    /// A record's body is not an audit record.
    #[error("record {seq}: the body is not an audit record: {reason}")]
    BadBody {
        /// The record.
        seq: u64,
        /// The parse error.
        reason: String,
    },
    /// A link's body digest, seq and prev_hash do not hash to its hash.
    #[error("link {seq} does not hash to its hash (edited)")]
    LinkHash {
        /// The link.
        seq: u64,
    },
    /// A link below the format 2 boundary: a format 1 hash cannot be
    /// checked without the body.
    #[error(
        "link {seq} is chained with format 1 (before {from}) and cannot be checked without its body"
    )]
    LinkBeforeFormat2 {
        /// The link.
        seq: u64,
        /// The boundary.
        from: u64,
    },
    /// A record's or link's prev_hash is not the previous one's hash.
    #[error("seq {seq}: prev_hash is not the hash of the seq before it")]
    Broken {
        /// The record or link.
        seq: u64,
    },
    /// A segment starts with a link, not a record (a record was removed?).
    #[error("the segment starting at {seq} starts with a link, not a record")]
    StartsWithLink {
        /// The link.
        seq: u64,
    },
    /// A segment ends at a seq no checkpoint signs.
    #[error("the segment ending at {last_seq} ends at no checkpoint")]
    Unsigned {
        /// The segment's last seq.
        last_seq: u64,
    },
    /// A checkpoint's seq is in no segment.
    #[error("checkpoint {seq} signs a seq that no segment reaches")]
    CheckpointOutside {
        /// The checkpoint's seq.
        seq: u64,
    },
    /// A checkpoint signs a hash other than the chain's at its seq.
    #[error("checkpoint {seq} signs a hash the chain does not have at this seq")]
    CheckpointHash {
        /// The checkpoint's seq.
        seq: u64,
    },
    /// A checkpoint's signature does not verify (or is by another key).
    #[error("checkpoint {seq}: {reason}")]
    CheckpointSignature {
        /// The checkpoint's seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}
