//! The storage boundary. Everything SQL lives behind [`AuditStore`]; the
//! chain rules (hashing, anchors) live outside it, so a PostgreSQL backend
//! only has to move rows.

use aifn_types::OutcomeKind;

use crate::canon::ChainFormat;
use crate::prepare::{IndexCols, NewEntry};
use crate::record::{StoredCapture, Stream};
use crate::{Appended, AuditError};

/// One stored row, read leniently: a column of the wrong type makes the
/// row `malformed` (a verify finding) instead of an error.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub(crate) seq: u64,
    pub(crate) cols: Option<IndexCols>,
    pub(crate) body: Option<String>,
    pub(crate) prev_hash: Option<String>,
    pub(crate) hash: Option<String>,
}

/// What a prune found, handed to the builder of its `system` record.
#[derive(Debug, Clone)]
pub(crate) struct PruneFacts {
    pub(crate) pruned: u64,
    pub(crate) anchor_seq: u64,
    pub(crate) anchor_hash: String,
    pub(crate) captures_expired: u64,
}

/// A row filter. `tenant: None` selects host-level rows (no tenant).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub(crate) tenant: Option<String>,
    pub(crate) streams: Vec<Stream>,
    pub(crate) function: Option<String>,
    pub(crate) agent_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) execution_id: Option<String>,
    pub(crate) since_ms: Option<i64>,
    pub(crate) until_ms: Option<i64>,
    pub(crate) before_seq: Option<u64>,
    pub(crate) after_seq: Option<u64>,
    pub(crate) limit: usize,
    pub(crate) ascending: bool,
}

/// The operations the log needs from a database.
pub(crate) trait AuditStore: Send {
    /// Appends `entries` after the current head in ONE durable transaction,
    /// chaining them as it goes; all or nothing.
    fn append(&mut self, entries: &[NewEntry]) -> Result<Vec<Appended>, AuditError>;

    /// In one transaction: deletes the longest prefix of records older than
    /// `cutoff_ms` (and their captures), expires captures due at `now_ms`,
    /// and appends the record `make` builds from what was done.
    fn prune(
        &mut self,
        cutoff_ms: i64,
        now_ms: i64,
        make: &mut dyn FnMut(&PruneFacts) -> Result<NewEntry, AuditError>,
    ) -> Result<(PruneFacts, Appended), AuditError>;

    /// Deletes captured payloads expired at `now_ms`; returns how many.
    fn expire_captures(&mut self, now_ms: i64) -> Result<u64, AuditError>;

    /// How records are chained (format 2 from which seq).
    fn format(&self) -> ChainFormat;

    /// The last record's seq and hash.
    fn head(&mut self) -> Result<Option<(u64, String)>, AuditError>;

    /// The lowest and highest seq present.
    fn bounds(&mut self) -> Result<Option<(u64, u64)>, AuditError>;

    /// The stored hash at `seq`, if that row exists.
    fn hash_at(&mut self, seq: u64) -> Result<Option<String>, AuditError>;

    /// The newest row of a stream.
    fn latest(&mut self, stream: Stream) -> Result<Option<StoredRow>, AuditError>;

    /// Up to `limit` rows with seq > `after_seq`, ascending.
    fn scan(&mut self, after_seq: u64, limit: usize) -> Result<Vec<StoredRow>, AuditError>;

    /// Rows matching `f`.
    fn select(&mut self, f: &Filter) -> Result<Vec<StoredRow>, AuditError>;

    /// The newest captured payload of an execution in a tenant.
    fn capture(
        &mut self,
        tenant_id: &str,
        execution_id: &str,
    ) -> Result<Option<StoredCapture>, AuditError>;

    /// Starts a read snapshot: reads until `end_snapshot` see one state.
    fn begin_snapshot(&mut self) -> Result<(), AuditError>;

    /// Ends the read snapshot.
    fn end_snapshot(&mut self) -> Result<(), AuditError>;
}
