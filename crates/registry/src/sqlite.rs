//! The SQLite backend: one database file in WAL mode, one write connection
//! behind a mutex (writes are serialized anyway) and a small pool of read
//! connections, which WAL lets run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aifn_types::{
    FunctionName, InspectionReport, ModuleReport, Role, Subject, TenantId, VersionState,
};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
};

use crate::schema::MIGRATIONS;
use crate::store::{
    ActiveLookup, NewVersionRow, RegistryStore, Result, StoredKey, VersionHead, WriteTx,
};
use crate::{
    Decision, FunctionDetail, FunctionSummary, KeyInfo, RegistryError, StateCounts, VersionInfo,
    VersionRef,
};

/// Idle read connections kept for reuse; more are opened under load.
const MAX_IDLE_READERS: usize = 8;

/// Maps a SQLite error to the registry's, keeping SQL out of `Display`.
fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => RegistryError::DiskFull,
        _ => RegistryError::Storage {
            op,
            source: Box::new(e),
        },
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Corrupt(format!("{what}: {e}"))
}

/// Stored text that must parse as one of the shared name types.
fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| corrupt(what, e))
}

pub(crate) struct SqliteStore {
    path: PathBuf,
    busy_timeout: Duration,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub(crate) fn open(
        path: &Path,
        busy_timeout: Duration,
        max_size_bytes: Option<u64>,
    ) -> Result<SqliteStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(db("open database"))?;
        conn.busy_timeout(busy_timeout)
            .map_err(db("set busy timeout"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(RegistryError::Corrupt(format!(
                "journal mode is {mode}, not wal"
            )));
        }
        // FULL: a commit that returned is on disk, not just in the WAL buffer.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(db("enable foreign keys"))?;
        migrate(&mut conn)?;
        if let Some(max) = max_size_bytes {
            let page_size: i64 = conn
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .map_err(db("read page size"))?;
            let page_size = u64::try_from(page_size).unwrap_or(4096).max(1);
            let pages = i64::try_from(max / page_size).unwrap_or(i64::MAX).max(1);
            conn.pragma_update(None, "max_page_count", pages)
                .map_err(db("cap database size"))?;
        }
        Ok(SqliteStore {
            path: path.to_owned(),
            busy_timeout,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn open_reader(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(db("open reader"))?;
        conn.busy_timeout(self.busy_timeout)
            .map_err(db("set busy timeout"))?;
        // Readers never write, whatever a bug asks of them.
        conn.pragma_update(None, "query_only", true)
            .map_err(db("make reader query-only"))?;
        Ok(conn)
    }

    fn readers(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a pooled read connection: one statement, one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_reader(false, f)
    }

    /// Runs `f` inside one read transaction, so several statements see one
    /// snapshot.
    fn snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_reader(true, f)
    }

    fn with_reader<T>(&self, in_tx: bool, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = if in_tx {
            match conn.transaction() {
                Ok(tx) => f(&tx),
                Err(e) => Err(db("begin read")(e)),
            }
        } else {
            f(&conn)
        };
        if conn.is_autocommit() {
            let mut idle = self.readers();
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    // IMMEDIATE: two processes opening a fresh file migrate one after the other.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db("begin migration"))?;
    let found: u32 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db("read schema version"))?;
    if found > supported {
        return Err(RegistryError::SchemaTooNew { found, supported });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(db("migrate schema"))?;
        let now = u32::try_from(done + 1).unwrap_or(u32::MAX);
        tx.pragma_update(None, "user_version", now)
            .map_err(db("record schema version"))?;
    }
    tx.commit().map_err(db("commit migration"))
}

/// Columns of a [`VersionInfo`], decisions folded into one JSON array so a
/// version is always one query.
const VERSION_COLUMNS: &str = "f.tenant, f.name, v.version, v.sha256, v.author, v.uploaded_at, v.state, \
     v.manifest, v.report, \
     (SELECT json_group_array(json_object('action', d.action, 'actor', d.actor, 'at', d.at, \
                                          'notes', d.notes, 'sha256', d.sha256) ORDER BY d.id) \
      FROM decisions d WHERE d.version_id = v.id)";

/// A version row as SQLite returns it, before decoding.
struct RawVersion {
    tenant: String,
    name: String,
    version: u32,
    sha256: String,
    author: String,
    uploaded_at: String,
    state: String,
    manifest: String,
    report: String,
    decisions: String,
}

impl RawVersion {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawVersion> {
        Ok(RawVersion {
            tenant: row.get(0)?,
            name: row.get(1)?,
            version: row.get(2)?,
            sha256: row.get(3)?,
            author: row.get(4)?,
            uploaded_at: row.get(5)?,
            state: row.get(6)?,
            manifest: row.get(7)?,
            report: row.get(8)?,
            decisions: row.get(9)?,
        })
    }

    fn decode(self) -> Result<VersionInfo> {
        Ok(VersionInfo {
            tenant: parse("tenant", &self.tenant)?,
            name: parse("function name", &self.name)?,
            version: self.version,
            sha256: self.sha256,
            author: parse("author", &self.author)?,
            uploaded_at: self.uploaded_at,
            state: parse("state", &self.state)?,
            manifest: serde_json::from_str(&self.manifest).map_err(|e| corrupt("manifest", e))?,
            report: serde_json::from_str(&self.report).map_err(|e| corrupt("report", e))?,
            decisions: serde_json::from_str::<Vec<Decision>>(&self.decisions)
                .map_err(|e| corrupt("decisions", e))?,
        })
    }
}

fn versions_where(
    conn: &Connection,
    filter: &str,
    order: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<VersionInfo>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN functions f ON f.id = v.function_id WHERE {filter} ORDER BY {order}"
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(db("prepare version query"))?;
    let raws = stmt
        .query_map(args, RawVersion::from_row)
        .map_err(db("query versions"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("read versions"))?;
    raws.into_iter().map(RawVersion::decode).collect()
}

fn version_of(conn: &Connection, target: &VersionRef) -> Result<Option<VersionInfo>> {
    let found = versions_where(
        conn,
        "f.tenant = ?1 AND f.name = ?2 AND v.version = ?3",
        "v.version",
        &[
            &target.tenant.as_str(),
            &target.name.as_str(),
            &target.version,
        ],
    )?;
    Ok(found.into_iter().next())
}

const SUMMARY_SQL: &str = "SELECT f.name, \
       (SELECT l.description FROM versions l WHERE l.function_id = f.id ORDER BY l.version DESC LIMIT 1), \
       max(CASE WHEN v.state = 'active' THEN v.version END), \
       max(v.version), \
       sum(CASE WHEN v.state = 'pending' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'active' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'rejected' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'revoked' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'superseded' THEN 1 ELSE 0 END) \
     FROM functions f JOIN versions v ON v.function_id = f.id";

fn summaries(
    conn: &Connection,
    name: Option<&FunctionName>,
    tenant: &TenantId,
) -> Result<Vec<FunctionSummary>> {
    let filter = match name {
        Some(_) => "f.tenant = ?1 AND f.name = ?2",
        None => "f.tenant = ?1",
    };
    let sql = format!("{SUMMARY_SQL} WHERE {filter} GROUP BY f.id, f.name ORDER BY f.name");
    let name = name.map(FunctionName::as_str);
    let args: &[&dyn rusqlite::ToSql] = match &name {
        Some(n) => &[&tenant.as_str(), n],
        None => &[&tenant.as_str()],
    };
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(db("prepare function query"))?;
    type RawSummary = (String, String, Option<u32>, u32, [u32; 5]);
    let raws = stmt
        .query_map(args, |r| -> rusqlite::Result<RawSummary> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
            ))
        })
        .map_err(db("query functions"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("read functions"))?;
    raws.into_iter()
        .map(|(name, description, active_version, latest_version, c)| {
            Ok(FunctionSummary {
                name: parse("function name", &name)?,
                description,
                active_version,
                latest_version,
                counts: StateCounts {
                    pending: c[0],
                    active: c[1],
                    rejected: c[2],
                    revoked: c[3],
                    superseded: c[4],
                },
            })
        })
        .collect()
}

const KEY_COLUMNS: &str =
    "key_id, tenant, role, subject, created_at, created_by, revoked_at, revoked_by, secret_sha256";

type RawKey = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Vec<u8>,
);

fn raw_key(r: &Row<'_>) -> rusqlite::Result<RawKey> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn decode_key(raw: RawKey) -> Result<StoredKey> {
    let (key_id, tenant, role, subject, created_at, created_by, revoked_at, revoked_by, hash) = raw;
    Ok(StoredKey {
        info: KeyInfo {
            key_id,
            tenant: parse("key tenant", &tenant)?,
            role: parse::<Role>("key role", &role)?,
            subject: parse("key subject", &subject)?,
            created_at,
            created_by: parse("key creator", &created_by)?,
            revoked_at,
            revoked_by: revoked_by.map(|s| parse("key revoker", &s)).transpose()?,
        },
        secret_sha256: hash,
    })
}

fn key_of(conn: &Connection, key_id: &str) -> Result<Option<StoredKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([key_id], raw_key).optional())
        .map_err(db("read key"))?;
    raw.map(decode_key).transpose()
}

fn head(r: &Row<'_>) -> rusqlite::Result<(i64, i64, u32, String, String, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode_head(raw: (i64, i64, u32, String, String, String)) -> Result<VersionHead> {
    let (id, function_id, version, state, sha256, author) = raw;
    Ok(VersionHead {
        id,
        function_id,
        version,
        state: parse("state", &state)?,
        sha256,
        author,
    })
}

/// A write transaction on the write connection.
struct SqliteTx<'a> {
    conn: &'a Connection,
}

impl WriteTx for SqliteTx<'_> {
    fn function_id(&mut self, tenant: &TenantId, name: &FunctionName) -> Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT id FROM functions WHERE tenant = ?1 AND name = ?2")
            .and_then(|mut s| {
                s.query_row([tenant.as_str(), name.as_str()], |r| r.get(0))
                    .optional()
            })
            .map_err(db("find function"))
    }

    fn insert_function(
        &mut self,
        tenant: &TenantId,
        name: &FunctionName,
        created_at: &str,
    ) -> Result<i64> {
        self.conn
            .prepare_cached("INSERT INTO functions (tenant, name, created_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.insert([tenant.as_str(), name.as_str(), created_at]))
            .map_err(db("insert function"))
    }

    fn latest_report(&mut self, function_id: i64) -> Result<Option<(u32, ModuleReport)>> {
        let raw: Option<(u32, String)> = self
            .conn
            .prepare_cached("SELECT version, report FROM versions WHERE function_id = ?1 ORDER BY version DESC LIMIT 1")
            .and_then(|mut s| s.query_row([function_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(db("read latest version"))?;
        raw.map(|(v, json)| {
            let report: InspectionReport =
                serde_json::from_str(&json).map_err(|e| corrupt("report", e))?;
            Ok((v, report.module))
        })
        .transpose()
    }

    fn put_module(&mut self, sha256: &str, bytes: &[u8]) -> Result<()> {
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "INSERT INTO modules (sha256, size_bytes, bytes) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![sha256, size, bytes]))
            .map_err(db("store module"))?;
        Ok(())
    }

    fn insert_version(&mut self, row: &NewVersionRow<'_>) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, \
                 manifest, report) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.function_id,
                    row.version,
                    row.sha256,
                    row.author.as_str(),
                    row.uploaded_at,
                    row.description,
                    row.manifest_json,
                    row.report_json
                ])
            })
            .map_err(db("insert version"))?;
        Ok(())
    }

    fn version_head(&mut self, target: &VersionRef) -> Result<Option<VersionHead>> {
        let raw = self
            .conn
            .prepare_cached(
                "SELECT v.id, v.function_id, v.version, v.state, v.sha256, v.author \
                 FROM versions v JOIN functions f ON f.id = v.function_id \
                 WHERE f.tenant = ?1 AND f.name = ?2 AND v.version = ?3",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![target.tenant.as_str(), target.name.as_str(), target.version],
                    head,
                )
                .optional()
            })
            .map_err(db("read version"))?;
        raw.map(decode_head).transpose()
    }

    fn active_head(&mut self, function_id: i64) -> Result<Option<VersionHead>> {
        let raw = self
            .conn
            .prepare_cached(
                "SELECT id, function_id, version, state, sha256, author FROM versions \
                 WHERE function_id = ?1 AND state = 'active'",
            )
            .and_then(|mut s| s.query_row([function_id], head).optional())
            .map_err(db("read active version"))?;
        raw.map(decode_head).transpose()
    }

    fn set_state(&mut self, version_id: i64, from: VersionState, to: VersionState) -> Result<()> {
        let changed = self
            .conn
            .prepare_cached("UPDATE versions SET state = ?1 WHERE id = ?2 AND state = ?3")
            .and_then(|mut s| s.execute(params![to.as_str(), version_id, from.as_str()]))
            .map_err(db("change version state"))?;
        if changed != 1 {
            // Cannot happen under BEGIN IMMEDIATE; refuse rather than guess.
            return Err(RegistryError::Corrupt(format!(
                "version row {version_id} was not {from}"
            )));
        }
        Ok(())
    }

    fn insert_decision(&mut self, version_id: i64, d: &Decision) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO decisions (version_id, action, actor, at, notes, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![version_id, d.action.as_str(), d.actor.as_str(), d.at, d.notes, d.sha256])
            })
            .map_err(db("record decision"))?;
        Ok(())
    }

    fn version(&mut self, target: &VersionRef) -> Result<Option<VersionInfo>> {
        version_of(self.conn, target)
    }

    fn insert_key(&mut self, key: &StoredKey) -> Result<()> {
        let k = &key.info;
        self.conn
            .prepare_cached(
                "INSERT INTO api_keys (key_id, tenant, role, subject, secret_sha256, created_at, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    k.key_id,
                    k.tenant.as_str(),
                    k.role.as_str(),
                    k.subject.as_str(),
                    key.secret_sha256,
                    k.created_at,
                    k.created_by.as_str()
                ])
            })
            .map_err(db("insert key"))?;
        Ok(())
    }

    fn key(&mut self, key_id: &str) -> Result<Option<KeyInfo>> {
        Ok(key_of(self.conn, key_id)?.map(|k| k.info))
    }

    fn revoke_key(&mut self, key_id: &str, at: &str, by: &Subject) -> Result<()> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE api_keys SET revoked_at = ?1, revoked_by = ?2 WHERE key_id = ?3 AND revoked_at IS NULL",
            )
            .and_then(|mut s| s.execute(params![at, by.as_str(), key_id]))
            .map_err(db("revoke key"))?;
        if changed != 1 {
            return Err(RegistryError::KeyAlreadyRevoked {
                key_id: key_id.to_owned(),
            });
        }
        Ok(())
    }
}

impl RegistryStore for SqliteStore {
    fn write(&self, body: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()> {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            // A panic mid-write left a transaction open: discard it.
            conn.execute_batch("ROLLBACK")
                .map_err(db("roll back abandoned write"))?;
        }
        // IMMEDIATE takes the write lock up front, so what the body reads
        // stays true until commit, also against other processes.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin write"))?;
        body(&mut SqliteTx { conn: &tx })?;
        tx.commit().map_err(db("commit"))
    }

    fn list_functions(&self, tenant: &TenantId) -> Result<Vec<FunctionSummary>> {
        self.read(|c| summaries(c, None, tenant))
    }

    fn function(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<FunctionDetail>> {
        self.snapshot(|c| {
            let Some(summary) = summaries(c, Some(name), tenant)?.into_iter().next() else {
                return Ok(None);
            };
            let versions = versions_where(
                c,
                "f.tenant = ?1 AND f.name = ?2",
                "v.version DESC",
                &[&tenant.as_str(), &name.as_str()],
            )?;
            Ok(Some(FunctionDetail { summary, versions }))
        })
    }

    fn version(&self, target: &VersionRef) -> Result<Option<VersionInfo>> {
        self.read(|c| version_of(c, target))
    }

    fn versions_in_state(
        &self,
        tenant: &TenantId,
        state: VersionState,
    ) -> Result<Vec<VersionInfo>> {
        self.read(|c| {
            versions_where(
                c,
                "f.tenant = ?1 AND v.state = ?2",
                "f.name, v.version",
                &[&tenant.as_str(), &state.as_str()],
            )
        })
    }

    fn active(&self, tenant: &TenantId, name: &FunctionName) -> Result<ActiveLookup> {
        // One indexed query tells "no such function" from "none active".
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM functions f \
             LEFT JOIN versions v ON v.function_id = f.id AND v.state = 'active' \
             WHERE f.tenant = ?1 AND f.name = ?2"
        );
        self.read(|c| {
            let row = c
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row([tenant.as_str(), name.as_str()], |r| {
                        let version: Option<u32> = r.get(2)?;
                        version.map(|_| RawVersion::from_row(r)).transpose()
                    })
                    .optional()
                })
                .map_err(db("find active version"))?;
            Ok(match row {
                None => ActiveLookup::NoFunction,
                Some(None) => ActiveLookup::NoActive,
                Some(Some(raw)) => ActiveLookup::Active(Box::new(raw.decode()?)),
            })
        })
    }

    fn module(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.read(|c| {
            c.prepare_cached("SELECT bytes FROM modules WHERE sha256 = ?1")
                .and_then(|mut s| s.query_row([sha256], |r| r.get(0)).optional())
                .map_err(db("read module"))
        })
    }

    fn key(&self, key_id: &str) -> Result<Option<StoredKey>> {
        self.read(|c| key_of(c, key_id))
    }

    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE (?1 IS NULL OR tenant = ?1) ORDER BY tenant, created_at, key_id"
        );
        self.read(|c| {
            let raws = c
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map([tenant.map(TenantId::as_str)], raw_key)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db("list keys"))?;
            raws.into_iter()
                .map(|r| decode_key(r).map(|k| k.info))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The invocation hot path must stay an index lookup as data grows.
    #[test]
    fn active_lookup_uses_indexes_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("r.sqlite3"), Duration::from_secs(1), None)
            .expect("open");
        let conn = store.open_reader().expect("reader");
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT {VERSION_COLUMNS} FROM functions f \
             LEFT JOIN versions v ON v.function_id = f.id AND v.state = 'active' \
             WHERE f.tenant = 'a' AND f.name = 'b'"
        );
        let mut stmt = conn.prepare(&sql).expect("prepare");
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN")),
            "plan has a scan: {plan:?}"
        );
        assert!(
            plan.iter().any(|s| s.contains("versions_one_active")),
            "plan: {plan:?}"
        );
    }
}
