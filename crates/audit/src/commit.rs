//! Who commits: the caller itself when nobody else is committing, else
//! whoever is (group commit), else the background thread.
//!
//! A record is queued, and the caller that finds nobody committing takes
//! the lead: it commits one batch (its own record and whatever queued
//! before it) on its own thread, so a lone call costs no hand-off to
//! another thread and no wake-up back. While it waits for the disk, later
//! callers only queue. If records are still queued when its batch is done,
//! it hands the lead to the background thread, which commits batches until
//! the queue is empty; so no caller commits for others for long, and no
//! record waits for a caller that has gone. The background thread also
//! runs the timed work: checkpoints by interval, capture expiry.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ack::Ack;
use crate::prepare::NewEntry;
use crate::writer::{Shared, Writer};
use crate::{AuditError, Checkpoint, PruneReport};
use aifn_types::Timestamp;

/// How often captures are expired when time checkpoints are off.
const DEFAULT_TICK: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<(NewEntry, Ack)>,
    /// Someone is committing; it looks at the queue again before it stops.
    leading: bool,
    /// The lead was handed to the background thread.
    handed: bool,
    closed: bool,
}

/// The queue, the writer behind its lock, and the background thread.
pub(crate) struct Committer {
    queue: Mutex<Queue>,
    /// Callers waiting for room in a full queue.
    space: Condvar,
    /// The background thread, waiting for the lead or its next tick.
    work: Condvar,
    capacity: usize,
    max_batch: usize,
    writer: Mutex<Writer>,
    background: Mutex<Option<JoinHandle<()>>>,
    pub(crate) shared: Arc<Shared>,
}

impl Committer {
    /// Starts the background thread over `writer`.
    pub(crate) fn start(writer: Writer, capacity: usize) -> std::io::Result<Arc<Committer>> {
        let tick = if writer.interval.is_zero() {
            DEFAULT_TICK
        } else {
            writer.interval
        };
        let c = Arc::new(Committer {
            queue: Mutex::new(Queue::default()),
            space: Condvar::new(),
            work: Condvar::new(),
            capacity: capacity.max(1),
            max_batch: writer.max_batch.max(1),
            shared: Arc::clone(&writer.shared),
            writer: Mutex::new(writer),
            background: Mutex::new(None),
        });
        // The log's handle closes it on drop, which ends this thread.
        let shared = Arc::clone(&c);
        let handle = std::thread::Builder::new()
            .name("aifn-audit-writer".into())
            .spawn(move || background(&shared, tick))?;
        *lock(&c.background) = Some(handle);
        Ok(c)
    }

    /// Queues `entry`; commits it at once when nobody else is committing.
    pub(crate) fn submit(&self, entry: NewEntry, ack: Ack) {
        let lead = {
            let mut q = lock(&self.queue);
            while q.entries.len() >= self.capacity && !q.closed {
                q = self.space.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            if q.closed {
                // Dropping the ack answers `Closed`.
                return;
            }
            q.entries.push_back((entry, ack));
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            self.lead(1);
        }
    }

    /// Commits up to `batches` batches, then stops leading, or hands the
    /// lead to the background thread if records are still queued.
    fn lead(&self, batches: usize) {
        for _ in 0..batches {
            // Lock order: the writer, then the queue. A batch is taken and
            // committed under the writer's lock, so batches reach the chain
            // in the order they left the queue, and `close` sees them done.
            let mut w = lock(&self.writer);
            let (entries, replies): (Vec<_>, Vec<_>) = {
                let mut q = lock(&self.queue);
                if q.entries.is_empty() {
                    q.leading = false;
                    return;
                }
                let n = q.entries.len().min(self.max_batch);
                let batch = q.entries.drain(..n).unzip();
                self.space.notify_all();
                batch
            };
            w.commit(&entries, replies);
            w.checkpoint_if_due();
        }
        let mut q = lock(&self.queue);
        if q.entries.is_empty() {
            q.leading = false;
        } else {
            q.handed = true;
            self.work.notify_one();
        }
    }

    /// Runs `f` on the writer (checkpoints, prunes), between commits.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        if lock(&self.queue).closed {
            return Err(AuditError::Closed);
        }
        f(&mut lock(&self.writer))
    }

    pub(crate) fn checkpoint(&self) -> Result<Checkpoint, AuditError> {
        self.with_writer(Writer::checkpoint)
    }

    pub(crate) fn prune(&self, cutoff: Timestamp, actor: &str) -> Result<PruneReport, AuditError> {
        self.with_writer(|w| w.prune(cutoff, actor))
    }

    /// Commits what is queued, writes a final checkpoint and stops the
    /// background thread. Later records answer `Closed`. Idempotent.
    pub(crate) fn close(&self) -> Result<(), AuditError> {
        {
            let mut q = lock(&self.queue);
            if q.closed {
                return Ok(());
            }
            q.closed = true;
            self.space.notify_all();
            self.work.notify_all();
        }
        let result = {
            let mut w = lock(&self.writer);
            let queued: Vec<_> = lock(&self.queue).entries.drain(..).collect();
            let mut rest = queued.into_iter().peekable();
            while rest.peek().is_some() {
                let (entries, replies): (Vec<_>, Vec<_>) =
                    rest.by_ref().take(self.max_batch).unzip();
                w.commit(&entries, replies);
            }
            w.final_checkpoint()
        };
        self.shared
            .running
            .store(false, std::sync::atomic::Ordering::Release);
        let handle = lock(&self.background).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        result
    }
}

/// The background thread: takes the lead when handed it, and ticks.
fn background(c: &Committer, tick: Duration) {
    let mut next_tick = Instant::now() + tick;
    loop {
        let handed = {
            let mut q = lock(&c.queue);
            loop {
                if q.closed {
                    return;
                }
                if q.handed || Instant::now() >= next_tick {
                    break;
                }
                let left = next_tick.saturating_duration_since(Instant::now());
                q = c
                    .work
                    .wait_timeout(q, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::take(&mut q.handed)
        };
        if handed {
            c.lead(usize::MAX);
        }
        if Instant::now() >= next_tick {
            lock(&c.writer).tick();
            next_tick = Instant::now() + tick;
        }
    }
}
