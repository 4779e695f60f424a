//! Building evidence from the log: segments up to checkpoints, in one read
//! snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use aifn_types::TenantId;
use ed25519_dalek::VerifyingKey;

use super::{Evidence, EvidenceLink, EvidenceRecord, MAX_EVIDENCE_ENTRIES};
use crate::canon::sha256_hex;
use crate::checkpoint::Checkpoint;
use crate::query::to_entry;
use crate::store::{AuditStore, StoredRow};
use crate::{AuditError, AuditLog};

/// Rows read per step of a segment scan.
const SCAN_CHUNK: usize = 1000;

impl AuditLog {
    /// Evidence for the tenant's records at `seqs`: each record whole, the
    /// chain from it to the nearest checkpoint at or after it (as links for
    /// the records not asked for: other tenants', host-level ones, the
    /// tenant's own out of scope), and those checkpoints. When no
    /// checkpoint covers the newest record yet, one is signed first. Only
    /// checkpoints signed with this log's current key and matching the
    /// database are used. A seq that is not the tenant's record is
    /// [`AuditError::UnknownRecord`]; a segment crossing a format 1 record
    /// of someone else is [`AuditError::Unprovable`]; evidence of more than
    /// [`MAX_EVIDENCE_ENTRIES`] entries is [`AuditError::InvalidQuery`].
    pub fn evidence(&self, tenant: &TenantId, seqs: &[u64]) -> Result<Evidence, AuditError> {
        self.evidence_within(tenant, seqs, MAX_EVIDENCE_ENTRIES)
    }

    /// [`AuditLog::evidence`] of at most `max_entries` records and links.
    pub fn evidence_within(
        &self,
        tenant: &TenantId,
        seqs: &[u64],
        max_entries: u64,
    ) -> Result<Evidence, AuditError> {
        let wanted: BTreeSet<u64> = seqs.iter().copied().collect();
        let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
            return Err(AuditError::InvalidQuery {
                reason: "evidence needs at least one record".into(),
            });
        };
        let key = self.inner.public_key;
        let mut candidates = read_candidates(&self.inner.checkpoint_path, first, &key)?;
        if candidates.range((last, 0)..).next().is_none() {
            let c = self.checkpoint()?;
            candidates.insert((c.seq, usize::MAX), c);
        }
        self.with_reader(|store| {
            store.begin_snapshot()?;
            let result = Builder {
                store: &mut *store,
                tenant: tenant.as_str(),
                wanted: &wanted,
                key: &key,
                max_entries,
            }
            .build(&candidates);
            // The snapshot only read; ending it cannot lose anything.
            let _ = store.end_snapshot();
            result
        })
    }
}

/// Checkpoint lines by (seq, line number): lines with the same seq all
/// stay, so a bad one cannot hide a good one.
type Candidates = BTreeMap<(u64, usize), Checkpoint>;

/// The checkpoint lines at or after `first` that name `key`. Unreadable
/// lines are skipped here; `verify` reports them.
fn read_candidates(path: &Path, first: u64, key: &VerifyingKey) -> Result<Candidates, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(AuditError::io(path, "open checkpoints", e)),
    };
    let named = hex::encode(key.as_bytes());
    let mut out = BTreeMap::new();
    for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|e| AuditError::io(path, "read checkpoints", e))?;
        match serde_json::from_slice::<Checkpoint>(&line) {
            Ok(c) if c.seq >= first && c.public_key == named => {
                out.insert((c.seq, n), c);
            }
            _ => {}
        }
    }
    Ok(out)
}

struct Builder<'a> {
    store: &'a mut dyn AuditStore,
    tenant: &'a str,
    wanted: &'a BTreeSet<u64>,
    key: &'a VerifyingKey,
    max_entries: u64,
}

fn corrupt(seq: u64, reason: &str) -> AuditError {
    AuditError::Corrupt {
        seq,
        reason: format!("{reason} (run `aifn audit verify`)"),
    }
}

impl Builder<'_> {
    fn build(mut self, candidates: &Candidates) -> Result<Evidence, AuditError> {
        let from = self
            .store
            .format()
            .format_2_from
            .ok_or_else(|| corrupt(0, "the chain format boundary is missing"))?;
        for &seq in self.wanted {
            self.check_wanted(seq)?;
        }
        let mut checked: BTreeMap<(u64, usize), bool> = BTreeMap::new();
        let mut segments: Vec<(u64, u64)> = Vec::new();
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        for &seq in self.wanted {
            if segments.last().is_some_and(|&(_, end)| seq <= end) {
                continue;
            }
            let c = self.first_valid(candidates, seq, &mut checked)?;
            segments.push((seq, c.seq));
            checkpoints.push(c.clone());
        }
        let entries = segments.iter().fold(0u64, |n, &(start, end)| {
            n.saturating_add(end.saturating_sub(start).saturating_add(1))
        });
        if entries > self.max_entries {
            return Err(AuditError::InvalidQuery {
                reason: format!(
                    "the evidence would hold {entries} records and links, over the {} \
                     allowed: ask for fewer records",
                    self.max_entries
                ),
            });
        }
        let mut out = Evidence {
            chain_format_2_from: from,
            records: Vec::new(),
            links: Vec::new(),
            checkpoints,
        };
        for (start, end) in segments {
            self.segment(start, end, from, &mut out)?;
        }
        Ok(out)
    }

    /// A seq asked for must be a record of the tenant whose body agrees.
    fn check_wanted(&mut self, seq: u64) -> Result<(), AuditError> {
        let rows = self.store.scan(seq.saturating_sub(1), 1)?;
        match rows.first() {
            Some(row) if row.seq == seq && self.own(row) => {
                to_entry(row, Some(self.tenant)).map(drop)
            }
            _ => Err(AuditError::UnknownRecord { seq }),
        }
    }

    fn own(&self, row: &StoredRow) -> bool {
        row.cols
            .as_ref()
            .is_some_and(|c| c.tenant_id.as_deref() == Some(self.tenant))
    }

    /// The first candidate at or after `seq` that verifies with this log's
    /// key and signs the hash the database has at its seq.
    fn first_valid<'c>(
        &mut self,
        candidates: &'c Candidates,
        seq: u64,
        checked: &mut BTreeMap<(u64, usize), bool>,
    ) -> Result<&'c Checkpoint, AuditError> {
        for (&at, c) in candidates.range((seq, 0)..) {
            let ok = match checked.get(&at) {
                Some(&ok) => ok,
                None => {
                    let ok = c.check(Some(self.key)).is_ok()
                        && self.store.hash_at(at.0)?.as_deref() == Some(c.hash.as_str());
                    checked.insert(at, ok);
                    ok
                }
            };
            if ok {
                return Ok(c);
            }
        }
        Err(AuditError::Unprovable {
            seq,
            reason: "no checkpoint signed with this log's key matches the chain after it \
                     (run `aifn audit verify`)"
                .into(),
        })
    }

    /// Rows `start..=end` into records and links.
    fn segment(
        &mut self,
        start: u64,
        end: u64,
        from: u64,
        out: &mut Evidence,
    ) -> Result<(), AuditError> {
        let mut expected = start;
        while expected <= end {
            let rows = self.store.scan(expected - 1, SCAN_CHUNK)?;
            let before = expected;
            for row in rows.iter().take_while(|r| r.seq <= end) {
                if row.seq != expected {
                    return Err(corrupt(expected, "the chain has a gap here"));
                }
                self.place(row, start, from, out)?;
                expected += 1;
            }
            if expected == before {
                return Err(corrupt(expected, "the chain has a gap here"));
            }
        }
        Ok(())
    }

    fn place(
        &self,
        row: &StoredRow,
        start: u64,
        from: u64,
        out: &mut Evidence,
    ) -> Result<(), AuditError> {
        let seq = row.seq;
        let (Some(body), Some(prev_hash), Some(hash)) = (&row.body, &row.prev_hash, &row.hash)
        else {
            return Err(corrupt(seq, "a column is not text"));
        };
        let whole = if self.wanted.contains(&seq) {
            // Checked by `check_wanted` in this snapshot.
            true
        } else if seq >= from {
            false
        } else if self.own(row) {
            // Format 1 needs the body; the tenant may see its own, once its
            // body agrees with the tenant column it was found by.
            to_entry(row, Some(self.tenant))?;
            true
        } else {
            return Err(AuditError::Unprovable {
                seq: start,
                reason: format!(
                    "record {seq}, chained with format 1 (before {from}), is not this \
                     tenant's and lies between it and the next checkpoint"
                ),
            });
        };
        if whole {
            out.records.push(EvidenceRecord {
                seq,
                prev_hash: prev_hash.clone(),
                hash: hash.clone(),
                body: body.clone(),
            });
        } else {
            out.links.push(EvidenceLink {
                seq,
                prev_hash: prev_hash.clone(),
                hash: hash.clone(),
                body_sha256: sha256_hex(body.as_bytes()),
            });
        }
        Ok(())
    }
}
