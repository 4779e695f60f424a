//! The audit log of aifn: every invocation attempt and every registry
//! action, recorded durably and tamper-evidently.
//!
//! Place in the pipeline: the runtime runs a call and reports its outcome,
//! the service decides and orchestrates, and **audit** records what
//! happened: `runtime → service → audit`. Compliance asks it "who ran
//! what, on whose behalf, with what result"; `aifn audit verify` asks it
//! whether anyone has rewritten that answer.
//!
//! Durability: [`AuditLog::record_execution`] and friends return only once
//! the record is committed in SQLite (WAL, `synchronous=FULL`). One writer
//! thread owns the write connection; callers queue (bounded) and the writer
//! commits whatever is queued in one transaction (group commit), so one
//! fsync serves many callers. A failed commit fails every caller of that
//! batch, writes nothing, and makes [`AuditLog::is_healthy`] false so the
//! service can stop running functions (fail closed).
//! [`AuditLog::submit_execution`] queues a record and returns a [`Pending`]
//! that resolves after the commit. Callers can block on it or await it, so
//! an async server holds no thread while the commit fsyncs.
//!
//! Tamper evidence: ONE global hash chain across all tenants and streams,
//! `hash = sha256(prev_hash || seq as u64 big-endian || sha256(body))`
//! where body is the canonical JSON (sorted keys, no whitespace) of the
//! tagged record (chain format 2). Records appended before migration 3
//! keep format 1, `sha256(prev_hash || seq || body)`; the database holds
//! the boundary (`chain_format_2_from`, the first format 2 seq) and
//! [`verify`] checks each record with its format. Format 2 lets a record's
//! link be checked from its body's digest alone, so [`Evidence`] can tie a
//! tenant's records to a signed checkpoint showing other tenants' records
//! as links only (seq, hashes, body digest), never their bodies.
//! Global rather than per tenant because there is one writer and so one
//! order anyway, and because any deletion anywhere then breaks the chain:
//! per-tenant chains could each be truncated without the others noticing.
//! Tenant isolation is enforced by queries, not by the chain. The chain head
//! is signed with an Ed25519 key kept outside the database (checkpoints,
//! JSON lines in their own file), so rewriting the database and recomputing
//! every hash is still detected; [`verify`] reports the first problem.
//!
//! Retention: [`AuditLog::prune`] deletes a prefix of the chain and appends
//! a `system` record naming the anchor (the last deleted seq and hash);
//! verification starts there. Raw payloads are never chained; an opt-in
//! [`Captured`] copy lives in a separate table until it expires.

mod ack;
mod backend;
mod canon;
mod checkpoint;
mod commit;
mod error;
mod evidence;
mod log;
mod postgres;
mod prepare;
mod query;
mod record;
mod sqlite;
mod store;
mod summary;
mod verify;
mod writer;

pub use ack::Pending;
pub use checkpoint::Checkpoint;
pub use error::AuditError;
pub use evidence::{
    Evidence, EvidenceError, EvidenceLink, EvidenceRecord, EvidenceReport, MAX_EVIDENCE_ENTRIES,
    verify_evidence,
};
pub use log::{Appended, AuditConfig, AuditLog, AuditStats, PruneReport};
pub use query::{AuditPage, AuditQuery, DEFAULT_PAGE, MAX_PAGE, SecurityQuery};
pub use record::{
    AuditEntry, AuditRecord, Captured, ExecutionRecord, RegistryRecord, SecurityEvent,
    SecurityReason, StoredCapture, Stream, SystemEvent, SystemRecord,
};
pub use summary::summarize_input;
pub use verify::{Finding, KeySource, VerifyReport, verify};
