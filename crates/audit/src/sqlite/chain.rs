//! Appending: the head, and new rows chained onto it.

use std::path::Path;

use rusqlite::{OptionalExtension, Transaction, params};

use super::seq_param;
use crate::canon::{ChainFormat, GENESIS, decode_hash};
use crate::prepare::NewEntry;
use crate::{Appended, AuditError};

pub(super) const INSERT: &str = "INSERT INTO audit_entries
    (seq, stream, tenant_id, time_ms, function, agent_id, user_id, outcome, execution_id, body, prev_hash, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

pub(super) const INSERT_CAPTURE: &str = "INSERT INTO audit_captures
    (seq, tenant_id, execution_id, input, output, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The head inside a transaction: (last seq, last hash), or the genesis.
pub(super) fn head_in(tx: &Transaction<'_>, path: &Path) -> Result<(u64, [u8; 32]), AuditError> {
    let row: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .optional()
        .map_err(|e| AuditError::db(path, "read head", e))?;
    match row {
        None => Ok((0, GENESIS)),
        Some((seq, hash)) => {
            let seq = u64::try_from(seq).map_err(|_| AuditError::Corrupt {
                seq: 0,
                reason: "negative seq".into(),
            })?;
            let hash = decode_hash(&hash).ok_or_else(|| AuditError::Corrupt {
                seq,
                reason: "hash is not 32 hex bytes".into(),
            })?;
            Ok((seq, hash))
        }
    }
}

/// Inserts entries after `head`, chaining each with the format of its seq;
/// returns their seq and hash.
pub(super) fn insert_chained(
    tx: &Transaction<'_>,
    path: &Path,
    format: ChainFormat,
    head: (u64, [u8; 32]),
    entries: &[NewEntry],
) -> Result<Vec<Appended>, AuditError> {
    let e = |op| move |err| AuditError::db(path, op, err);
    let (mut seq, mut prev) = head;
    let mut ins = tx.prepare_cached(INSERT).map_err(e("prepare insert"))?;
    let mut cap = tx
        .prepare_cached(INSERT_CAPTURE)
        .map_err(e("prepare capture insert"))?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let hash = format.hash(&prev, seq, &entry.body);
        let c = &entry.cols;
        ins.execute(params![
            seq_param(seq),
            c.stream,
            c.tenant_id,
            c.time_ms,
            c.function,
            c.agent_id,
            c.user_id,
            c.outcome,
            c.execution_id,
            entry.body,
            hex::encode(prev),
            hex::encode(hash),
        ])
        .map_err(e("insert record"))?;
        if let Some(capture) = &entry.capture {
            cap.execute(params![
                seq_param(seq),
                c.tenant_id.as_deref().unwrap_or_default(),
                c.execution_id.as_deref().unwrap_or_default(),
                capture.input,
                capture.output,
                capture.expires_ms,
            ])
            .map_err(e("insert capture"))?;
        }
        out.push(Appended {
            seq,
            hash: hex::encode(hash),
        });
        prev = hash;
    }
    Ok(out)
}
