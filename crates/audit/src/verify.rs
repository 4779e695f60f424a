//! Offline verification of a data directory: the chain, then checkpoints.

use std::cmp::Ordering;
use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::canon::{ChainFormat, GENESIS, decode_hash};
use crate::checkpoint::{Checkpoint, read_key, read_lines};
use crate::prepare::IndexCols;
use crate::record::{AuditRecord, SystemEvent};
use crate::store::{AuditStore, StoredRow};
use crate::{AuditConfig, AuditError, Stream};

/// The first problem `verify` found, naming the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The record at `seq` was changed in place (its hash, its body or an
    /// indexed column no longer match), or a record outside the chain's
    /// range was inserted (`seq` 0).
    Edited {
        /// The record.
        seq: u64,
    },
    /// A record is missing: the chain jumps from `after_seq` past `missing_seq`.
    Deleted {
        /// The last record before the gap (0: the start).
        after_seq: u64,
        /// The first missing seq.
        missing_seq: u64,
    },
    /// The record at `seq` carries another position's content (its link to
    /// the previous record and its hash both belong elsewhere).
    Reordered {
        /// The record.
        seq: u64,
    },
    /// A checkpoint covers records that are no longer there.
    Truncated {
        /// The last seq present (0: none).
        last_seq: u64,
        /// The seq the checkpoint signed.
        checkpoint_seq: u64,
    },
    /// A checkpoint line is unreadable, wrongly signed, or signs a hash the
    /// chain does not have.
    BadCheckpoint {
        /// The line of the checkpoint file (1-based).
        line: u64,
        /// The seq it claims, if readable.
        seq: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Edited { seq } => write!(f, "record {seq} was edited"),
            Finding::Deleted {
                after_seq,
                missing_seq,
            } => {
                write!(
                    f,
                    "record {missing_seq} is missing (the chain breaks after {after_seq})"
                )
            }
            Finding::Reordered { seq } => {
                write!(f, "record {seq} holds another record's content (reordered)")
            }
            Finding::Truncated {
                last_seq,
                checkpoint_seq,
            } => {
                write!(
                    f,
                    "the log ends at {last_seq} but a checkpoint covers {checkpoint_seq} (truncated)"
                )
            }
            Finding::BadCheckpoint {
                line,
                seq: Some(seq),
                reason,
            } => {
                write!(f, "checkpoint line {line} (seq {seq}): {reason}")
            }
            Finding::BadCheckpoint {
                line,
                seq: None,
                reason,
            } => write!(f, "checkpoint line {line}: {reason}"),
        }
    }
}

/// Which public key the checkpoint signatures were checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// The key passed to `verify` (the strongest: the database's thief
    /// cannot choose it).
    Given,
    /// The public half of the configured signing key file.
    KeyFile,
    /// The key each checkpoint line names (only proves consistency).
    CheckpointLines,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Records checked before stopping.
    pub records: u64,
    /// The first seq present.
    pub first_seq: Option<u64>,
    /// The last seq checked.
    pub last_seq: Option<u64>,
    /// The chain starts after this seq (0 unless pruned).
    pub anchor_seq: u64,
    /// Records from this seq on are chained with format 2 (the body's
    /// digest); older ones with format 1. `None`: a log from before
    /// migration 3, all format 1.
    pub chain_format_2_from: Option<u64>,
    /// Checkpoint lines checked.
    pub checkpoints: u64,
    /// The highest seq covered by a valid checkpoint; records after it are
    /// chained but not yet signed.
    pub checkpointed_seq: Option<u64>,
    /// The key the signatures were checked with.
    pub key_source: KeySource,
    /// The first problem, if any.
    pub finding: Option<Finding>,
}

impl VerifyReport {
    /// True if nothing was found.
    pub fn is_ok(&self) -> bool {
        self.finding.is_none()
    }
}

/// Recomputes the whole chain from its anchor and checks every checkpoint
/// (signature, hash, and that the records it covers still exist). Works on
/// the files alone, while the log runs or not. Checkpoint signatures are
/// checked against `public_key` if given, else the configured key file's,
/// else the key each line names. Returns an error only if the files cannot
/// be read; tampering is a [`Finding`].
pub fn verify(
    cfg: &AuditConfig,
    public_key: Option<&[u8; 32]>,
) -> Result<VerifyReport, AuditError> {
    let (trusted, key_source) = match public_key {
        Some(b) => {
            let k = VerifyingKey::from_bytes(b).map_err(|_| AuditError::Key {
                path: cfg.signing_key_path.clone(),
                reason: "the given public key is not a valid Ed25519 key".into(),
            })?;
            (Some(k), KeySource::Given)
        }
        None if cfg.signing_key_path.exists() => (
            Some(read_key(&cfg.signing_key_path)?.verifying_key()),
            KeySource::KeyFile,
        ),
        None => (None, KeySource::CheckpointLines),
    };
    // Read checkpoints before the snapshot: each one was written after its
    // records committed, so the snapshot holds everything they cover.
    let lines = read_lines(&cfg.checkpoint_path)?;
    let mut store = Backend::of(cfg).open_reader()?;
    let store = &mut *store;
    store.begin_snapshot()?;
    let mut report = VerifyReport {
        records: 0,
        first_seq: None,
        last_seq: None,
        anchor_seq: 0,
        chain_format_2_from: store.format().format_2_from,
        checkpoints: 0,
        checkpointed_seq: None,
        key_source,
        finding: None,
    };
    let result = check_chain(store, &mut report).and_then(|chain| match report.finding {
        Some(_) => Ok(()),
        None => check_checkpoints(store, &mut report, &lines, trusted.as_ref(), &chain),
    });
    let _ = store.end_snapshot();
    result.map(|()| report)
}

/// What the chain check learned, for the checkpoint check.
#[derive(Debug, Default)]
struct Chain {
    min_seq: u64,
    max_seq: u64,
    anchor_hash: [u8; 32],
}

/// A prune anchor: the last deleted (seq, hash).
type Anchor = (u64, [u8; 32]);

/// The anchor named by the newest prune record.
fn prune_anchor(store: &mut dyn AuditStore) -> Result<Result<Option<Anchor>, Finding>, AuditError> {
    let Some(row) = store.latest(Stream::System)? else {
        return Ok(Ok(None));
    };
    let edited = Finding::Edited { seq: row.seq };
    let Some(rec) = row
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<AuditRecord>(b).ok())
    else {
        return Ok(Err(edited));
    };
    let AuditRecord::System(s) = rec else {
        return Ok(Err(edited));
    };
    // Prune is the one system event; a new one must say here whether it
    // moves the chain's start.
    let SystemEvent::Prune = s.event;
    match decode_hash(&s.anchor_hash) {
        Some(h) => Ok(Ok(Some((s.anchor_seq, h)))),
        None => Ok(Err(edited)),
    }
}

fn check_chain(store: &mut dyn AuditStore, report: &mut VerifyReport) -> Result<Chain, AuditError> {
    let (min, max) = match store.bounds() {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(Chain::default()),
        Err(AuditError::Corrupt { .. }) => {
            report.finding = Some(Finding::Edited { seq: 0 });
            return Ok(Chain::default());
        }
        Err(e) => return Err(e),
    };
    report.first_seq = Some(min);
    let anchor = match prune_anchor(store)? {
        Ok(a) => a,
        Err(f) => {
            report.finding = Some(f);
            return Ok(Chain::default());
        }
    };
    let (start, start_prev) = anchor.map_or((1, GENESIS), |(s, h)| (s + 1, h));
    let missing = match min.cmp(&start) {
        Ordering::Equal => None,
        // Records the newest prune says are gone are still here; the chain
        // from 1 decides.
        Ordering::Less if min == 1 => None,
        Ordering::Less => Some((0, 1)),
        Ordering::Greater => Some((start - 1, start)),
    };
    if let Some((after_seq, missing_seq)) = missing {
        report.finding = Some(Finding::Deleted {
            after_seq,
            missing_seq,
        });
        return Ok(Chain::default());
    }
    let mut prev = if min == start { start_prev } else { GENESIS };
    report.anchor_seq = min - 1;
    let chain = Chain {
        min_seq: min,
        max_seq: max,
        anchor_hash: prev,
    };
    let format = store.format();
    let mut expected = min;
    loop {
        let rows = store.scan(expected - 1, 1000)?;
        if rows.is_empty() {
            return Ok(chain);
        }
        for row in rows {
            if let Some(f) = check_row(&row, expected, min, &prev, format) {
                report.finding = Some(f);
                return Ok(chain);
            }
            prev = decode_hash(row.hash.as_deref().unwrap_or_default()).unwrap_or_default();
            report.records += 1;
            report.last_seq = Some(row.seq);
            expected += 1;
        }
    }
}

fn check_row(
    row: &StoredRow,
    expected: u64,
    first: u64,
    prev: &[u8; 32],
    format: ChainFormat,
) -> Option<Finding> {
    let seq = row.seq;
    if seq != expected {
        return Some(Finding::Deleted {
            after_seq: expected - 1,
            missing_seq: expected,
        });
    }
    let edited = Some(Finding::Edited { seq });
    let (Some(cols), Some(body), Some(stored_prev), Some(stored_hash)) = (
        &row.cols,
        &row.body,
        row.prev_hash.as_deref().and_then(decode_hash),
        row.hash.as_deref().and_then(decode_hash),
    ) else {
        return edited;
    };
    if format.hash(&stored_prev, seq, body) != stored_hash {
        // Changed in place keeps the link; content moved from elsewhere
        // brings a foreign link along.
        return if stored_prev == *prev {
            edited
        } else {
            Some(Finding::Reordered { seq })
        };
    }
    if stored_prev != *prev {
        // Self-consistent but unlinked: the previous record was rewritten
        // (and rehashed), so it no longer has the hash this one committed to.
        return Some(Finding::Edited {
            seq: if seq > first { seq - 1 } else { seq },
        });
    }
    match serde_json::from_str::<AuditRecord>(body)
        .ok()
        .map(|r| IndexCols::of(&r))
    {
        Some(derived) if derived == *cols => None,
        _ => edited,
    }
}

fn check_checkpoints(
    store: &mut dyn AuditStore,
    report: &mut VerifyReport,
    lines: &[(u64, String)],
    trusted: Option<&VerifyingKey>,
    chain: &Chain,
) -> Result<(), AuditError> {
    for (line, text) in lines {
        report.checkpoints += 1;
        let bad = |seq, reason: &str| Finding::BadCheckpoint {
            line: *line,
            seq,
            reason: reason.to_owned(),
        };
        let c: Checkpoint = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(_) => {
                report.finding = Some(bad(None, "does not parse"));
                return Ok(());
            }
        };
        if let Err(reason) = c.check(trusted) {
            report.finding = Some(bad(Some(c.seq), &reason));
            return Ok(());
        }
        if c.seq > chain.max_seq {
            report.finding = Some(Finding::Truncated {
                last_seq: chain.max_seq,
                checkpoint_seq: c.seq,
            });
            return Ok(());
        }
        let Some(signed) = decode_hash(&c.hash) else {
            report.finding = Some(bad(Some(c.seq), "hash is not 32 hex bytes"));
            return Ok(());
        };
        let actual = if c.seq == 0 {
            Some(GENESIS)
        } else if c.seq + 1 == chain.min_seq {
            Some(chain.anchor_hash)
        } else if c.seq < chain.min_seq {
            None // pruned: nothing left to compare with
        } else {
            store.hash_at(c.seq)?.as_deref().and_then(decode_hash)
        };
        match actual {
            Some(h) if h != signed => {
                report.finding = Some(bad(
                    Some(c.seq),
                    "signs a hash the chain does not have at this seq",
                ));
                return Ok(());
            }
            Some(_) => report.checkpointed_seq = report.checkpointed_seq.max(Some(c.seq)),
            None => {}
        }
    }
    Ok(())
}
