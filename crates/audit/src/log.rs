//! The handle the service holds: records, queries, checkpoints, retention.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aifn_types::{DatabaseUrl, RegistryAction, Timestamp};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::ack::{self, Pending};
use crate::backend::Backend;
use crate::checkpoint::{Checkpoint, CheckpointFile, last_checkpoint, load_or_create_key};
use crate::commit::Committer;
use crate::prepare::{self, NewEntry};
use crate::record::{Captured, ExecutionRecord, SecurityEvent, StoredCapture};
use crate::store::AuditStore;
use crate::writer::{Shared, Writer};

/// Idle read connections kept for queries.
const IDLE_READERS: usize = 4;

/// Where the log keeps its files and how it batches and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The SQLite database (unused when `postgres` is set).
    pub db_path: PathBuf,
    /// The shared PostgreSQL database of a fleet. When set, every node's
    /// records go there, into one chain; checkpoints and the signing key
    /// stay in each node's files.
    pub postgres: Option<DatabaseUrl>,
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
            postgres: None,
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

/// The audit log. Cheap to clone; every clone talks to the same writer.
/// The writer stops on [`AuditLog::close`] or when the last clone drops.
#[derive(Clone)]
pub struct AuditLog {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    committer: Arc<Committer>,
    shared: Arc<Shared>,
    node: String,
    backend: Backend,
    pub(crate) checkpoint_path: PathBuf,
    /// The public half of the signing key: evidence only uses checkpoints
    /// this log signed with its current key.
    pub(crate) public_key: VerifyingKey,
    readers: Pool<Box<dyn AuditStore>>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("database", &self.inner.backend.describe())
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
        // `create_dir_all("")` (a bare file name's parent) does nothing.
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, "create directory", e))
        }
        None => Ok(()),
    }
}

impl AuditLog {
    /// Opens (creating if needed) the database, key and checkpoint file and
    /// starts the writer. Refuses a database that is behind or disagrees
    /// with the last checkpoint, since appending would fork the chain.
    pub fn open(cfg: AuditConfig) -> Result<AuditLog, AuditError> {
        let backend = Backend::of(&cfg);
        if let Backend::Sqlite { path, .. } = &backend {
            create_parent(path)?;
        }
        for p in [&cfg.checkpoint_path, &cfg.signing_key_path] {
            create_parent(p)?;
        }
        let key = load_or_create_key(&cfg.signing_key_path)?;
        let public_key = key.verifying_key();
        let mut store = backend.open_writer()?;
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
            // Below the first row (pruned, or seq 0 of an empty log) there
            // is nothing to compare.
            if let Some(h) = store.hash_at(c.seq)?
                && !h.eq_ignore_ascii_case(&c.hash)
            {
                return Err(mismatch(
                    "the record at the checkpoint has a different hash",
                ));
            }
        }
        let checkpoints = CheckpointFile::open(&cfg.checkpoint_path)?;
        let shared = Arc::new(Shared::new());
        let writer = Writer {
            store,
            database: backend.describe(),
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
        let committer = Committer::start(writer, cfg.queue_capacity)
            .map_err(|e| AuditError::io(&cfg.checkpoint_path, "start writer thread", e))?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                committer,
                shared,
                node: cfg.node,
                backend,
                checkpoint_path: cfg.checkpoint_path,
                public_key,
                readers: Pool::new(IDLE_READERS),
            }),
        })
    }

    /// Applies the audit schema's migrations to a fleet's database and
    /// returns (`aifn migrate`); nodes also migrate when they start.
    pub fn migrate_postgres(url: &DatabaseUrl) -> Result<(), AuditError> {
        Backend::Postgres(url.clone()).open_writer().map(drop)
    }

    fn submit(&self, entry: Result<NewEntry, AuditError>) -> Pending {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return Pending::ready(Err(e)),
        };
        let (ack, pending) = ack::pair();
        // Commits here when nothing else is committing; a closed log drops
        // the ack, which answers `Closed`.
        self.inner.committer.submit(entry, ack);
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
        self.submit(prepare::prepare_execution(rec, &self.inner.node, capture))
    }

    /// Records a registry action (timestamped now); returns once durable.
    pub fn record_registry(&self, action: &RegistryAction) -> Result<Appended, AuditError> {
        self.submit(prepare::prepare_registry(
            action,
            &self.inner.node,
            Timestamp::now(),
        ))
        .wait()
    }

    /// Records an unauthenticated attempt in the host-level `security`
    /// stream; returns once durable.
    pub fn record_security(&self, ev: SecurityEvent) -> Result<Appended, AuditError> {
        self.submit(prepare::prepare_security(ev, &self.inner.node))
            .wait()
    }

    /// Signs and appends a checkpoint of the current head, now.
    pub fn checkpoint(&self) -> Result<Checkpoint, AuditError> {
        self.inner.committer.checkpoint()
    }

    /// Deletes the oldest records, up to the first one at or after
    /// `older_than` (only a prefix, so the chain stays contiguous), with
    /// their captures and any expired captures, and appends a `system`
    /// record naming the new anchor. Then checkpoints.
    pub fn prune(
        &self,
        older_than: impl Into<Timestamp>,
        actor: &str,
    ) -> Result<PruneReport, AuditError> {
        self.inner.committer.prune(older_than.into(), actor)
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

    pub(crate) fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut dyn AuditStore) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut store = match self.inner.readers.take() {
            Some(s) => s,
            None => self.inner.backend.open_reader()?,
        };
        let result = f(&mut *store);
        // A connection that failed may be mid-transaction; drop it.
        if result.is_ok() {
            self.inner.readers.put(store);
        }
        result
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
        self.committer.close()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Idle connections kept for reuse, at most `cap` of them.
struct Pool<T> {
    idle: Mutex<Vec<T>>,
    cap: usize,
}

impl<T> Pool<T> {
    fn new(cap: usize) -> Pool<T> {
        Pool {
            idle: Mutex::new(Vec::with_capacity(cap)),
            cap,
        }
    }

    fn take(&self) -> Option<T> {
        lock(&self.idle).pop()
    }

    /// Keeps `item` for reuse unless `cap` are already kept; true if kept.
    fn put(&self, item: T) -> bool {
        let mut idle = lock(&self.idle);
        if idle.len() < self.cap {
            idle.push(item);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_at_most_its_cap() {
        let pool = Pool::new(2);
        assert!(pool.put(1) && pool.put(2));
        assert!(!pool.put(3), "a third idle item was kept");
        assert_eq!(
            (pool.take(), pool.take(), pool.take()),
            (Some(2), Some(1), None)
        );
    }

    #[test]
    fn the_handle_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<AuditLog>();
    }

    #[test]
    fn it_opens_in_a_directory_it_creates_and_describes_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Every file in a directory that does not exist yet.
        let cfg = AuditConfig::in_dir(&dir.path().join("a/b"), "node-7");
        let log = AuditLog::open(cfg.clone()).expect("open");
        assert!(cfg.db_path.exists() && cfg.signing_key_path.exists());
        let shown = format!("{log:?}");
        assert!(shown.starts_with("AuditLog { database: "), "{shown}");
        assert!(
            shown.ends_with(r#"node: "node-7", healthy: true }"#),
            "{shown}"
        );
        log.close().expect("close");
    }
}
