use std::path::PathBuf;

/// Everything that can go wrong in the audit log. Variants carry the file
/// and the operation, so a log line alone says what failed where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A database operation failed.
    #[error("audit database {database}: {operation}: {source}")]
    Database {
        /// The database: its file, or its URL without the password.
        database: String,
        /// What was being done.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database cannot be reached (PostgreSQL stopped, restarting, the
    /// network between, or no answer in time). Worth retrying: the next
    /// operation connects again.
    #[error("audit database {database} unavailable: {operation}: {source}")]
    Unavailable {
        /// The database's URL without the password.
        database: String,
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The commit of a batch of records failed (disk full, I/O error): none
    /// of the batch was written. Every caller of the batch gets this.
    #[error(
        "audit database {database}: commit of {batch} record(s) failed, nothing written: {reason}"
    )]
    CommitFailed {
        /// The database: its file, or its URL without the password.
        database: String,
        /// How many records were in the failed batch.
        batch: usize,
        /// The backend's error, as text (one error, many callers).
        reason: String,
    },
    /// A file operation failed (checkpoint file, key file, data directory).
    #[error("{}: {operation}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The signing key file is unusable.
    #[error("audit signing key {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The database schema is not one this build understands.
    #[error(
        "audit database {database}: schema version {found} (this build knows up to {supported})"
    )]
    Schema {
        /// The database: its file, or its URL without the password.
        database: String,
        /// The version found (`PRAGMA user_version`, or PostgreSQL's
        /// `audit_schema_migrations`).
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The database disagrees with the last checkpoint (for example it was
    /// restored from an older copy or truncated), so appending would fork
    /// the chain. Refused at open; `verify` names the problem.
    #[error("audit log {}: database head is seq {db_seq} but the last checkpoint is seq {checkpoint_seq}: {reason}", path.display())]
    CheckpointMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The last seq in the database (0 if empty).
        db_seq: u64,
        /// The seq of the last checkpoint.
        checkpoint_seq: u64,
        /// What does not match.
        reason: String,
    },
    /// A stored record cannot be read back.
    #[error("audit record seq {seq} is corrupt: {reason}")]
    Corrupt {
        /// The record.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record was refused before it was queued.
    #[error("invalid audit record: {reason}")]
    InvalidRecord {
        /// Why.
        reason: String,
    },
    /// A query was refused.
    #[error("invalid audit query: {reason}")]
    InvalidQuery {
        /// Why.
        reason: String,
    },
    /// Evidence was asked for a seq that is not a record of the tenant.
    #[error("no audit record {seq} in this tenant")]
    UnknownRecord {
        /// The seq asked for.
        seq: u64,
    },
    /// Evidence cannot prove a record: a record of another tenant (or a
    /// host-level one) chained with format 1 lies between it and the next
    /// checkpoint, and its link cannot be shown without its body; or no
    /// valid checkpoint covers it.
    #[error("audit record {seq} cannot be proven: {reason}")]
    Unprovable {
        /// The record that cannot be proven.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The log was closed (or its writer stopped); nothing more is recorded.
    #[error("the audit log is closed")]
    Closed,
}

impl AuditError {
    pub(crate) fn db(
        path: &std::path::Path,
        operation: &'static str,
        source: rusqlite::Error,
    ) -> AuditError {
        AuditError::Database {
            database: path.display().to_string(),
            operation,
            source: Box::new(source),
        }
    }

    /// A PostgreSQL error; `database` is the redacted URL. No SQLSTATE
    /// (the server never answered) or a server going away is
    /// [`AuditError::Unavailable`].
    pub(crate) fn pg(
        database: &str,
        operation: &'static str,
        source: tokio_postgres::Error,
    ) -> AuditError {
        let unreachable = unreachable(&source);
        let database = database.to_owned();
        let source = Box::new(source);
        if unreachable {
            AuditError::Unavailable {
                database,
                operation,
                source,
            }
        } else {
            AuditError::Database {
                database,
                operation,
                source,
            }
        }
    }

    pub(crate) fn io(
        path: &std::path::Path,
        operation: &'static str,
        source: std::io::Error,
    ) -> AuditError {
        AuditError::Io {
            path: path.to_owned(),
            operation,
            source,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> AuditError {
        AuditError::InvalidRecord {
            reason: reason.into(),
        }
    }
}

pub(crate) use aifn_postgres::unreachable;
