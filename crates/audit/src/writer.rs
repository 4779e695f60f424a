//! The writer's state (the one write connection, the signing key, the
//! checkpoint file) and what it does with it: commit a batch, checkpoint,
//! expire captures, prune. [`crate::commit`] decides who runs it when.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;

use crate::ack::Ack;
use crate::canon::GENESIS;
use crate::checkpoint::{Checkpoint, CheckpointFile};
use aifn_types::Timestamp;

use crate::prepare::NewEntry;
use crate::record::{AuditRecord, SystemEvent, SystemRecord};
use crate::store::{AuditStore, PruneFacts};
use crate::{AuditError, AuditStats, PruneReport};

/// State shared between the writer and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) running: AtomicBool,
    pub(crate) write_ok: AtomicBool,
    pub(crate) checkpoint_ok: AtomicBool,
    records: AtomicU64,
    commits: AtomicU64,
    failed_commits: AtomicU64,
    checkpoints: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            running: AtomicBool::new(true),
            write_ok: AtomicBool::new(true),
            checkpoint_ok: AtomicBool::new(true),
            records: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            failed_commits: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
        }
    }

    pub(crate) fn healthy(&self) -> bool {
        self.running.load(Ordering::Acquire)
            && self.write_ok.load(Ordering::Acquire)
            && self.checkpoint_ok.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> AuditStats {
        AuditStats {
            records: self.records.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Writer {
    pub(crate) store: Box<dyn AuditStore>,
    /// The database, as errors name it.
    pub(crate) database: String,
    pub(crate) key: SigningKey,
    pub(crate) checkpoints: CheckpointFile,
    pub(crate) node: String,
    pub(crate) every_records: u64,
    pub(crate) interval: Duration,
    pub(crate) max_batch: usize,
    pub(crate) shared: Arc<Shared>,
    /// The seq of the last checkpoint written (from the file at open).
    pub(crate) last_checkpoint_seq: u64,
    pub(crate) since_checkpoint: u64,
}

impl Writer {
    /// A checkpoint when `every_records` have been committed since the last.
    pub(crate) fn checkpoint_if_due(&mut self) {
        if self.every_records > 0 && self.since_checkpoint >= self.every_records {
            let _ = self.checkpoint();
        }
    }

    /// Accounts for one commit of `records` records.
    fn committed(&mut self, records: u64) {
        self.shared.write_ok.store(true, Ordering::Release);
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        self.shared.records.fetch_add(records, Ordering::Relaxed);
        self.since_checkpoint += records;
    }

    pub(crate) fn commit(&mut self, entries: &[NewEntry], replies: Vec<Ack>) {
        let n = entries.len();
        match self.store.append(entries) {
            Ok(appended) => {
                self.committed(n as u64);
                for (reply, a) in replies.into_iter().zip(appended) {
                    reply.send(Ok(a));
                }
            }
            Err(e) => {
                // The transaction rolled back: nothing of the batch exists.
                self.shared.write_ok.store(false, Ordering::Release);
                self.shared.failed_commits.fetch_add(1, Ordering::Relaxed);
                let reason = match &e {
                    AuditError::Database {
                        operation, source, ..
                    }
                    | AuditError::Unavailable {
                        operation, source, ..
                    } => format!("{operation}: {source}"),
                    other => other.to_string(),
                };
                for reply in replies {
                    reply.send(Err(AuditError::CommitFailed {
                        database: self.database.clone(),
                        batch: n,
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    pub(crate) fn checkpoint(&mut self) -> Result<Checkpoint, AuditError> {
        let result = self.try_checkpoint();
        self.shared
            .checkpoint_ok
            .store(result.is_ok(), Ordering::Release);
        result
    }

    fn try_checkpoint(&mut self) -> Result<Checkpoint, AuditError> {
        let (seq, hash) = self
            .store
            .head()?
            .unwrap_or_else(|| (0, hex::encode(GENESIS)));
        let c = Checkpoint::sign(
            &self.key,
            seq,
            hash,
            Timestamp::now().to_string(),
            self.node.clone(),
        );
        self.checkpoints.append(&c)?;
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.last_checkpoint_seq = seq;
        self.since_checkpoint = 0;
        Ok(c)
    }

    /// Checkpoints if anything was appended since the last checkpoint.
    pub(crate) fn final_checkpoint(&mut self) -> Result<(), AuditError> {
        match self.store.head()? {
            Some((seq, _)) if seq != self.last_checkpoint_seq => self.checkpoint().map(drop),
            _ => Ok(()),
        }
    }

    pub(crate) fn tick(&mut self) {
        let _ = self.store.expire_captures(Timestamp::now().unix_ms());
        if !self.interval.is_zero() {
            let _ = self.final_checkpoint();
        }
    }

    pub(crate) fn prune(
        &mut self,
        cutoff: Timestamp,
        actor: &str,
    ) -> Result<PruneReport, AuditError> {
        let cutoff_ms = cutoff.unix_ms();
        let node = self.node.clone();
        let mut make = |f: &PruneFacts| {
            let rec = SystemRecord {
                time: Timestamp::now(),
                event: SystemEvent::Prune,
                actor: actor.to_owned(),
                cutoff,
                pruned: f.pruned,
                anchor_seq: f.anchor_seq,
                anchor_hash: f.anchor_hash.clone(),
                captures_expired: f.captures_expired,
                node: node.clone(),
            };
            NewEntry::new(&AuditRecord::System(rec), None)
        };
        match self
            .store
            .prune(cutoff_ms, Timestamp::now().unix_ms(), &mut make)
        {
            Ok((facts, record)) => {
                self.committed(1);
                // Sign the new anchor right away. A failure here shows in
                // `is_healthy` and does not undo the prune.
                let _ = self.checkpoint();
                Ok(PruneReport {
                    pruned: facts.pruned,
                    anchor_seq: facts.anchor_seq,
                    anchor_hash: facts.anchor_hash,
                    captures_expired: facts.captures_expired,
                    record,
                })
            }
            Err(e) => {
                self.shared.write_ok.store(false, Ordering::Release);
                self.shared.failed_commits.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}
