//! The PostgreSQL backend: several aifn nodes on one database. Same
//! tables, rules and answers as the SQLite backend; the schema's triggers
//! are ported to PL/pgSQL, and every write transaction takes one advisory
//! lock first, so writes from all nodes are serialized as SQLite's
//! `BEGIN IMMEDIATE` serializes them.
//!
//! The storage traits are synchronous: the store owns a small tokio
//! runtime and two connection pools (readers, writers) and runs each
//! operation with
//! `Runtime::block_on`. Registry calls come from plain or blocking threads
//! (the service calls it from `spawn_blocking`), never from inside an
//! async task, where `block_on` would panic.

use std::time::Duration;

mod budgets;
mod notify;
mod policies;
mod rows;
mod schema;
mod tx;

use aifn_postgres::Connector;
use aifn_types::{FunctionName, Source, Subject, TenantId, VersionState};
use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::runtime::Runtime;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};

use crate::store::{ActiveLookup, RegistryStore, Result, StoredKey, WriteTx};
use crate::{
    AgentInfo, FunctionDetail, FunctionSummary, KeyInfo, PolicyInfo, RegistryError, TenantInfo,
    VersionInfo, VersionRef,
};

/// The advisory lock every write transaction takes: one registry-wide
/// writer at a time, across nodes ("aifn" and 1).
const WRITE_LOCK: i64 = 0x6169_666e_0000_0001;
/// The advisory lock migrations take ("aifn" and 2).
const MIGRATION_LOCK: i64 = 0x6169_666e_0000_0002;
/// Pooled read connections per node.
const READERS: usize = 8;
/// Pooled write connections per node: one writes, the others wait for
/// the write lock.
const WRITERS: usize = 4;

/// Statement parameters.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Maps a PostgreSQL error to the registry's, keeping SQL out of
/// `Display`: a full disk is [`RegistryError::DiskFull`]; a database that
/// cannot be reached (no answer, a closed connection, a server shutting
/// down or starting) is [`RegistryError::Unavailable`]; refusals of the
/// schema and lock timeouts are `Storage`, as SQLite's constraint and busy
/// errors are.
fn db(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> RegistryError {
    move |e| match e.code() {
        Some(code) if *code == SqlState::DISK_FULL => RegistryError::DiskFull,
        Some(code) if aifn_postgres::unreachable_code(code) => RegistryError::Unavailable {
            op,
            source: Box::new(e),
        },
        // No SQLSTATE: the server never answered (I/O, closed, timeout).
        None => RegistryError::Unavailable {
            op,
            source: Box::new(e),
        },
        Some(_) => RegistryError::Storage {
            op,
            source: Box::new(e),
        },
    }
}

/// Reads column `idx`; a value that does not read as its type is
/// corruption.
fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T> {
    row.try_get(idx).map_err(|e| {
        // The driver's own message names only the column; the why is below.
        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        RegistryError::Corrupt(format!("column {idx}: {why}"))
    })
}

/// A stored number that must fit `u32`.
fn small(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| RegistryError::Corrupt(format!("number {v} out of range")))
}

async fn query(c: &ClientWrapper, op: &'static str, sql: &str, p: Params<'_>) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(db(op))?;
    c.query(&stmt, p).await.map_err(db(op))
}

async fn query_opt(
    c: &ClientWrapper,
    op: &'static str,
    sql: &str,
    p: Params<'_>,
) -> Result<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(db(op))?;
    c.query_opt(&stmt, p).await.map_err(db(op))
}

async fn execute(c: &ClientWrapper, op: &'static str, sql: &str, p: Params<'_>) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(db(op))?;
    c.execute(&stmt, p).await.map_err(db(op))
}

/// A pooled connection. One left inside a transaction (a panic mid-write,
/// a failed rollback) is closed, never handed out again.
struct Conn {
    obj: Option<Object>,
    in_tx: bool,
}

impl Conn {
    fn client(&self) -> Result<&ClientWrapper> {
        self.obj
            .as_deref()
            .ok_or_else(|| RegistryError::Corrupt("connection already closed".into()))
    }

    async fn begin(&mut self, sql: &str, op: &'static str) -> Result<()> {
        self.in_tx = true;
        self.client()?.batch_execute(sql).await.map_err(db(op))
    }

    /// `COMMIT` or `ROLLBACK`.
    async fn end(&mut self, sql: &str, op: &'static str) -> Result<()> {
        self.client()?.batch_execute(sql).await.map_err(db(op))?;
        self.in_tx = false;
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.in_tx
            && let Some(obj) = self.obj.take()
        {
            // Out of the pool and closed: the server rolls it back.
            drop(Object::take(obj));
        }
    }
}

/// The store's runtime. Shut down without waiting when dropped, so a
/// registry may be dropped anywhere, inside an async task too (where
/// dropping a `Runtime` panics).
struct OwnedRuntime(Option<Runtime>);

impl OwnedRuntime {
    fn get(&self) -> Result<&Runtime> {
        self.0
            .as_ref()
            .ok_or_else(|| RegistryError::Corrupt("database runtime already shut down".into()))
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Fields drop in order: the pools' connections before their runtime.
pub(crate) struct PostgresStore {
    /// For the change listener's own connection.
    listen: Connector,
    writers: Pool,
    /// Sessions that are read-only by default, as SQLite's readers are
    /// `query_only`: readers never write, whatever a bug asks of them.
    readers: Pool,
    runtime: OwnedRuntime,
    /// How long a write waits for another node's write lock.
    lock_timeout: Duration,
}

impl PostgresStore {
    /// Connects to `url` (a libpq URL or key=value string) and migrates.
    pub(crate) fn open(url: &str, busy_timeout: Duration) -> Result<PostgresStore> {
        let connector = Connector::parse(url).map_err(|e| RegistryError::Storage {
            op: "read database URL",
            source: Box::new(e),
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("aifn-registry-pg")
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Storage {
                op: "start database runtime",
                source: Box::new(e),
            })?;
        let mut read_only = connector.clone();
        let flag = "-c default_transaction_read_only=on";
        let options = match connector.config().get_options() {
            Some(given) => format!("{given} {flag}"),
            None => flag.to_owned(),
        };
        read_only.config_mut().options(options);
        let store = PostgresStore {
            writers: pool(&connector, WRITERS, busy_timeout)?,
            listen: connector,
            readers: pool(&read_only, READERS, busy_timeout)?,
            runtime: OwnedRuntime(Some(runtime)),
            lock_timeout: busy_timeout,
        };
        store.runtime.get()?.block_on(async {
            let mut conn = checkout(&store.writers).await?;
            let obj = conn
                .obj
                .as_deref_mut()
                .ok_or_else(|| RegistryError::Corrupt("connection already closed".into()))?;
            schema::migrate(obj).await
        })?;
        Ok(store)
    }

    /// The driver's configuration the store connects with.
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        self.listen.config()
    }

    /// Runs `f` on a pooled connection: one statement, one snapshot.
    fn read<T>(&self, f: impl AsyncFnOnce(&ClientWrapper) -> Result<T>) -> Result<T> {
        self.runtime.get()?.block_on(async {
            let conn = checkout(&self.readers).await?;
            f(conn.client()?).await
        })
    }

    /// Runs `f` inside one read-only transaction, so several statements
    /// see one snapshot.
    fn snapshot<T>(&self, f: impl AsyncFnOnce(&ClientWrapper) -> Result<T>) -> Result<T> {
        self.runtime.get()?.block_on(async {
            let mut conn = checkout(&self.readers).await?;
            conn.begin(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                "begin read",
            )
            .await?;
            let out = f(conn.client()?).await;
            // The read's own error first; a failed end closes the connection.
            let end = conn.end("ROLLBACK", "end read").await;
            let value = out?;
            end.map(|()| value)
        })
    }
}

fn pool(connector: &Connector, size: usize, timeout: Duration) -> Result<Pool> {
    let manager = Manager::from_config(
        connector.config().clone(),
        connector.tls(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .timeouts(deadpool_postgres::Timeouts {
            wait: Some(timeout),
            create: Some(timeout),
            recycle: Some(timeout),
        })
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| RegistryError::Storage {
            op: "create connection pool",
            source: Box::new(e),
        })
}

async fn checkout(pool: &Pool) -> Result<Conn> {
    // Every pool error is a connection not had: none refused, none timed
    // out in a query; the database is not there for now.
    let obj = pool.get().await.map_err(|e| RegistryError::Unavailable {
        op: "connect to database",
        source: Box::new(e),
    })?;
    Ok(Conn {
        obj: Some(obj),
        in_tx: false,
    })
}

impl RegistryStore for PostgresStore {
    fn counts_budgets(&self) -> bool {
        true
    }

    fn budget_admit(
        &self,
        w: crate::BudgetWindow<'_>,
        agent: &aifn_types::Budget,
        tenant: &aifn_types::Budget,
    ) -> Result<crate::BudgetVerdict> {
        self.admit_budget(w, agent, tenant)
    }

    fn budget_add_fuel(&self, w: crate::BudgetWindow<'_>, fuel: u64) -> Result<()> {
        self.add_budget_fuel(w, fuel)
    }

    fn budget_counts(
        &self,
        w: crate::BudgetWindow<'_>,
    ) -> Result<(crate::WindowCounts, crate::WindowCounts)> {
        self.budget_window(w)
    }

    fn watch(&self, on_change: std::sync::Arc<dyn Fn() + Send + Sync>) -> Result<()> {
        self.runtime
            .get()?
            .spawn(notify::listen(self.listen.clone(), on_change));
        Ok(())
    }

    fn write(&self, body: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()> {
        // Not one `block_on` around it all: the body is synchronous and
        // each of its statements blocks on the runtime by itself.
        let runtime = self.runtime.get()?;
        let mut conn = runtime.block_on(checkout(&self.writers))?;
        // READ COMMITTED: every statement after the lock sees every write
        // committed before it (a REPEATABLE READ snapshot would be taken
        // before the lock). The lock wait is bounded like SQLite's busy
        // timeout.
        let begin = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = {}; \
             SELECT pg_advisory_xact_lock({WRITE_LOCK})",
            self.lock_timeout.as_millis().max(1)
        );
        let result = runtime
            .block_on(conn.begin(&begin, "begin write"))
            .and_then(|()| {
                let mut tx = tx::PgTx {
                    runtime,
                    conn: conn.client()?,
                    failed: false,
                };
                body(&mut tx)?;
                if tx.failed {
                    return Err(RegistryError::Corrupt(
                        "a write went on after a failed statement".into(),
                    ));
                }
                Ok(())
            });
        match result {
            // Delivered to every listening node when (and only if) it commits.
            Ok(()) => runtime.block_on(conn.end(
                &format!("SELECT pg_notify('{}', ''); COMMIT", notify::CHANNEL),
                "commit",
            )),
            Err(e) => {
                // A failed rollback closes the connection (see `Conn`).
                let _ = runtime.block_on(conn.end("ROLLBACK", "roll back"));
                Err(e)
            }
        }
    }

    fn list_functions(&self, tenant: &TenantId) -> Result<Vec<FunctionSummary>> {
        self.read(async |c| rows::summaries(c, None, tenant).await)
    }

    fn function(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<FunctionDetail>> {
        self.snapshot(async |c| {
            let Some(summary) = rows::summaries(c, Some(name), tenant)
                .await?
                .into_iter()
                .next()
            else {
                return Ok(None);
            };
            let versions = rows::versions_where(
                c,
                "f.tenant = $1 AND f.name = $2",
                "v.version DESC",
                &[tenant, name],
            )
            .await?;
            Ok(Some(FunctionDetail { summary, versions }))
        })
    }

    fn version(&self, target: &VersionRef) -> Result<Option<VersionInfo>> {
        self.read(async |c| rows::version_of(c, target).await)
    }

    fn latest_version(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<u32>> {
        self.read(async |c| rows::latest_version(c, tenant, name).await)
    }

    fn source(&self, target: &VersionRef) -> Result<Option<Option<Source>>> {
        self.read(async |c| rows::source_of(c, target).await)
    }

    fn versions_in_state(
        &self,
        tenant: &TenantId,
        state: VersionState,
    ) -> Result<Vec<VersionInfo>> {
        self.read(async |c| {
            rows::versions_where(
                c,
                "f.tenant = $1 AND v.state = $2",
                "f.name, v.version",
                &[tenant, &state],
            )
            .await
        })
    }

    fn active(&self, tenant: &TenantId, name: &FunctionName) -> Result<ActiveLookup> {
        self.read(async |c| rows::active(c, tenant, name).await)
    }

    fn module(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.read(async |c| {
            let row = query_opt(
                c,
                "read module",
                "SELECT bytes FROM modules WHERE sha256 = $1",
                &[&sha256],
            )
            .await?;
            row.map(|r| get(&r, 0)).transpose()
        })
    }

    fn key(&self, key_id: &str) -> Result<Option<StoredKey>> {
        self.read(async |c| rows::key_of(c, key_id).await)
    }

    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>> {
        self.read(async |c| rows::keys(c, tenant).await)
    }

    fn policies(&self, tenant: &TenantId) -> Result<Vec<PolicyInfo>> {
        self.read(async |c| policies::policies(c, tenant).await)
    }

    fn policy(&self, tenant: &TenantId, subject: &Subject) -> Result<Option<PolicyInfo>> {
        self.read(async |c| policies::policy(c, tenant, subject).await)
    }

    fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantInfo> {
        self.read(async |c| policies::tenant_settings(c, tenant).await)
    }

    fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentInfo>> {
        self.read(async |c| policies::agents(c, tenant).await)
    }

    fn open_tenants(&self) -> Result<Vec<TenantId>> {
        self.read(async |c| policies::open_tenants(c).await)
    }
}
