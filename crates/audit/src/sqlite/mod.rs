//! The SQLite backend: WAL with `synchronous=FULL`, so each commit fsyncs.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod chain;
mod migrate;
mod rows;

use aifn_types::Timestamp;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::canon::{ChainFormat, GENESIS};
use crate::prepare::NewEntry;
use crate::record::StoredCapture;
use crate::store::{AuditStore, Filter, PruneFacts, StoredRow};
use crate::{Appended, AuditError, Stream};
use chain::{head_in, insert_chained};
use migrate::{MIGRATIONS, migrate, read_format, user_version};

const COLUMNS: &str = "seq, stream, tenant_id, time_ms, function, agent_id, user_id, outcome, execution_id, body, prev_hash, hash";

pub(crate) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Read once at open: the boundary never moves after migration 3.
    format: ChainFormat,
}

pub(super) fn seq_param(seq: u64) -> i64 {
    // Seqs come from counting rows; they never reach 2^63.
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) the database for writing and migrates it.
    /// `max_db_bytes` caps the file (`PRAGMA max_page_count`): past it,
    /// commits fail like on a full disk.
    pub(crate) fn open_writer(
        path: &Path,
        max_db_bytes: Option<u64>,
    ) -> Result<SqliteStore, AuditError> {
        let e = |op| move |err| AuditError::db(path, op, err);
        let mut conn = Connection::open(path).map_err(e("open"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(e("set busy timeout"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(e("set journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Database {
                database: path.display().to_string(),
                operation: "set journal_mode",
                source: format!("journal_mode is {mode}, not wal").into(),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(e("set synchronous"))?;
        if let Some(bytes) = max_db_bytes {
            let page: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(e("read page_size"))?;
            let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page.max(1);
            conn.query_row(
                &format!("PRAGMA max_page_count = {}", pages.max(1)),
                [],
                |_| Ok(()),
            )
            .map_err(e("set max_page_count"))?;
        }
        migrate(&mut conn, path)?;
        let format = read_format(&conn, path, user_version(&conn, path)?)?;
        if format.format_2_from.is_none() {
            // Appending without knowing the boundary would chain new
            // records with the wrong formula.
            return Err(AuditError::Corrupt {
                seq: 0,
                reason: "the chain format boundary (audit_meta) is missing".into(),
            });
        }
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            format,
        })
    }

    /// Opens an existing database read-only (queries, verify).
    pub(crate) fn open_reader(path: &Path) -> Result<SqliteStore, AuditError> {
        if !path.exists() {
            return Err(AuditError::io(
                path,
                "open audit database",
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        let e = |op| move |err| AuditError::db(path, op, err);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(e("open read-only"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(e("set busy timeout"))?;
        let version = user_version(&conn, path)?;
        let supported = MIGRATIONS.len() as i64;
        if version < 1 || version > supported {
            return Err(AuditError::Schema {
                database: path.display().to_string(),
                found: version,
                supported,
            });
        }
        let format = read_format(&conn, path, version)?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            format,
        })
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
        move |e| AuditError::db(&self.path, op, e)
    }
}

impl AuditStore for SqliteStore {
    fn append(&mut self, entries: &[NewEntry]) -> Result<Vec<Appended>, AuditError> {
        let path: &Path = &self.path.clone();
        let e = |op| move |err| AuditError::db(path, op, err);
        // IMMEDIATE: take the write lock first, so the head we read is the
        // head we append to even if another process shares the file.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e("begin append"))?;
        let head = head_in(&tx, path)?;
        let out = insert_chained(&tx, path, self.format, head, entries)?;
        tx.commit().map_err(e("commit"))?;
        Ok(out)
    }

    fn prune(
        &mut self,
        cutoff_ms: i64,
        now_ms: i64,
        make: &mut dyn FnMut(&PruneFacts) -> Result<NewEntry, AuditError>,
    ) -> Result<(PruneFacts, Appended), AuditError> {
        let path: &Path = &self.path.clone();
        let e = |op| move |err| AuditError::db(path, op, err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e("begin prune"))?;
        let head = head_in(&tx, path)?;
        // Only a prefix may go: the chain must stay contiguous.
        let keep_from: Option<i64> = tx
            .query_row(
                "SELECT seq FROM audit_entries WHERE time_ms >= ?1 ORDER BY seq LIMIT 1",
                [cutoff_ms],
                |r| r.get(0),
            )
            .optional()
            .map_err(e("find prune boundary"))?;
        let last_old: Option<(i64, String)> = match keep_from {
            Some(b) => tx.query_row(
                "SELECT seq, hash FROM audit_entries WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                [b],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
            None => tx.query_row(
                "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ),
        }
        .optional()
        .map_err(e("find prune anchor"))?;
        let (pruned, anchor_seq, anchor_hash) = match last_old {
            Some((anchor, hash)) => {
                let n: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM audit_entries WHERE seq <= ?1",
                        [anchor],
                        |r| r.get(0),
                    )
                    .map_err(e("count pruned"))?;
                tx.execute("DELETE FROM audit_entries WHERE seq <= ?1", [anchor])
                    .map_err(e("delete pruned"))?;
                (
                    u64::try_from(n).unwrap_or(0),
                    u64::try_from(anchor).unwrap_or(0),
                    hash,
                )
            }
            None => {
                // Nothing old enough: the anchor stays where the chain starts.
                let first: Option<(i64, String)> = tx
                    .query_row(
                        "SELECT seq, prev_hash FROM audit_entries ORDER BY seq LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(e("read chain start"))?;
                match first {
                    Some((seq, prev)) => (0, u64::try_from(seq - 1).unwrap_or(0), prev),
                    None => (0, 0, hex::encode(GENESIS)),
                }
            }
        };
        let captures_expired = tx
            .execute(
                "DELETE FROM audit_captures WHERE seq <= ?1 OR expires_ms <= ?2",
                params![seq_param(anchor_seq), now_ms],
            )
            .map_err(e("expire captures"))? as u64;
        let facts = PruneFacts {
            pruned,
            anchor_seq,
            anchor_hash,
            captures_expired,
        };
        let entry = make(&facts)?;
        let appended = insert_chained(&tx, path, self.format, head, std::slice::from_ref(&entry))?;
        tx.commit().map_err(e("commit prune"))?;
        let appended = appended.into_iter().next().ok_or(AuditError::Closed)?;
        Ok((facts, appended))
    }

    fn expire_captures(&mut self, now_ms: i64) -> Result<u64, AuditError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM audit_captures WHERE expires_ms <= ?1",
                [now_ms],
            )
            .map_err(self.err("expire captures"))?;
        Ok(n as u64)
    }

    fn format(&self) -> ChainFormat {
        self.format
    }

    fn head(&mut self) -> Result<Option<(u64, String)>, AuditError> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err("read head"))?;
        Ok(row.map(|(s, h)| (u64::try_from(s).unwrap_or(0), h)))
    }

    fn bounds(&mut self) -> Result<Option<(u64, u64)>, AuditError> {
        let (min, max): (Option<i64>, Option<i64>) = self
            .conn
            .query_row("SELECT MIN(seq), MAX(seq) FROM audit_entries", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(self.err("read bounds"))?;
        match (min, max) {
            (Some(min), Some(max)) => {
                let min = u64::try_from(min).ok().filter(|&m| m >= 1).ok_or_else(|| {
                    AuditError::Corrupt {
                        seq: 0,
                        reason: format!("row with seq {min} outside the chain"),
                    }
                })?;
                Ok(Some((min, u64::try_from(max).unwrap_or(0))))
            }
            _ => Ok(None),
        }
    }

    fn hash_at(&mut self, seq: u64) -> Result<Option<String>, AuditError> {
        self.conn
            .query_row(
                "SELECT hash FROM audit_entries WHERE seq = ?1",
                [seq_param(seq)],
                |r| {
                    Ok(match r.get_ref(0)? {
                        ValueRef::Text(b) => String::from_utf8_lossy(b).into_owned(),
                        _ => String::new(),
                    })
                },
            )
            .optional()
            .map_err(self.err("read hash"))
    }

    fn latest(&mut self, stream: Stream) -> Result<Option<StoredRow>, AuditError> {
        // Host-level streams have no tenant; saying so lets SQLite use the
        // partial index.
        let host = match stream {
            Stream::Security | Stream::System => "tenant_id IS NULL AND ",
            Stream::Execution | Stream::Registry => "",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_entries WHERE {host}stream = ?1 ORDER BY seq DESC LIMIT 1"
        );
        Ok(self
            .rows(
                &sql,
                &[SqlValue::Text(stream.as_str().into())],
                "read latest",
            )?
            .into_iter()
            .next())
    }

    fn scan(&mut self, after_seq: u64, limit: usize) -> Result<Vec<StoredRow>, AuditError> {
        let sql =
            format!("SELECT {COLUMNS} FROM audit_entries WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        let params = [
            SqlValue::Integer(seq_param(after_seq)),
            SqlValue::Integer(limit as i64),
        ];
        self.rows(&sql, &params, "scan")
    }

    fn select(&mut self, f: &Filter) -> Result<Vec<StoredRow>, AuditError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_entries WHERE ");
        let mut p: Vec<SqlValue> = Vec::new();
        match &f.tenant {
            Some(t) => {
                sql.push_str("tenant_id = ?");
                p.push(SqlValue::Text(t.clone()));
            }
            None => sql.push_str("tenant_id IS NULL"),
        }
        if !f.streams.is_empty() {
            let marks = vec!["?"; f.streams.len()].join(", ");
            sql.push_str(&format!(" AND stream IN ({marks})"));
            p.extend(f.streams.iter().map(|s| SqlValue::Text(s.as_str().into())));
        }
        let mut eq = |col: &str, v: &Option<String>| {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                p.push(SqlValue::Text(v.clone()));
            }
        };
        eq("function", &f.function);
        eq("agent_id", &f.agent_id);
        eq("user_id", &f.user_id);
        eq("outcome", &f.outcome.map(|o| o.as_str().to_owned()));
        eq("execution_id", &f.execution_id);
        let mut cmp = |cond: &str, v: Option<i64>| {
            if let Some(v) = v {
                sql.push_str(cond);
                p.push(SqlValue::Integer(v));
            }
        };
        cmp(" AND time_ms >= ?", f.since_ms);
        cmp(" AND time_ms < ?", f.until_ms);
        cmp(" AND seq < ?", f.before_seq.map(seq_param));
        cmp(" AND seq > ?", f.after_seq.map(seq_param));
        sql.push_str(if f.ascending {
            " ORDER BY seq ASC LIMIT ?"
        } else {
            " ORDER BY seq DESC LIMIT ?"
        });
        p.push(SqlValue::Integer(f.limit as i64));
        self.rows(&sql, &p, "query")
    }

    fn capture(
        &mut self,
        tenant_id: &str,
        execution_id: &str,
    ) -> Result<Option<StoredCapture>, AuditError> {
        let now = Timestamp::now().unix_ms();
        self.conn
            .query_row(
                "SELECT seq, execution_id, input, output, expires_ms FROM audit_captures
                 WHERE tenant_id = ?1 AND execution_id = ?2 AND expires_ms > ?3 ORDER BY seq DESC LIMIT 1",
                params![tenant_id, execution_id, now],
                |r| {
                    Ok(StoredCapture {
                        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        execution_id: r.get(1)?,
                        input: r.get(2)?,
                        output: r.get(3)?,
                        expires_at: Timestamp::UNIX_EPOCH.saturating_add_ms(r.get(4)?),
                    })
                },
            )
            .optional()
            .map_err(self.err("read capture"))
    }

    fn begin_snapshot(&mut self) -> Result<(), AuditError> {
        self.conn
            .execute_batch("BEGIN")
            .map_err(self.err("begin read"))
    }

    fn end_snapshot(&mut self) -> Result<(), AuditError> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(self.err("end read"))
    }
}
