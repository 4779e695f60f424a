//! The SQLite backend: WAL with `synchronous=FULL`, so each commit fsyncs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use crate::canon::{GENESIS, chain_hash, decode_hash};
use crate::record::{IndexCols, NewEntry, StoredCapture};
use crate::store::{AuditStore, Filter, PruneFacts, StoredRow};
use crate::timefmt;
use crate::{Appended, AuditError, Stream};

/// Schema migrations; `PRAGMA user_version` is the number applied. The SQL
/// is kept portable (no AUTOINCREMENT, no SQLite-only types).
const MIGRATIONS: &[&str] = &[
    // 1: the chained entries and the unchained captures.
    "CREATE TABLE audit_entries (
        seq INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        tenant_id TEXT,
        time_ms BIGINT NOT NULL,
        function TEXT,
        agent_id TEXT,
        user_id TEXT,
        outcome TEXT,
        execution_id TEXT,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_entries_tenant ON audit_entries (tenant_id, seq);
    CREATE INDEX audit_entries_stream ON audit_entries (stream, seq);
    CREATE TABLE audit_captures (
        seq BIGINT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        input BLOB NOT NULL,
        output BLOB,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX audit_captures_execution ON audit_captures (tenant_id, execution_id);
    CREATE INDEX audit_captures_expiry ON audit_captures (expires_ms);",
    // 2: the stream index only for host-level rows (no tenant), so that an
    // execution record updates one index, not two. Tenant queries use the
    // tenant index; `latest` and host queries say `tenant_id IS NULL`.
    "DROP INDEX audit_entries_stream;
    CREATE INDEX audit_entries_host ON audit_entries (stream, seq) WHERE tenant_id IS NULL;",
];

const COLUMNS: &str = "seq, stream, tenant_id, time_ms, function, agent_id, user_id, outcome, execution_id, body, prev_hash, hash";

const INSERT: &str = "INSERT INTO audit_entries
    (seq, stream, tenant_id, time_ms, function, agent_id, user_id, outcome, execution_id, body, prev_hash, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const INSERT_CAPTURE: &str = "INSERT INTO audit_captures
    (seq, tenant_id, execution_id, input, output, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub(crate) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

fn seq_param(seq: u64) -> i64 {
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
                path: path.to_owned(),
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
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
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
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(e("read user_version"))?;
        let supported = MIGRATIONS.len() as i64;
        if version < 1 || version > supported {
            return Err(AuditError::Schema {
                path: path.to_owned(),
                found: version,
                supported,
            });
        }
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
        move |e| AuditError::db(&self.path, op, e)
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), AuditError> {
    let e = |op| move |err| AuditError::db(path, op, err);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(e("read user_version"))?;
    let supported = MIGRATIONS.len() as i64;
    if !(0..=supported).contains(&version) {
        return Err(AuditError::Schema {
            path: path.to_owned(),
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e("begin migration"))?;
        tx.execute_batch(sql).map_err(e("migrate"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(e("set user_version"))?;
        tx.commit().map_err(e("commit migration"))?;
    }
    Ok(())
}

/// The head inside a transaction: (last seq, last hash), or the genesis.
fn head_in(tx: &Transaction<'_>, path: &Path) -> Result<(u64, [u8; 32]), AuditError> {
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

/// Inserts entries after `head`, chaining them; returns their seq and hash.
fn insert_chained(
    tx: &Transaction<'_>,
    path: &Path,
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
        let hash = chain_hash(&prev, seq, &entry.body);
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
fn read_row(r: &Row<'_>) -> rusqlite::Result<(i64, StoredRow)> {
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
    fn rows(
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
        let out = insert_chained(&tx, path, head, entries)?;
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
        let appended = insert_chained(&tx, path, head, std::slice::from_ref(&entry))?;
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
        let now = timefmt::now_ms();
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
                        expires_at: timefmt::from_ms(r.get(4)?),
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::record::{SecurityEvent, SecurityReason, prepare_registry, prepare_security};
    use aifn_types::{RegistryAction, RegistryActionKind};

    fn plan(store: &SqliteStore, sql: &str) -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .expect("plan rows");
        rows.map(|r| r.expect("plan row"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn a_version_1_database_is_migrated_keeps_its_rows_and_uses_the_host_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite3");
        let security = SecurityEvent {
            time: SystemTime::now(),
            route: "/v1/functions".into(),
            reason: SecurityReason::MissingKey,
            remote_addr: None,
            node: String::new(),
        };
        let registry = RegistryAction {
            tenant_id: "acme".into(),
            actor: "alice".into(),
            action: RegistryActionKind::Upload,
            target: "echo@1".into(),
            sha256: None,
            notes: None,
        };
        {
            // A database as the first release left it, with one record.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0]).expect("migration 1");
            conn.pragma_update(None, "user_version", 1)
                .expect("version");
            drop(conn);
            let mut v1 = SqliteStore::open_reader(&path).expect("v1 readable");
            assert_eq!(v1.head().expect("head"), None);
        }
        {
            let conn = Connection::open(&path).expect("open");
            let entry = prepare_security(security.clone(), "n").expect("entry");
            let hash = chain_hash(&GENESIS, 1, &entry.body);
            conn.execute(
                INSERT,
                params![
                    1,
                    entry.cols.stream,
                    entry.cols.tenant_id,
                    entry.cols.time_ms,
                    None::<String>,
                    None::<String>,
                    None::<String>,
                    None::<String>,
                    None::<String>,
                    entry.body,
                    hex::encode(GENESIS),
                    hex::encode(hash)
                ],
            )
            .expect("v1 row");
        }
        let mut store = SqliteStore::open_writer(&path, None).expect("migrates");
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let appended = store
            .append(&[
                prepare_registry(&registry, "n").expect("entry"),
                prepare_security(security, "n").expect("entry"),
            ])
            .expect("append after migration");
        assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), [2, 3]);
        let latest = store
            .latest(Stream::Security)
            .expect("latest")
            .expect("a security row");
        assert_eq!(latest.seq, 3);
        assert!(store.latest(Stream::System).expect("latest").is_none());
        assert_eq!(
            store
                .latest(Stream::Registry)
                .expect("latest")
                .map(|r| r.seq),
            Some(2)
        );
        let host = plan(
            &store,
            "SELECT seq FROM audit_entries WHERE tenant_id IS NULL AND stream = 'system' ORDER BY seq DESC LIMIT 1",
        );
        assert!(host.contains("audit_entries_host"), "{host}");
        let tenant = plan(
            &store,
            "SELECT seq FROM audit_entries WHERE tenant_id = 'acme' ORDER BY seq DESC LIMIT 1",
        );
        assert!(tenant.contains("audit_entries_tenant"), "{tenant}");
    }
}
