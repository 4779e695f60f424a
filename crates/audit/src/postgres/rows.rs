//! The store's operations on PostgreSQL; rows read leniently, as on
//! SQLite: a column that does not read as text makes the row malformed
//! (a verify finding), not an error.

use std::cell::Cell;

use aifn_types::Timestamp;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

use super::chain::{AppendError, begin_locked, head_in, insert_chained};
use super::{Failed, PostgresStore, Session, seq_param};
use crate::canon::{ChainFormat, GENESIS};
use crate::error::unreachable;
use crate::prepare::{IndexCols, NewEntry};
use crate::record::StoredCapture;
use crate::store::{AuditStore, Filter, PruneFacts, StoredRow};
use crate::{Appended, AuditError, Stream};

const COLUMNS: &str = "seq, stream, tenant_id, time_ms, function, agent_id, user_id, outcome, execution_id, body, prev_hash, hash";

fn read_row(r: &Row) -> Result<StoredRow, Error> {
    let seq: i64 = r.try_get(0)?;
    let mut bad = false;
    let mut text = |i: usize| match r.try_get::<_, Option<String>>(i) {
        Ok(v) => v,
        Err(_) => {
            bad = true;
            None
        }
    };
    let stream = text(1);
    let tenant_id = text(2);
    let function = text(4);
    let agent_id = text(5);
    let user_id = text(6);
    let outcome = text(7);
    let execution_id = text(8);
    let body = text(9);
    let prev_hash = text(10);
    let hash = text(11);
    let time_ms = r.try_get::<_, Option<i64>>(3).ok().flatten();
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
    if seq < 1 {
        // Reported by the caller: no row outside the chain is ever valid.
        return Ok(StoredRow {
            seq: 0,
            cols,
            body,
            prev_hash,
            hash,
        });
    }
    Ok(StoredRow {
        seq: u64::try_from(seq).unwrap_or(0),
        cols,
        body,
        prev_hash,
        hash,
    })
}

fn outside_chain() -> AuditError {
    AuditError::Corrupt {
        seq: 0,
        reason: "row with a seq below 1 outside the chain".into(),
    }
}

/// One `DELETE`/`SELECT` run with a prune's numbers.
async fn one_i64(
    s: &mut Session,
    sql: &str,
    p: &[&(dyn ToSql + Sync)],
) -> Result<Option<i64>, Error> {
    s.query_opt(sql, p)
        .await?
        .map(|r| r.try_get::<_, i64>(0))
        .transpose()
}

async fn seq_and_hash(
    s: &mut Session,
    sql: &str,
    p: &[&(dyn ToSql + Sync)],
) -> Result<Option<(i64, String)>, Error> {
    match s.query_opt(sql, p).await? {
        Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?))),
        None => Ok(None),
    }
}

impl PostgresStore {
    /// Reads rows; retried once on a fresh connection when the old one
    /// was lost, except inside a snapshot (which a new session would not
    /// have).
    fn rows(
        &mut self,
        op: &'static str,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<StoredRow>, AuditError> {
        let run = async |s: &mut Session| {
            s.query(sql, p)
                .await?
                .iter()
                .map(read_row)
                .collect::<Result<Vec<_>, _>>()
        };
        let rows = if self.session.as_ref().is_some_and(|s| s.in_tx) {
            self.with(op, run)?
        } else {
            self.with_retry(op, run)?
        };
        if rows.iter().any(|r| r.seq == 0) {
            return Err(outside_chain());
        }
        Ok(rows)
    }

    /// Runs a write transaction; on a connection found lost before
    /// anything was committed, once more on a fresh one.
    fn write<T>(
        &mut self,
        op: &'static str,
        f: impl AsyncFn(&mut Session, &Cell<bool>) -> Result<Result<T, AuditError>, Error>,
    ) -> Result<T, AuditError> {
        let committing = Cell::new(false);
        let run = async |s: &mut Session| f(s, &committing).await;
        let reused = self.session.is_some();
        let result = match self.try_with(run) {
            Err(Failed::Db(e)) if reused && unreachable(&e) && !committing.get() => {
                self.try_with(run)
            }
            other => other,
        };
        result.map_err(|e| self.failed(op, e))?
    }
}

/// Rolls back a write whose chain was found corrupt.
async fn abandon<T>(s: &mut Session, e: AppendError) -> Result<Result<T, AuditError>, Error> {
    match e {
        AppendError::Db(e) => Err(e),
        AppendError::Chain(c) => {
            s.end("ROLLBACK").await?;
            Ok(Err(c))
        }
    }
}

impl AuditStore for PostgresStore {
    fn append(&mut self, entries: &[NewEntry]) -> Result<Vec<Appended>, AuditError> {
        let format = self.format;
        self.write("append", async |s, committing| {
            begin_locked(s).await?;
            let head = match head_in(s).await {
                Ok(h) => h,
                Err(e) => return abandon(s, e).await,
            };
            let out = insert_chained(s, format, head, entries).await?;
            committing.set(true);
            s.end("COMMIT").await?;
            Ok(Ok(out))
        })
    }

    fn prune(
        &mut self,
        cutoff_ms: i64,
        now_ms: i64,
        make: &mut dyn FnMut(&PruneFacts) -> Result<NewEntry, AuditError>,
    ) -> Result<(PruneFacts, Appended), AuditError> {
        let format = self.format;
        let make = std::cell::RefCell::new(make);
        self.write("prune", async |s, committing| {
            begin_locked(s).await?;
            let head = match head_in(s).await {
                Ok(h) => h,
                Err(e) => return abandon(s, e).await,
            };
            // Only a prefix may go: the chain must stay contiguous.
            let keep_from = one_i64(
                s,
                "SELECT seq FROM audit_entries WHERE time_ms >= $1 ORDER BY seq LIMIT 1",
                &[&cutoff_ms],
            )
            .await?;
            let last_old = match keep_from {
                Some(b) => seq_and_hash(
                    s,
                    "SELECT seq, hash FROM audit_entries WHERE seq < $1 ORDER BY seq DESC LIMIT 1",
                    &[&b],
                )
                .await?,
                None => {
                    seq_and_hash(
                        s,
                        "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
                        &[],
                    )
                    .await?
                }
            };
            let (pruned, anchor_seq, anchor_hash) = match last_old {
                Some((anchor, hash)) => {
                    let n = s
                        .execute("DELETE FROM audit_entries WHERE seq <= $1", &[&anchor])
                        .await?;
                    (n, u64::try_from(anchor).unwrap_or(0), hash)
                }
                None => {
                    // Nothing old enough: the anchor stays where the chain starts.
                    let first = seq_and_hash(
                        s,
                        "SELECT seq, prev_hash FROM audit_entries ORDER BY seq LIMIT 1",
                        &[],
                    )
                    .await?;
                    match first {
                        Some((seq, prev)) => (0, u64::try_from(seq - 1).unwrap_or(0), prev),
                        None => (0, 0, hex::encode(GENESIS)),
                    }
                }
            };
            let captures_expired = s
                .execute(
                    "DELETE FROM audit_captures WHERE seq <= $1 OR expires_ms <= $2",
                    &[&seq_param(anchor_seq), &now_ms],
                )
                .await?;
            let facts = PruneFacts {
                pruned,
                anchor_seq,
                anchor_hash,
                captures_expired,
            };
            let made = (make.borrow_mut())(&facts);
            let entry = match made {
                Ok(e) => e,
                Err(e) => return abandon(s, AppendError::Chain(e)).await,
            };
            let appended = insert_chained(s, format, head, std::slice::from_ref(&entry)).await?;
            committing.set(true);
            s.end("COMMIT").await?;
            Ok(appended
                .into_iter()
                .next()
                .map(|a| (facts, a))
                .ok_or(AuditError::Closed))
        })
    }

    fn expire_captures(&mut self, now_ms: i64) -> Result<u64, AuditError> {
        self.with_retry("expire captures", async |s| {
            s.execute(
                "DELETE FROM audit_captures WHERE expires_ms <= $1",
                &[&now_ms],
            )
            .await
        })
    }

    fn format(&self) -> ChainFormat {
        self.format
    }

    fn head(&mut self) -> Result<Option<(u64, String)>, AuditError> {
        // Two columns, not the row: the writer reads the head at every open.
        let head = self.with_retry("read head", async |s| {
            match s
                .query_opt(
                    "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .await?
            {
                Some(r) => Ok(Some((
                    r.try_get::<_, i64>(0)?,
                    r.try_get::<_, Option<String>>(1)?,
                ))),
                None => Ok(None),
            }
        })?;
        match head {
            None => Ok(None),
            Some((seq, hash)) => {
                let seq = u64::try_from(seq)
                    .ok()
                    .filter(|&s| s >= 1)
                    .ok_or_else(outside_chain)?;
                Ok(Some((seq, hash.unwrap_or_default())))
            }
        }
    }

    fn bounds(&mut self) -> Result<Option<(u64, u64)>, AuditError> {
        let run = async |s: &mut Session| {
            let r = s
                .query_opt("SELECT MIN(seq), MAX(seq) FROM audit_entries", &[])
                .await?;
            match r {
                Some(r) => Ok((
                    r.try_get::<_, Option<i64>>(0)?,
                    r.try_get::<_, Option<i64>>(1)?,
                )),
                None => Ok((None, None)),
            }
        };
        let (min, max) = self.with_retry("read bounds", run)?;
        match (min, max) {
            (Some(min), Some(max)) => {
                let min = u64::try_from(min)
                    .ok()
                    .filter(|&m| m >= 1)
                    .ok_or_else(outside_chain)?;
                Ok(Some((min, u64::try_from(max).unwrap_or(0))))
            }
            _ => Ok(None),
        }
    }

    fn hash_at(&mut self, seq: u64) -> Result<Option<String>, AuditError> {
        let seq = seq_param(seq);
        self.with_retry("read hash", async |s| {
            Ok(
                s.query_opt("SELECT hash FROM audit_entries WHERE seq = $1", &[&seq])
                    .await?
                    .map(|r| {
                        r.try_get::<_, Option<String>>(0)
                            .ok()
                            .flatten()
                            .unwrap_or_default()
                    }),
            )
        })
    }

    fn latest(&mut self, stream: Stream) -> Result<Option<StoredRow>, AuditError> {
        // Host-level streams have no tenant; saying so uses the partial index.
        let host = match stream {
            Stream::Security | Stream::System => "tenant_id IS NULL AND ",
            Stream::Execution | Stream::Registry => "",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_entries WHERE {host}stream = $1 ORDER BY seq DESC LIMIT 1"
        );
        let name = stream.as_str();
        Ok(self.rows("read latest", &sql, &[&name])?.into_iter().next())
    }

    fn scan(&mut self, after_seq: u64, limit: usize) -> Result<Vec<StoredRow>, AuditError> {
        let sql =
            format!("SELECT {COLUMNS} FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows("scan", &sql, &[&seq_param(after_seq), &limit])
    }

    fn select(&mut self, f: &Filter) -> Result<Vec<StoredRow>, AuditError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_entries WHERE ");
        let mut p: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mark = |p: &mut Vec<Box<dyn ToSql + Sync>>, v: Box<dyn ToSql + Sync>| {
            p.push(v);
            format!("${}", p.len())
        };
        match &f.tenant {
            Some(t) => {
                let m = mark(&mut p, Box::new(t.clone()));
                sql.push_str(&format!("tenant_id = {m}"));
            }
            None => sql.push_str("tenant_id IS NULL"),
        }
        if !f.streams.is_empty() {
            let names: Vec<String> = f.streams.iter().map(|s| s.as_str().to_owned()).collect();
            let m = mark(&mut p, Box::new(names));
            sql.push_str(&format!(" AND stream = ANY({m})"));
        }
        let outcome = f.outcome.map(|o| o.as_str().to_owned());
        for (col, v) in [
            ("function", &f.function),
            ("agent_id", &f.agent_id),
            ("user_id", &f.user_id),
            ("outcome", &outcome),
            ("execution_id", &f.execution_id),
        ] {
            if let Some(v) = v {
                let m = mark(&mut p, Box::new(v.clone()));
                sql.push_str(&format!(" AND {col} = {m}"));
            }
        }
        for (cond, v) in [
            ("time_ms >=", f.since_ms),
            ("time_ms <", f.until_ms),
            ("seq <", f.before_seq.map(seq_param)),
            ("seq >", f.after_seq.map(seq_param)),
        ] {
            if let Some(v) = v {
                let m = mark(&mut p, Box::new(v));
                sql.push_str(&format!(" AND {cond} {m}"));
            }
        }
        let limit = mark(&mut p, Box::new(i64::try_from(f.limit).unwrap_or(i64::MAX)));
        let order = if f.ascending { "ASC" } else { "DESC" };
        sql.push_str(&format!(" ORDER BY seq {order} LIMIT {limit}"));
        let refs: Vec<&(dyn ToSql + Sync)> = p.iter().map(|b| &**b).collect();
        self.rows("query", &sql, &refs)
    }

    fn capture(
        &mut self,
        tenant_id: &str,
        execution_id: &str,
    ) -> Result<Option<StoredCapture>, AuditError> {
        let now = Timestamp::now().unix_ms();
        self.with_retry("read capture", async |s| {
            let row = s
                .query_opt(
                    "SELECT seq, execution_id, input, output, expires_ms FROM audit_captures
                     WHERE tenant_id = $1 AND execution_id = $2 AND expires_ms > $3
                     ORDER BY seq DESC LIMIT 1",
                    &[&tenant_id, &execution_id, &now],
                )
                .await?;
            row.map(|r| {
                Ok(StoredCapture {
                    seq: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
                    execution_id: r.try_get(1)?,
                    input: r.try_get(2)?,
                    output: r.try_get(3)?,
                    expires_at: Timestamp::UNIX_EPOCH.saturating_add_ms(r.try_get(4)?),
                })
            })
            .transpose()
        })
    }

    fn begin_snapshot(&mut self) -> Result<(), AuditError> {
        self.with("begin read", async |s| {
            s.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
        })
    }

    fn end_snapshot(&mut self) -> Result<(), AuditError> {
        self.with("end read", async |s| s.end("COMMIT").await)
    }
}
