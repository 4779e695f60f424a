//! The PostgreSQL backend: the log of a fleet, every node's records in one
//! global chain. Each node keeps its own writer and group commit; a batch
//! takes a transaction-scoped advisory lock, reads the head inside it and
//! appends after it, so the nodes' batches are serialized in one order
//! and the chain has no forks. Commits run with `synchronous_commit = on`:
//! a record is acknowledged only once PostgreSQL has it durably.
//!
//! The store trait is synchronous; each store owns a current-thread tokio
//! runtime and one connection, driven only inside `block_on`. The writer
//! is its own thread and queries come from blocking threads, never from an
//! async task. A lost connection is opened again on the next operation.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

mod chain;
mod rows;
mod schema;

use aifn_postgres::Connector;
use aifn_types::DatabaseUrl;
use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use crate::AuditError;
use crate::canon::ChainFormat;
use schema::{MIGRATIONS, Migrated, migrate, version};

/// The advisory lock every append and prune takes ("aifn" and 3): one
/// writer of the chain at a time, across every node.
const APPEND_LOCK: i64 = 0x6169_666e_0000_0003;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one operation (a whole append included) may take before the
/// connection is given up: a database that hangs fails calls, it does not
/// hold the writer forever.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One connection and its prepared statements.
struct Session {
    client: Client,
    statements: HashMap<String, Statement>,
    /// Inside a transaction the next operation must not inherit.
    in_tx: bool,
}

impl Session {
    async fn statement(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    async fn query(&mut self, sql: &str, p: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query(&s, p).await
    }

    async fn query_opt(
        &mut self,
        sql: &str,
        p: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query_opt(&s, p).await
    }

    async fn execute(&mut self, sql: &str, p: Params<'_>) -> Result<u64, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.execute(&s, p).await
    }

    async fn begin(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.in_tx = true;
        self.client.batch_execute(sql).await
    }

    async fn end(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.client.batch_execute(sql).await?;
        self.in_tx = false;
        Ok(())
    }
}

/// The store's runtime, shut down without waiting when dropped (dropping
/// a `Runtime` inside an async task would panic).
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Fields drop in order: the connection before its runtime.
pub(crate) struct PostgresStore {
    session: Option<Session>,
    connector: Connector,
    /// The URL without its password, for errors.
    name: String,
    read_only: bool,
    format: ChainFormat,
    runtime: OwnedRuntime,
}

/// An operation that failed or ran out of time.
enum Failed {
    Db(tokio_postgres::Error),
    TimedOut,
}

impl PostgresStore {
    /// Connects, migrates, and reads the chain format.
    pub(crate) fn open_writer(url: &DatabaseUrl) -> Result<PostgresStore, AuditError> {
        let mut store = PostgresStore::new(url, false)?;
        let migrated = store.with("migrate", async |s| migrate(&s.client).await)?;
        if let Migrated::TooNew(found) = migrated {
            return Err(store.schema_error(found));
        }
        store.format = store.read_format()?;
        if store.format.format_2_from.is_none() {
            return Err(AuditError::Corrupt {
                seq: 0,
                reason: "the chain format boundary (audit_meta) is missing".into(),
            });
        }
        Ok(store)
    }

    /// Connects to an existing log in read-only sessions (queries, verify).
    pub(crate) fn open_reader(url: &DatabaseUrl) -> Result<PostgresStore, AuditError> {
        let mut store = PostgresStore::new(url, true)?;
        let found = store.with("read schema version", async |s| version(&s.client).await)?;
        if !(1..=MIGRATIONS.len() as i64).contains(&found) {
            return Err(store.schema_error(found));
        }
        store.format = store.read_format()?;
        Ok(store)
    }

    fn new(url: &DatabaseUrl, read_only: bool) -> Result<PostgresStore, AuditError> {
        let name = url.redacted();
        let connector = Connector::parse(url.expose()).map_err(|e| AuditError::Database {
            database: name.clone(),
            operation: "read database URL",
            source: Box::new(e),
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AuditError::Database {
                database: name.clone(),
                operation: "start database runtime",
                source: Box::new(e),
            })?;
        Ok(PostgresStore {
            session: None,
            connector,
            name,
            read_only,
            format: ChainFormat {
                format_2_from: None,
            },
            runtime: OwnedRuntime(Some(runtime)),
        })
    }

    fn schema_error(&self, found: i64) -> AuditError {
        AuditError::Schema {
            database: self.name.clone(),
            found,
            supported: MIGRATIONS.len() as i64,
        }
    }

    /// A missing or non-integer boundary reads as "all format 1", as on
    /// SQLite, so deleting it is a verify finding, not an error.
    fn read_format(&mut self) -> Result<ChainFormat, AuditError> {
        let row = self.with("read chain format", async |s| {
            s.query_opt(
                "SELECT value FROM audit_meta WHERE key = 'chain_format_2_from'",
                &[],
            )
            .await
        })?;
        let value = row.and_then(|r| r.try_get::<_, i64>(0).ok());
        Ok(ChainFormat {
            format_2_from: value.map(|v| u64::try_from(v).unwrap_or(0)),
        })
    }

    fn failed(&self, op: &'static str, f: Failed) -> AuditError {
        match f {
            Failed::Db(e) => AuditError::pg(&self.name, op, e),
            Failed::TimedOut => AuditError::Unavailable {
                database: self.name.clone(),
                operation: op,
                source: format!("no answer within {} s", OP_TIMEOUT.as_secs()).into(),
            },
        }
    }

    /// Runs `f` on the connection (opened first if there is none or it was
    /// lost). A failure inside a transaction, a lost connection or a
    /// timeout drops the connection, so the next operation starts clean.
    fn with<T>(
        &mut self,
        op: &'static str,
        f: impl AsyncFnOnce(&mut Session) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, AuditError> {
        self.try_with(f).map_err(|e| self.failed(op, e))
    }

    /// [`Self::with`] once more on a fresh connection when the one it used
    /// turned out to be lost (a database restarted since the last call):
    /// for reads, which are safe to repeat.
    fn with_retry<T>(
        &mut self,
        op: &'static str,
        f: impl AsyncFn(&mut Session) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, AuditError> {
        let reused = self.session.is_some();
        match self.try_with(&f) {
            Err(Failed::Db(e))
                if reused && self.session.is_none() && crate::error::unreachable(&e) =>
            {
                self.with(op, f)
            }
            other => other.map_err(|e| self.failed(op, e)),
        }
    }

    fn try_with<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Session) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, Failed> {
        let Some(rt) = self.runtime.0.as_ref() else {
            return Err(Failed::TimedOut);
        };
        if self.session.as_ref().is_none_or(|s| s.client.is_closed()) {
            self.session = None;
            let session = block(
                rt,
                CONNECT_TIMEOUT,
                connect(&self.connector, self.read_only),
            )?;
            self.session = Some(session);
        }
        let Some(session) = self.session.as_mut() else {
            return Err(Failed::TimedOut);
        };
        let result = block(rt, OP_TIMEOUT, f(session));
        let broken = match &result {
            Ok(_) => false,
            Err(Failed::TimedOut) => true,
            Err(Failed::Db(e)) => {
                session.in_tx || session.client.is_closed() || crate::error::unreachable(e)
            }
        };
        if broken {
            // Closed, not returned: the server rolls back what it holds.
            self.session = None;
        }
        result
    }
}

fn block<T>(
    rt: &Runtime,
    limit: Duration,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Failed> {
    // The timer is made inside the runtime, whose clock it needs.
    match rt.block_on(async { tokio::time::timeout(limit, fut).await }) {
        Ok(r) => r.map_err(Failed::Db),
        Err(_) => Err(Failed::TimedOut),
    }
}

async fn connect(connector: &Connector, read_only: bool) -> Result<Session, tokio_postgres::Error> {
    let (client, connection) = connector.connect().await?;
    // Polled only while the store's runtime runs an operation.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Durable at COMMIT whatever the server's default, and readers that
    // cannot write whatever a bug asks of them.
    client
        .batch_execute(if read_only {
            "SET synchronous_commit = on; SET default_transaction_read_only = on"
        } else {
            "SET synchronous_commit = on"
        })
        .await?;
    Ok(Session {
        client,
        statements: HashMap::new(),
        in_tx: false,
    })
}

pub(super) fn seq_param(seq: u64) -> i64 {
    // Seqs come from counting rows; they never reach 2^63.
    i64::try_from(seq).unwrap_or(i64::MAX)
}
