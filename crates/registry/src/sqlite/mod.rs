//! The SQLite backend: one database file in WAL mode, one write connection
//! behind a mutex (writes are serialized anyway) and a small pool of read
//! connections, which WAL lets run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

mod policies;
mod rows;
mod schema;
mod tx;

use aifn_types::{FunctionName, Subject, TenantId, VersionState};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::store::{ActiveLookup, RegistryStore, Result, StoredKey, WriteTx};
use crate::{
    AgentInfo, FunctionDetail, FunctionSummary, KeyInfo, PolicyInfo, RegistryError, TenantInfo,
    VersionInfo, VersionRef,
};
use rows::{KEY_COLUMNS, VERSION_COLUMNS, VersionRow};

/// Idle read connections kept for reuse; more are opened under load.
const MAX_IDLE_READERS: usize = 8;

/// Maps a SQLite error to the registry's, keeping SQL out of `Display`. A
/// stored value that does not read as its type is corruption.
fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
    move |e| match e {
        rusqlite::Error::FromSqlConversionFailure(col, _, source) => {
            RegistryError::Corrupt(format!("{op}: column {col}: {source}"))
        }
        e if e.sqlite_error_code() == Some(ErrorCode::DiskFull) => RegistryError::DiskFull,
        e => RegistryError::Storage {
            op,
            source: Box::new(e),
        },
    }
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
        schema::migrate(&mut conn)?;
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
        body(&mut tx::SqliteTx { conn: &tx })?;
        tx.commit().map_err(db("commit"))
    }

    fn list_functions(&self, tenant: &TenantId) -> Result<Vec<FunctionSummary>> {
        self.read(|c| rows::summaries(c, None, tenant))
    }

    fn function(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<FunctionDetail>> {
        self.snapshot(|c| {
            let Some(summary) = rows::summaries(c, Some(name), tenant)?.into_iter().next() else {
                return Ok(None);
            };
            let versions = rows::versions_where(
                c,
                "f.tenant = ?1 AND f.name = ?2",
                "v.version DESC",
                &[tenant, name],
            )?;
            Ok(Some(FunctionDetail { summary, versions }))
        })
    }

    fn version(&self, target: &VersionRef) -> Result<Option<VersionInfo>> {
        self.read(|c| rows::version_of(c, target))
    }

    fn latest_version(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<u32>> {
        self.read(|c| rows::latest_version(c, tenant, name))
    }

    fn source(&self, target: &VersionRef) -> Result<Option<Option<aifn_types::Source>>> {
        self.read(|c| rows::source_of(c, target))
    }

    fn versions_in_state(
        &self,
        tenant: &TenantId,
        state: VersionState,
    ) -> Result<Vec<VersionInfo>> {
        self.read(|c| {
            rows::versions_where(
                c,
                "f.tenant = ?1 AND v.state = ?2",
                "f.name, v.version",
                &[tenant, &state],
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
                    s.query_row(rusqlite::params![tenant, name], |r| {
                        let version: Option<u32> = r.get(2)?;
                        version.map(|_| VersionRow::read(r)).transpose()
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
        self.read(|c| rows::key_of(c, key_id))
    }

    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE (?1 IS NULL OR tenant = ?1) ORDER BY tenant, created_at, key_id"
        );
        self.read(|c| {
            c.prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map([tenant], |r| rows::key(r).map(|k| k.info))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db("list keys"))
        })
    }

    fn policies(&self, tenant: &TenantId) -> Result<Vec<PolicyInfo>> {
        self.read(|c| policies::policies(c, tenant))
    }

    fn policy(&self, tenant: &TenantId, subject: &Subject) -> Result<Option<PolicyInfo>> {
        self.read(|c| policies::policy(c, tenant, subject))
    }

    fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantInfo> {
        self.read(|c| policies::tenant_settings(c, tenant))
    }

    fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentInfo>> {
        self.read(|c| policies::agents(c, tenant))
    }

    fn open_tenants(&self) -> Result<Vec<TenantId>> {
        self.read(policies::open_tenants)
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
