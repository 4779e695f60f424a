use std::path::{Path, PathBuf};
use std::time::Duration;

use aifn_types::{FunctionName, Refusal, RegistryAction, Source, TenantId, VersionState};
use sha2::{Digest, Sha256};

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::store::{ActiveLookup, RegistryStore, WriteTx};
use crate::{AuditSink, FunctionDetail, FunctionSummary, RegistryError, VersionInfo, VersionRef};

pub(crate) type Result<T> = std::result::Result<T, RegistryError>;

/// The database file name inside a data directory.
pub const DATABASE_FILE: &str = "registry.sqlite3";

/// How to open a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// How long a write waits for another process's write lock.
    pub busy_timeout: Duration,
    /// A cap on the database size; writes past it fail with
    /// [`RegistryError::DiskFull`] and store nothing. `None`: the disk is
    /// the limit. SQLite only: PostgreSQL refuses to open with a cap (its
    /// quota is the server's), and reports its own full disk as `DiskFull`.
    pub max_size_bytes: Option<u64>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            busy_timeout: Duration::from_secs(5),
            max_size_bytes: None,
        }
    }
}

/// The function registry of every tenant: versions, their approval state and
/// the API keys. Cheap to share between threads (`&Registry` is enough).
pub struct Registry {
    store: Box<dyn RegistryStore>,
    pub(crate) audit: Box<dyn AuditSink>,
    location: Location,
}

/// Where the registry is stored, as `Debug` shows it.
enum Location {
    File(PathBuf),
    /// The database name and hosts only: never a password.
    Postgres {
        dbname: String,
        hosts: String,
    },
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Registry");
        match &self.location {
            Location::File(path) => d.field("path", path),
            Location::Postgres { dbname, hosts } => {
                d.field("postgres", &format_args!("{dbname} on {hosts}"))
            }
        };
        d.finish_non_exhaustive()
    }
}

/// The database name and hosts of a PostgreSQL URL, for `Debug`.
fn postgres_location(config: &tokio_postgres::Config) -> Location {
    let dbname = config.get_dbname().unwrap_or("?").to_owned();
    let hosts = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    Location::Postgres { dbname, hosts }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Registry {
    /// Opens the registry at `path`: a directory (created if missing) holds
    /// `registry.sqlite3`; a path with an extension is the database file
    /// itself. Applies pending schema migrations. Every action taken or
    /// refused from now on is recorded through `audit`.
    pub fn open(path: impl AsRef<Path>, audit: impl AuditSink + 'static) -> Result<Registry> {
        Registry::open_with(path, &RegistryOptions::default(), audit)
    }

    /// [`Registry::open`] with options.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &RegistryOptions,
        audit: impl AuditSink + 'static,
    ) -> Result<Registry> {
        let path = path.as_ref();
        let file = if path.is_dir() || path.extension().is_none() {
            std::fs::create_dir_all(path).map_err(|e| RegistryError::Storage {
                op: "create data directory",
                source: Box::new(e),
            })?;
            path.join(DATABASE_FILE)
        } else {
            path.to_owned()
        };
        let store = SqliteStore::open(&file, options.busy_timeout, options.max_size_bytes)?;
        Ok(Registry {
            store: Box::new(store),
            audit: Box::new(audit),
            location: Location::File(file),
        })
    }

    /// Opens the registry in the PostgreSQL database at `url` (a libpq
    /// URL, `postgresql://user@host/db`, or `key=value` pairs), shared by
    /// every node opened on it; applies pending schema migrations (once,
    /// when several nodes start at once). `busy_timeout` bounds the wait
    /// for a connection and for another node's write. Call it, and the
    /// registry it returns, from plain or blocking threads, not from an
    /// async task.
    pub fn open_postgres(
        url: &str,
        options: &RegistryOptions,
        audit: impl AuditSink + 'static,
    ) -> Result<Registry> {
        if options.max_size_bytes.is_some() {
            return Err(RegistryError::Storage {
                op: "open database",
                source: "a size cap is SQLite's; PostgreSQL's quota is the server's".into(),
            });
        }
        let store = PostgresStore::open(url, options.busy_timeout)?;
        let location = postgres_location(store.config());
        Ok(Registry {
            store: Box::new(store),
            audit: Box::new(audit),
            location,
        })
    }

    /// Calls `on_change` (from a background thread) whenever another node
    /// may have changed the registry, so that caches of it are dropped:
    /// on PostgreSQL after every commit of any node (LISTEN/NOTIFY), and
    /// whenever the listening connection was lost. On SQLite it never
    /// calls.
    pub fn watch_changes(&self, on_change: std::sync::Arc<dyn Fn() + Send + Sync>) -> Result<()> {
        self.store.watch(on_change)
    }

    /// The database file; `None` on PostgreSQL.
    pub fn database_path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(path) => Some(path),
            Location::Postgres { .. } => None,
        }
    }

    pub(crate) fn store(&self) -> &dyn RegistryStore {
        &*self.store
    }

    /// Runs `body` in one write transaction and returns what it made.
    pub(crate) fn write<T>(
        &self,
        mut body: impl FnMut(&mut dyn WriteTx) -> Result<T>,
    ) -> Result<T> {
        let mut out = None;
        self.store.write(&mut |tx| {
            out = Some(body(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| RegistryError::Corrupt("write transaction produced nothing".into()))
    }

    /// The last step of every write: no record, no action.
    pub(crate) fn record(&self, action: &RegistryAction) -> Result<()> {
        self.audit.record(action).map_err(RegistryError::Audit)
    }

    /// Records `attempt` as refused if `err` is a refusal (the write, if
    /// any, has rolled back), and hands `err` back either way: a refusal is
    /// answered even when its record cannot be written.
    pub(crate) fn refused(&self, attempt: RegistryAction, err: RegistryError) -> RegistryError {
        let Some(kind) = err.refusal() else {
            return err;
        };
        let action = RegistryAction {
            refused: Some(Refusal {
                kind,
                reason: err.to_string(),
            }),
            ..attempt
        };
        if let Err(e) = self.audit.record(&action) {
            tracing::error!(
                error = %e,
                tenant = %action.tenant_id,
                action = action.action.as_str(),
                target = %action.target,
                "could not record a refused registry action"
            );
        }
        err
    }

    /// The tenant's functions, by name.
    pub fn list_functions(&self, tenant: &TenantId) -> Result<Vec<FunctionSummary>> {
        self.store.list_functions(tenant)
    }

    /// One function of the tenant with all its versions, newest first.
    pub fn get_function(&self, tenant: &TenantId, name: &FunctionName) -> Result<FunctionDetail> {
        self.store
            .function(tenant, name)?
            .ok_or_else(|| RegistryError::NotFound {
                tenant: tenant.clone(),
                name: name.clone(),
                version: None,
            })
    }

    /// One version of one of the tenant's functions.
    pub fn get_version(
        &self,
        tenant: &TenantId,
        name: &FunctionName,
        version: u32,
    ) -> Result<VersionInfo> {
        let target = VersionRef {
            tenant: tenant.clone(),
            name: name.clone(),
            version,
        };
        self.store.version(&target)?.ok_or(RegistryError::NotFound {
            tenant: target.tenant,
            name: target.name,
            version: Some(version),
        })
    }

    /// The tenant's versions awaiting an approver, by name then version.
    pub fn list_pending(&self, tenant: &TenantId) -> Result<Vec<VersionInfo>> {
        self.store.versions_in_state(tenant, VersionState::Pending)
    }

    /// The tenant's active versions, one per function, by name: the tool
    /// catalog.
    pub fn active_versions(&self, tenant: &TenantId) -> Result<Vec<VersionInfo>> {
        self.store.versions_in_state(tenant, VersionState::Active)
    }

    /// The version of `name` that runs: `NotFound` if the tenant has no such
    /// function, `NotActive` if none of its versions is active. One indexed
    /// query; called on every invocation.
    pub fn active(&self, tenant: &TenantId, name: &FunctionName) -> Result<VersionInfo> {
        match self.store.active(tenant, name)? {
            ActiveLookup::Active(info) => Ok(*info),
            ActiveLookup::NoActive => Err(RegistryError::NotActive { name: name.clone() }),
            ActiveLookup::NoFunction => Err(RegistryError::NotFound {
                tenant: tenant.clone(),
                name: name.clone(),
                version: None,
            }),
        }
    }

    /// The source a version was built from: `None` when it was uploaded as
    /// a module, `NotFound` without such a version.
    pub fn source(&self, target: &VersionRef) -> Result<Option<Source>> {
        self.store
            .source(target)?
            .ok_or_else(|| RegistryError::NotFound {
                tenant: target.tenant.clone(),
                name: target.name.clone(),
                version: Some(target.version),
            })
    }

    /// The module stored under `sha256`, checked against it. Modules are
    /// shared by content across tenants: pass a hash from a tenant-scoped
    /// [`VersionInfo`], never one taken from a request.
    pub fn module_bytes(&self, sha256: &str) -> Result<Vec<u8>> {
        let sha256 = sha256.to_ascii_lowercase();
        let bytes = self
            .store
            .module(&sha256)?
            .ok_or_else(|| RegistryError::ModuleNotFound {
                sha256: sha256.clone(),
            })?;
        if sha256_hex(&bytes) != sha256 {
            return Err(RegistryError::Corrupt(format!(
                "module {sha256} does not hash to its name"
            )));
        }
        Ok(bytes)
    }
}
