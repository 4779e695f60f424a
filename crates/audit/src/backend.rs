//! Which database the log lives in, chosen once from the config: SQLite in
//! the data directory (one node), or PostgreSQL (a fleet).

use std::path::PathBuf;

use aifn_types::DatabaseUrl;

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::store::AuditStore;
use crate::{AuditConfig, AuditError};

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite {
        path: PathBuf,
        max_db_bytes: Option<u64>,
    },
    Postgres(DatabaseUrl),
}

impl Backend {
    pub(crate) fn of(cfg: &AuditConfig) -> Backend {
        match &cfg.postgres {
            Some(url) => Backend::Postgres(url.clone()),
            None => Backend::Sqlite {
                path: cfg.db_path.clone(),
                max_db_bytes: cfg.max_db_bytes,
            },
        }
    }

    /// The file, or the URL without its password: for errors and `Debug`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            Backend::Postgres(url) => url.redacted(),
        }
    }

    /// The writer's store, migrated.
    pub(crate) fn open_writer(&self) -> Result<Box<dyn AuditStore>, AuditError> {
        Ok(match self {
            Backend::Sqlite { path, max_db_bytes } => {
                Box::new(SqliteStore::open_writer(path, *max_db_bytes)?)
            }
            Backend::Postgres(url) => Box::new(PostgresStore::open_writer(url)?),
        })
    }

    /// A store for queries and verification; the log must exist.
    pub(crate) fn open_reader(&self) -> Result<Box<dyn AuditStore>, AuditError> {
        Ok(match self {
            Backend::Sqlite { path, .. } => Box::new(SqliteStore::open_reader(path)?),
            Backend::Postgres(url) => Box::new(PostgresStore::open_reader(url)?),
        })
    }
}
