//! Local administration on a data dir, without a running server: API keys
//! and the audit log. Used by `aifn keys` and `aifn audit`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aifn_audit::{AuditConfig, AuditLog, AuditPage, AuditQuery, SecurityQuery, VerifyReport};
use aifn_registry::{KeyInfo, NewKey, Registry};
use aifn_types::{Role, Subject, TenantId};

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
}

impl DataDir {
    /// The default layout under `root`.
    pub fn new(root: impl Into<PathBuf>, node: &str) -> DataDir {
        let root = root.into();
        DataDir {
            signing_key: root.join("audit-signing.key"),
            root,
            node: node.to_owned(),
        }
    }

    /// The audit log's configuration for this data dir.
    pub fn audit_config(&self) -> AuditConfig {
        let mut cfg = AuditConfig::in_dir(&self.root, &self.node);
        cfg.signing_key_path = self.signing_key.clone();
        cfg
    }

    /// Where compiled modules are cached.
    pub fn module_cache(&self) -> PathBuf {
        self.root.join("module-cache")
    }

    /// Creates the directory with owner-only permissions if it is missing.
    pub fn create(&self) -> Result<(), ServiceError> {
        create_private_dir(&self.root).map_err(|e| ServiceError::Unavailable {
            message: format!("cannot create the data dir {}: {e}", self.root.display()),
        })
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

/// Key and audit administration on a data dir (the caller has file access
/// to it, which is the authority here: these commands take no API key).
pub struct LocalAdmin {
    registry: Registry,
    audit: AuditLog,
    dir: DataDir,
}

fn open_err(what: &str, e: &dyn std::fmt::Display) -> ServiceError {
    ServiceError::Unavailable {
        message: format!("cannot open the {what}: {e}"),
    }
}

impl LocalAdmin {
    /// Opens (creating if needed) the registry and the audit log.
    pub fn open(dir: DataDir) -> Result<LocalAdmin, ServiceError> {
        dir.create()?;
        let registry = Registry::open(&dir.root).map_err(|e| open_err("registry", &e))?;
        let audit = AuditLog::open(dir.audit_config()).map_err(|e| open_err("audit log", &e))?;
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
        Ok(self
            .registry
            .create_key(tenant, role, subject, actor, &RegistryAudit(&self.audit))?)
    }

    /// Lists keys (never their secrets).
    pub fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>, ServiceError> {
        Ok(self.registry.list_keys(tenant)?)
    }

    /// Revokes a key.
    pub fn revoke_key(&self, key_id: &str, actor: &Subject) -> Result<KeyInfo, ServiceError> {
        Ok(self
            .registry
            .revoke_key(key_id, actor, &RegistryAudit(&self.audit))?)
    }

    /// A page of a tenant's audit records.
    pub fn audit_query(&self, q: &AuditQuery) -> Result<AuditPage, ServiceError> {
        self.audit.query(q).map_err(query_error)
    }

    /// A page of the host-level security and system streams.
    pub fn security_query(&self, q: &SecurityQuery) -> Result<AuditPage, ServiceError> {
        self.audit.query_security(q).map_err(query_error)
    }

    /// Writes a tenant's records as JSON lines; returns how many.
    pub fn export(
        &self,
        q: &AuditQuery,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, ServiceError> {
        self.audit
            .export_jsonl(q, out)
            .map_err(|e| ServiceError::internal("audit export", &e))
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
        other => ServiceError::internal("audit query", &other),
    }
}

/// Verifies a data dir's audit log offline (the log must not be required
/// to open: verification works on a damaged one).
pub fn verify(dir: &DataDir, public_key: Option<&[u8; 32]>) -> Result<VerifyReport, ServiceError> {
    aifn_audit::verify(&dir.audit_config(), public_key).map_err(|e| ServiceError::Unavailable {
        message: e.to_string(),
    })
}
