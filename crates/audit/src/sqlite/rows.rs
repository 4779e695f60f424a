//! Reading rows leniently: a column of the wrong type makes the row
//! malformed (a verify finding), not an error.

use rusqlite::Row;
use rusqlite::types::{Value as SqlValue, ValueRef};

use super::SqliteStore;
use crate::AuditError;
use crate::prepare::IndexCols;
use crate::store::StoredRow;

fn text(r: &Row<'_>, i: usize, bad: &mut bool) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) => match std::str::from_utf8(b) {
            Ok(s) => Some(s.to_owned()),
            Err(_) => {
                *bad = true;
                None
            }
        },
        _ => {
            *bad = true;
            None
        }
    })
}

/// Reads a row without trusting its column types.
pub(super) fn read_row(r: &Row<'_>) -> rusqlite::Result<(i64, StoredRow)> {
    let seq: i64 = r.get(0)?;
    let mut bad = false;
    let stream = text(r, 1, &mut bad)?;
    let tenant_id = text(r, 2, &mut bad)?;
    let time_ms = match r.get_ref(3)? {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    };
    let function = text(r, 4, &mut bad)?;
    let agent_id = text(r, 5, &mut bad)?;
    let user_id = text(r, 6, &mut bad)?;
    let outcome = text(r, 7, &mut bad)?;
    let execution_id = text(r, 8, &mut bad)?;
    let body = text(r, 9, &mut bad)?;
    let prev_hash = text(r, 10, &mut bad)?;
    let hash = text(r, 11, &mut bad)?;
    let cols = match (bad, stream, time_ms) {
        (false, Some(stream), Some(time_ms)) => Some(IndexCols {
            stream,
            tenant_id,
            time_ms,
            function,
            agent_id,
            user_id,
            outcome,
            execution_id,
        }),
        _ => None,
    };
    Ok((
        seq,
        StoredRow {
            seq: u64::try_from(seq).unwrap_or(0),
            cols,
            body,
            prev_hash,
            hash,
        },
    ))
}

impl SqliteStore {
    pub(super) fn rows(
        &self,
        sql: &str,
        params: &[SqlValue],
        op: &'static str,
    ) -> Result<Vec<StoredRow>, AuditError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err(op))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), read_row)
            .map_err(self.err(op))?;
        let mut out = Vec::new();
        for row in rows {
            let (raw_seq, row) = row.map_err(self.err(op))?;
            if raw_seq < 1 {
                return Err(AuditError::Corrupt {
                    seq: 0,
                    reason: format!("row with seq {raw_seq} outside the chain"),
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}
