//! Local administration on a data dir, without a running server: API keys
//! and the audit log. Used by `aifn keys` and `aifn audit`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aifn_audit::{AuditConfig, AuditLog, AuditPage, AuditQuery, SecurityQuery, VerifyReport};
use aifn_registry::{KeyInfo, NewKey, Registry, RegistryError, RegistryOptions};
use aifn_types::{DatabaseUrl, Role, Subject, TenantId};

use crate::ServiceError;
use crate::sink::RegistryAudit;

/// The files of one aifn data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    /// The directory.
    pub root: PathBuf,
    /// The audit checkpoint signing key (default inside the data dir).
    pub signing_key: PathBuf,
    /// This host's name in audit records.
    pub node: String,
    /// The fleet's PostgreSQL database; `None`: the SQLite files here.
    pub database: Option<DatabaseUrl>,
}

impl DataDir {
    /// The default layout under `root`.
    pub fn new(root: impl Into<PathBuf>, node: &str) -> DataDir {
        let root = root.into();
        DataDir {
            signing_key: root.join("audit-signing.key"),
            root,
            node: node.to_owned(),
            database: None,
        }
    }

    /// The audit log's configuration for this data dir.
    pub fn audit_config(&self) -> AuditConfig {
        let mut cfg = AuditConfig::in_dir(&self.root, &self.node);
        cfg.signing_key_path = self.signing_key.clone();
        cfg.postgres = self.database.clone();
        cfg
    }

    /// Opens the registry: in the fleet's database when there is one,
    /// else the SQLite file here; its actions recorded in `audit`.
    pub fn open_registry(&self, audit: &AuditLog) -> Result<Registry, RegistryError> {
        let sink = std::sync::Arc::new(RegistryAudit(audit.clone()));
        match &self.database {
            Some(url) => Registry::open_postgres(url.expose(), &RegistryOptions::default(), sink),
            None => Registry::open(&self.root, sink),
        }
    }

    /// Where compiled modules are cached.
    pub fn module_cache(&self) -> PathBuf {
        self.root.join("module-cache")
    }

    /// Creates the directory with owner-only permissions if it is missing;
    /// says whether it was created just now.
    pub fn create(&self) -> Result<bool, DataDirError> {
        let existed = self.root.is_dir();
        create_private_dir(&self.root).map_err(|source| DataDirError::Io {
            what: "create the data dir",
            path: self.root.clone(),
            source,
        })?;
        Ok(!existed)
    }

    /// The data dir as an absolute path (for messages).
    pub fn absolute(&self) -> PathBuf {
        std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone())
    }

    /// This data dir's node name: read from `<root>/node`, or generated
    /// once (`<hostname>-<8 hex digits>`) and stored there, so every node
    /// that has its own data dir writes its own name.
    pub fn node_name(&self) -> Result<String, DataDirError> {
        let path = self.root.join(NODE_FILE);
        let io = |what, source| DataDirError::Io {
            what,
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read the node name", e)),
        }
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|e| {
            io(
                "generate the node name",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let name = format!("{}-{}", hostname(), hex::encode(random));
        std::fs::write(&path, format!("{name}\n")).map_err(|e| io("store the node name", e))?;
        Ok(name)
    }

    /// Takes the data dir for this process alone, until the guard drops:
    /// two servers on one data dir would write one node name and race on
    /// retention. Refused while another process holds it.
    pub fn lock(&self) -> Result<DataDirLock, DataDirError> {
        let path = self.root.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| DataDirError::Io {
                what: "open the lock file",
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(DataDirError::Locked {
                    dir: self.absolute(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(DataDirError::Io {
                    what: "lock",
                    path,
                    source,
                });
            }
        }
        // Who holds it, for the message of the one refused.
        let mut f = &file;
        let _ = f.set_len(0);
        let _ =
            std::io::Write::write_all(&mut f, format!("pid {}\n", std::process::id()).as_bytes());
        Ok(DataDirLock { _file: file })
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// The data dir's own node name.
const NODE_FILE: &str = "node";
/// Held by the one `aifn serve` of a data dir.
const LOCK_FILE: &str = "aifn.lock";

/// Holds a data dir for one process (see [`DataDir::lock`]); released on
/// drop or exit.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// A data dir that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process holds the data dir's lock.
    #[error(
        "the data dir {} is in use by another aifn ({holder}): stop it, or give this one its own --data-dir",
        dir.display()
    )]
    Locked {
        /// The data dir, absolute.
        dir: PathBuf,
        /// What the lock file says about its holder (`pid N`).
        holder: String,
    },
    /// A file operation failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        what: &'static str,
        /// On which file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl From<DataDirError> for ServiceError {
    fn from(e: DataDirError) -> ServiceError {
        ServiceError::Unavailable {
            message: e.to_string(),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "aifn".to_owned())
}

/// Key and audit administration on a data dir (the caller has file access
/// to it, which is the authority here: these commands take no API key).
pub struct LocalAdmin {
    registry: Registry,
    audit: AuditLog,
    dir: DataDir,
}

/// A store that cannot be opened, with every cause (for the operator at
/// start, never an HTTP answer): "connect to database" alone does not say
/// whether the password, the host or TLS is wrong.
pub(crate) fn open_err(what: &str, e: &dyn std::error::Error) -> ServiceError {
    let mut message = format!("cannot open the {what}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    ServiceError::Unavailable { message }
}

impl LocalAdmin {
    /// Opens (creating if needed) the registry and the audit log.
    pub fn open(dir: DataDir) -> Result<LocalAdmin, ServiceError> {
        dir.create()?;
        let audit = AuditLog::open(dir.audit_config()).map_err(|e| open_err("audit log", &e))?;
        let registry = dir
            .open_registry(&audit)
            .map_err(|e| open_err("registry", &e))?;
        Ok(LocalAdmin {
            registry,
            audit,
            dir,
        })
    }

    /// Creates a key; the secret is in the result and nowhere else.
    pub fn create_key(
        &self,
        tenant: &TenantId,
        role: Role,
        subject: &Subject,
        actor: &Subject,
    ) -> Result<NewKey, ServiceError> {
        Ok(self.registry.create_key(tenant, role, subject, actor)?)
    }

    /// Lists keys (never their secrets).
    pub fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>, ServiceError> {
        Ok(self.registry.list_keys(tenant)?)
    }

    /// Revokes a key.
    pub fn revoke_key(&self, key_id: &str, actor: &Subject) -> Result<KeyInfo, ServiceError> {
        Ok(self.registry.revoke_key(key_id, actor)?)
    }

    /// A page of a tenant's audit records.
    pub fn audit_query(
        &self,
        tenant: &TenantId,
        q: &AuditQuery,
    ) -> Result<AuditPage, ServiceError> {
        self.audit.query(tenant, q).map_err(query_error)
    }

    /// A page of the host-level security and system streams.
    pub fn security_query(&self, q: &SecurityQuery) -> Result<AuditPage, ServiceError> {
        self.audit.query_security(q).map_err(query_error)
    }

    /// Writes a tenant's records as JSON lines; returns how many.
    pub fn export(
        &self,
        tenant: &TenantId,
        q: &AuditQuery,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, ServiceError> {
        self.audit
            .export_jsonl(tenant, q, out)
            .map_err(|e| ServiceError::internal("audit export", &e))
    }

    /// An evidence bundle of `tenant` (the operator's view of a data dir:
    /// any tenant, no API key), as [`Service::bundle`](crate::Service::bundle)
    /// makes one for an approver or admin.
    pub fn bundle(
        &self,
        tenant: &TenantId,
        req: crate::BundleRequest,
    ) -> Result<crate::Bundle, ServiceError> {
        crate::bundle::build(&self.audit, &self.registry, tenant, req)
    }

    /// Signs a checkpoint of the chain head now.
    pub fn checkpoint(&self) -> Result<aifn_audit::Checkpoint, ServiceError> {
        self.audit
            .checkpoint()
            .map_err(|e| ServiceError::internal("audit checkpoint", &e))
    }

    /// Deletes records older than `older_than`; the pruning is recorded.
    pub fn prune(
        &self,
        older_than: SystemTime,
        actor: &str,
    ) -> Result<aifn_audit::PruneReport, ServiceError> {
        self.audit
            .prune(older_than, actor)
            .map_err(|e| ServiceError::internal("audit prune", &e))
    }

    /// The data dir.
    pub fn dir(&self) -> &DataDir {
        &self.dir
    }

    /// Flushes and signs a final checkpoint.
    pub fn close(self) -> Result<(), ServiceError> {
        self.audit
            .close()
            .map_err(|e| ServiceError::internal("audit close", &e))
    }
}

/// Only a refused query is the caller's doing; storage faults go to the log.
pub(crate) fn query_error(e: aifn_audit::AuditError) -> ServiceError {
    match e {
        aifn_audit::AuditError::InvalidQuery { .. } => ServiceError::InvalidRequest {
            message: e.to_string(),
        },
        aifn_audit::AuditError::Unavailable { .. } => {
            tracing::warn!(error = %e, "audit database unavailable");
            ServiceError::Unavailable {
                message: "the audit database is unavailable; retry shortly".into(),
            }
        }
        other => ServiceError::internal("audit query", &other),
    }
}

/// Applies every pending migration of the registry and the audit log to a
/// fleet's database (`aifn migrate`); safe while nodes run or start, since
/// migrations take an advisory lock and run once.
pub fn migrate(url: &DatabaseUrl) -> Result<(), ServiceError> {
    /// Migrating changes no function, key or policy: nothing to record.
    struct Nothing;
    impl aifn_registry::AuditSink for Nothing {
        fn record(&self, _: &aifn_types::RegistryAction) -> Result<(), aifn_registry::SinkError> {
            Err("`aifn migrate` records no registry action".into())
        }
    }
    Registry::open_postgres(url.expose(), &RegistryOptions::default(), Nothing)
        .map_err(|e| open_err("registry", &e))?;
    AuditLog::migrate_postgres(url).map_err(|e| open_err("audit log", &e))
}

/// Verifies a data dir's audit log offline (the log must not be required
/// to open: verification works on a damaged one).
pub fn verify(dir: &DataDir, public_key: Option<&[u8; 32]>) -> Result<VerifyReport, ServiceError> {
    aifn_audit::verify(&dir.audit_config(), public_key).map_err(|e| ServiceError::Unavailable {
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_name_is_generated_once_and_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = DataDir::new(tmp.path().join("a"), "");
        assert!(a.create().expect("created"), "new");
        assert!(!a.create().expect("exists"), "not new the second time");
        let name = a.node_name().expect("generated");
        assert_eq!(a.node_name().expect("read back"), name);
        let b = DataDir::new(tmp.path().join("b"), "");
        b.create().expect("created");
        assert_ne!(b.node_name().expect("generated"), name);
    }

    #[test]
    fn a_locked_data_dir_refuses_a_second_holder_until_released() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path(), "");
        let held = dir.lock().expect("first holder");
        let e = dir.lock().expect_err("second holder refused");
        let DataDirError::Locked { holder, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(holder, &format!("pid {}", std::process::id()));
        assert!(e.to_string().contains("in use by another aifn"), "{e}");
        drop(held);
        dir.lock().expect("free again");
    }
}
