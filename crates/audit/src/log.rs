//! The handle the service holds: records, queries, checkpoints, retention.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use aifn_types::{OutcomeKind, RegistryAction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AuditError;
use crate::ack::{self, Pending};
use crate::canon::canonical_json;
use crate::checkpoint::{Checkpoint, CheckpointFile, last_checkpoint, load_or_create_key};
use crate::record::{
    self, AuditEntry, AuditRecord, Captured, ExecutionRecord, NewEntry, SecurityEvent,
    StoredCapture, Stream,
};
use crate::sqlite::SqliteStore;
use crate::store::{AuditStore, Filter, StoredRow};
use crate::timefmt;
use crate::writer::{Msg, Reply, Shared, Writer};

/// Where the log keeps its files and how it batches and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The SQLite database.
    pub db_path: PathBuf,
    /// The checkpoint file (JSON lines).
    pub checkpoint_path: PathBuf,
    /// The Ed25519 signing key (created with mode 0600 if missing). Keep it
    /// off the machine that stores backups of the database.
    pub signing_key_path: PathBuf,
    /// This host's name, written into every record.
    pub node: String,
    /// Checkpoint after this many records (0: never by count).
    pub checkpoint_every_records: u64,
    /// Checkpoint this often if anything was appended (zero: never by time).
    pub checkpoint_interval: Duration,
    /// Most records in one commit.
    pub max_batch: usize,
    /// Most records waiting for the writer; callers block beyond it.
    pub queue_capacity: usize,
    /// Cap on the database file size; past it commits fail as on a full
    /// disk (the log reports unhealthy) until records are pruned.
    pub max_db_bytes: Option<u64>,
}

impl AuditConfig {
    /// `audit.sqlite3`, `audit-checkpoints.jsonl` and `audit-signing.key` in
    /// `data_dir`; a checkpoint every 1000 records or 60 seconds; batches of
    /// up to 256; a queue of 4096.
    pub fn in_dir(data_dir: &Path, node: &str) -> AuditConfig {
        AuditConfig {
            db_path: data_dir.join("audit.sqlite3"),
            checkpoint_path: data_dir.join("audit-checkpoints.jsonl"),
            signing_key_path: data_dir.join("audit-signing.key"),
            node: node.to_owned(),
            checkpoint_every_records: 1000,
            checkpoint_interval: Duration::from_secs(60),
            max_batch: 256,
            queue_capacity: 4096,
            max_db_bytes: None,
        }
    }
}

/// Where a record landed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// Its seq.
    pub seq: u64,
    /// Its hash (lowercase hex).
    pub hash: String,
}

/// Counters since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStats {
    /// Records committed.
    pub records: u64,
    /// Successful commits (each one fsync); fewer than `records` when
    /// callers were batched together.
    pub commits: u64,
    /// Commits that failed (their records were not written).
    pub failed_commits: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
}

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Records deleted.
    pub pruned: u64,
    /// The chain now starts after this seq.
    pub anchor_seq: u64,
    /// The hash of `anchor_seq`.
    pub anchor_hash: String,
    /// Captured payloads deleted (of pruned records, or expired).
    pub captures_expired: u64,
    /// The `system` record that says so.
    pub record: Appended,
}

/// A tenant's view of the log: its `execution` and `registry` records.
/// `agent_id`, `user_id` and `outcome` only match execution records;
/// `function` also matches registry actions on that function's versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// The tenant; required, from the caller's credentials.
    pub tenant_id: String,
    /// `execution` or `registry`; both when `None`.
    pub stream: Option<Stream>,
    /// Function name.
    pub function: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Outcome kind.
    pub outcome: Option<OutcomeKind>,
    /// Records at or after this time.
    pub since: Option<SystemTime>,
    /// Records before this time.
    pub until: Option<SystemTime>,
    /// Records with a smaller seq (the cursor of the next page).
    pub before_seq: Option<u64>,
    /// Page size: 50 when `None`, at most 1000. Ignored by export.
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Everything of one tenant, newest first.
    pub fn for_tenant(tenant_id: impl Into<String>) -> AuditQuery {
        AuditQuery {
            tenant_id: tenant_id.into(),
            ..AuditQuery::default()
        }
    }
}

/// The host-level view: the `security` and `system` streams (no tenant).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityQuery {
    /// `security` or `system`; both when `None`.
    pub stream: Option<Stream>,
    /// Records at or after this time.
    pub since: Option<SystemTime>,
    /// Records before this time.
    pub until: Option<SystemTime>,
    /// Records with a smaller seq.
    pub before_seq: Option<u64>,
    /// Page size: 50 when `None`, at most 1000. Ignored by export.
    pub limit: Option<usize>,
}

/// One page of a query, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The records.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before_seq` for the next page; `None` on the last page.
    pub next_before_seq: Option<u64>,
}

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
const EXPORT_CHUNK: usize = 500;
const IDLE_READERS: usize = 4;

/// The audit log. Cheap to clone; every clone talks to the same writer.
/// The writer stops on [`AuditLog::close`] or when the last clone drops.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    node: String,
    db_path: PathBuf,
    readers: Mutex<Vec<SqliteStore>>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("db_path", &self.inner.db_path)
            .field("node", &self.inner.node)
            .field("healthy", &self.is_healthy())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these values half-updated.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn create_parent(path: &Path) -> Result<(), AuditError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, "create directory", e))
        }
        _ => Ok(()),
    }
}

impl AuditLog {
    /// Opens (creating if needed) the database, key and checkpoint file and
    /// starts the writer. Refuses a database that is behind or disagrees
    /// with the last checkpoint, since appending would fork the chain.
    pub fn open(cfg: AuditConfig) -> Result<AuditLog, AuditError> {
        for p in [&cfg.db_path, &cfg.checkpoint_path, &cfg.signing_key_path] {
            create_parent(p)?;
        }
        let key = load_or_create_key(&cfg.signing_key_path)?;
        let mut store = SqliteStore::open_writer(&cfg.db_path, cfg.max_db_bytes)?;
        let head = store.head()?;
        let db_seq = head.as_ref().map_or(0, |h| h.0);
        let last = last_checkpoint(&cfg.checkpoint_path)?;
        if let Some(c) = &last {
            let mismatch = |reason: &str| AuditError::CheckpointMismatch {
                path: cfg.checkpoint_path.clone(),
                db_seq,
                checkpoint_seq: c.seq,
                reason: reason.to_owned(),
            };
            if c.seq > db_seq {
                return Err(mismatch(
                    "the database is behind its last checkpoint (truncated or restored?)",
                ));
            }
            if c.seq > 0 {
                // Below the first row (pruned) there is nothing to compare.
                if let Some(h) = store.hash_at(c.seq)?
                    && !h.eq_ignore_ascii_case(&c.hash)
                {
                    return Err(mismatch(
                        "the record at the checkpoint has a different hash",
                    ));
                }
            }
        }
        let checkpoints = CheckpointFile::open(&cfg.checkpoint_path)?;
        let shared = Arc::new(Shared::new());
        let writer = Writer {
            store,
            db_path: cfg.db_path.clone(),
            key,
            checkpoints,
            node: cfg.node.clone(),
            every_records: cfg.checkpoint_every_records,
            interval: cfg.checkpoint_interval,
            max_batch: cfg.max_batch.max(1),
            shared: shared.clone(),
            last_checkpoint_seq: last.map_or(0, |c| c.seq),
            since_checkpoint: 0,
        };
        let (tx, rx) = mpsc::sync_channel(cfg.queue_capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("aifn-audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::io(&cfg.db_path, "start writer thread", e))?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                tx,
                shared,
                writer: Mutex::new(Some(handle)),
                node: cfg.node,
                db_path: cfg.db_path,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Result<T, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.inner
            .tx
            .send(make(reply))
            .map_err(|_| AuditError::Closed)?;
        answer.recv().unwrap_or(Err(AuditError::Closed))
    }

    fn submit(&self, entry: Result<NewEntry, AuditError>) -> Pending {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return Pending::ready(Err(e)),
        };
        let (ack, pending) = ack::pair();
        // A failed send drops the message and with it the ack: Closed.
        let _ = self.inner.tx.send(Msg::Append {
            entry: Box::new(entry),
            reply: ack,
        });
        pending
    }

    /// Records an invocation attempt; returns once it is durable. `node` is
    /// set from the config. `capture` (opt-in, from the manifest) keeps
    /// the raw payloads outside the chain until they expire.
    pub fn record_execution(
        &self,
        rec: ExecutionRecord,
        capture: Option<Captured>,
    ) -> Result<Appended, AuditError> {
        self.submit_execution(rec, capture).wait()
    }

    /// [`AuditLog::record_execution`] without the wait: queues the record
    /// and returns what resolves once it is durable (block on it or await
    /// it). The caller must not answer before it resolves `Ok`.
    pub fn submit_execution(&self, rec: ExecutionRecord, capture: Option<Captured>) -> Pending {
        self.submit(record::prepare_execution(rec, &self.inner.node, capture))
    }

    /// Records a registry action (timestamped now); returns once durable.
    pub fn record_registry(&self, action: &RegistryAction) -> Result<Appended, AuditError> {
        self.submit(record::prepare_registry(action, &self.inner.node))
            .wait()
    }

    /// Records an unauthenticated attempt in the host-level `security`
    /// stream; returns once durable.
    pub fn record_security(&self, ev: SecurityEvent) -> Result<Appended, AuditError> {
        self.submit(record::prepare_security(ev, &self.inner.node))
            .wait()
    }

    /// Signs and appends a checkpoint of the current head, now.
    pub fn checkpoint(&self) -> Result<Checkpoint, AuditError> {
        self.call(|reply| Msg::Checkpoint { reply })
    }

    /// Deletes the oldest records, up to the first one at or after
    /// `older_than` (only a prefix, so the chain stays contiguous), with
    /// their captures and any expired captures, and appends a `system`
    /// record naming the new anchor. Then checkpoints.
    pub fn prune(&self, older_than: SystemTime, actor: &str) -> Result<PruneReport, AuditError> {
        let actor = actor.to_owned();
        self.call(|reply| Msg::Prune {
            cutoff: older_than,
            actor,
            reply,
        })
    }

    /// False while the log cannot write (the last commit or checkpoint
    /// failed, or it is closed). The service refuses to run functions then.
    /// It turns true again with the next successful commit.
    pub fn is_healthy(&self) -> bool {
        self.inner.shared.healthy()
    }

    /// Counters since open.
    pub fn stats(&self) -> AuditStats {
        self.inner.shared.stats()
    }

    /// Flushes what is queued, writes a final checkpoint and stops the
    /// writer. Later calls fail with [`AuditError::Closed`]. Idempotent.
    pub fn close(&self) -> Result<(), AuditError> {
        self.inner.shutdown()
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut SqliteStore) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let idle = lock(&self.inner.readers).pop();
        let mut store = match idle {
            Some(s) => s,
            None => SqliteStore::open_reader(&self.inner.db_path)?,
        };
        let result = f(&mut store);
        // A connection that failed may be mid-transaction; drop it.
        if result.is_ok() {
            let mut idle = lock(&self.inner.readers);
            if idle.len() < IDLE_READERS {
                idle.push(store);
            }
        }
        result
    }

    /// One page of a tenant's records, newest first. Never returns another
    /// tenant's records.
    pub fn query(&self, q: &AuditQuery) -> Result<AuditPage, AuditError> {
        let filter = tenant_filter(q)?;
        self.page(filter, Some(&q.tenant_id))
    }

    /// One page of the host-level `security` and `system` records.
    pub fn query_security(&self, q: &SecurityQuery) -> Result<AuditPage, AuditError> {
        self.page(host_filter(q)?, None)
    }

    fn page(&self, mut filter: Filter, tenant: Option<&str>) -> Result<AuditPage, AuditError> {
        let limit = filter.limit;
        filter.limit = limit + 1;
        let mut rows = self.with_reader(|s| s.select(&filter))?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let entries = rows
            .iter()
            .map(|r| to_entry(r, tenant))
            .collect::<Result<Vec<_>, _>>()?;
        let next_before_seq = if more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_before_seq,
        })
    }

    /// Writes every record of a tenant matching `q` (all pages, `limit`
    /// ignored) as JSON lines, oldest first: the record's fields plus
    /// `seq`, `stream`, `hash` and `prev_hash`, keys sorted. Returns the
    /// number of lines. Removing `seq`, `hash` and `prev_hash` from a line
    /// gives the chained body back.
    pub fn export_jsonl(&self, q: &AuditQuery, out: &mut dyn Write) -> Result<u64, AuditError> {
        let filter = tenant_filter(q)?;
        self.export(filter, Some(&q.tenant_id), out)
    }

    /// [`AuditLog::export_jsonl`] for the host-level streams.
    pub fn export_security_jsonl(
        &self,
        q: &SecurityQuery,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        self.export(host_filter(q)?, None, out)
    }

    fn export(
        &self,
        mut filter: Filter,
        tenant: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        filter.ascending = true;
        filter.limit = EXPORT_CHUNK;
        self.with_reader(|store| {
            store.begin_snapshot()?;
            let mut n = 0u64;
            loop {
                let rows = store.select(&filter)?;
                for row in &rows {
                    let mut line = export_line(row, tenant)?;
                    line.push('\n');
                    out.write_all(line.as_bytes())
                        .map_err(|e| AuditError::io(Path::new("<export>"), "write export", e))?;
                    n += 1;
                }
                match rows.last() {
                    Some(last) if rows.len() == EXPORT_CHUNK => filter.after_seq = Some(last.seq),
                    _ => break,
                }
            }
            store.end_snapshot()?;
            Ok(n)
        })
    }

    /// The captured payload of an execution in a tenant, if it was
    /// captured and has not expired.
    pub fn captured(
        &self,
        tenant_id: &str,
        execution_id: &str,
    ) -> Result<Option<StoredCapture>, AuditError> {
        self.with_reader(|s| s.capture(tenant_id, execution_id))
    }
}

impl Inner {
    fn shutdown(&self) -> Result<(), AuditError> {
        let Some(handle) = lock(&self.writer).take() else {
            return Ok(());
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let result = match self.tx.send(Msg::Close { reply }) {
            Ok(()) => answer.recv().unwrap_or(Err(AuditError::Closed)),
            Err(_) => Err(AuditError::Closed),
        };
        let _ = handle.join();
        self.shared
            .running
            .store(false, std::sync::atomic::Ordering::Release);
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn bad_query(reason: impl Into<String>) -> AuditError {
    AuditError::InvalidQuery {
        reason: reason.into(),
    }
}

fn limit_of(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

fn ms_of(t: Option<SystemTime>, what: &str) -> Result<Option<i64>, AuditError> {
    t.map(|t| timefmt::to_ms(t).map_err(|e| bad_query(format!("{what}: {e}"))))
        .transpose()
}

fn tenant_filter(q: &AuditQuery) -> Result<Filter, AuditError> {
    if q.tenant_id.is_empty() {
        return Err(bad_query("tenant_id is required"));
    }
    let streams = match q.stream {
        None => vec![Stream::Execution, Stream::Registry],
        Some(s @ (Stream::Execution | Stream::Registry)) => vec![s],
        Some(s) => {
            return Err(bad_query(format!(
                "the {} stream is host-level, not a tenant's",
                s.as_str()
            )));
        }
    };
    Ok(Filter {
        tenant: Some(q.tenant_id.clone()),
        streams,
        function: q.function.clone(),
        agent_id: q.agent_id.clone(),
        user_id: q.user_id.clone(),
        outcome: q.outcome,
        since_ms: ms_of(q.since, "since")?,
        until_ms: ms_of(q.until, "until")?,
        before_seq: q.before_seq,
        after_seq: None,
        limit: limit_of(q.limit),
        ascending: false,
    })
}

fn host_filter(q: &SecurityQuery) -> Result<Filter, AuditError> {
    let streams = match q.stream {
        None => vec![Stream::Security, Stream::System],
        Some(s @ (Stream::Security | Stream::System)) => vec![s],
        Some(s) => {
            return Err(bad_query(format!(
                "the {} stream belongs to tenants",
                s.as_str()
            )));
        }
    };
    Ok(Filter {
        tenant: None,
        streams,
        since_ms: ms_of(q.since, "since")?,
        until_ms: ms_of(q.until, "until")?,
        before_seq: q.before_seq,
        limit: limit_of(q.limit),
        ..Filter::default()
    })
}

fn corrupt(seq: u64, reason: impl Into<String>) -> AuditError {
    AuditError::Corrupt {
        seq,
        reason: reason.into(),
    }
}

/// Parses a stored row and re-checks its tenant against the body, so an
/// edited index column cannot leak a record to another tenant.
fn to_entry(row: &StoredRow, tenant: Option<&str>) -> Result<AuditEntry, AuditError> {
    let body = row
        .body
        .as_deref()
        .ok_or_else(|| corrupt(row.seq, "body is not text"))?;
    let record: AuditRecord =
        serde_json::from_str(body).map_err(|e| corrupt(row.seq, format!("body: {e}")))?;
    if record.tenant_id() != tenant {
        return Err(corrupt(row.seq, "body's tenant does not match its index"));
    }
    Ok(AuditEntry {
        seq: row.seq,
        prev_hash: row.prev_hash.clone().unwrap_or_default(),
        hash: row.hash.clone().unwrap_or_default(),
        record,
    })
}

fn export_line(row: &StoredRow, tenant: Option<&str>) -> Result<String, AuditError> {
    let body = row
        .body
        .as_deref()
        .ok_or_else(|| corrupt(row.seq, "body is not text"))?;
    let mut v: Value =
        serde_json::from_str(body).map_err(|e| corrupt(row.seq, format!("body: {e}")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| corrupt(row.seq, "body is not an object"))?;
    if obj.get("tenant_id").and_then(Value::as_str) != tenant {
        return Err(corrupt(row.seq, "body's tenant does not match its index"));
    }
    obj.insert("seq".into(), row.seq.into());
    obj.insert("hash".into(), row.hash.clone().unwrap_or_default().into());
    obj.insert(
        "prev_hash".into(),
        row.prev_hash.clone().unwrap_or_default().into(),
    );
    Ok(canonical_json(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<AuditLog>();
    }

    #[test]
    fn queries_are_bounded_and_scoped() {
        assert_eq!(limit_of(None), 50);
        assert_eq!(limit_of(Some(0)), 1);
        assert_eq!(limit_of(Some(5000)), 1000);
        let q = SecurityQuery {
            stream: Some(Stream::Execution),
            ..SecurityQuery::default()
        };
        assert!(matches!(
            host_filter(&q),
            Err(AuditError::InvalidQuery { .. })
        ));
        let f = tenant_filter(&AuditQuery::for_tenant("t")).expect("valid");
        assert_eq!(f.streams, [Stream::Execution, Stream::Registry]);
        assert_eq!(f.tenant.as_deref(), Some("t"));
    }
}
