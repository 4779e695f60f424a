use std::path::{Path, PathBuf};
use std::time::Duration;

use aifn_types::{
    CapturePolicy, FunctionName, InspectionReport, Limits, Manifest, RegistryAction,
    RegistryActionKind, ReportDiff, Role, Subject, TenantId, VersionState,
};
use sha2::{Digest, Sha256};

use crate::keys;
use crate::sqlite::SqliteStore;
use crate::store::{ActiveLookup, NewVersionRow, RegistryStore, StoredKey, WriteTx};
use crate::transition::{VersionAction, transition};
use crate::{
    AuditSink, AuthError, Decision, FunctionDetail, FunctionSummary, KeyInfo, NewKey, Principal,
    RegistryError, Upload, VersionInfo, VersionRef,
};

type Result<T> = std::result::Result<T, RegistryError>;

/// The database file name inside a data directory.
pub const DATABASE_FILE: &str = "registry.sqlite3";

/// How to open a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// How long a write waits for another process's write lock.
    pub busy_timeout: Duration,
    /// A cap on the database size; writes past it fail with
    /// [`RegistryError::DiskFull`] and store nothing. `None`: the disk is
    /// the limit.
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
    path: PathBuf,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Milliseconds-precision RFC 3339 UTC, e.g. `2025-01-31T09:15:02.123Z`.
fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn require_role(actor: &Principal, role: Role, what: &str) -> Result<()> {
    if actor.role == role {
        Ok(())
    } else {
        Err(RegistryError::forbidden(format!(
            "a key with role {} may not {what}",
            actor.role
        )))
    }
}

fn check_manifest(manifest: &Manifest) -> Result<()> {
    if !manifest.input_schema.is_object() {
        return Err(RegistryError::InvalidManifest(
            "input_schema must be a JSON object".into(),
        ));
    }
    if manifest
        .output_schema
        .as_ref()
        .is_some_and(|s| !s.is_object())
    {
        return Err(RegistryError::InvalidManifest(
            "output_schema must be a JSON object".into(),
        ));
    }
    if let Some(capture) = manifest.capture {
        let days = capture.retention_days;
        if !(1..=CapturePolicy::MAX_RETENTION_DAYS).contains(&days) {
            return Err(RegistryError::InvalidManifest(format!(
                "capture.retention_days must be 1 to {}, not {days}",
                CapturePolicy::MAX_RETENTION_DAYS
            )));
        }
    }
    Ok(())
}

fn encode(op: &'static str, value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| RegistryError::Storage {
        op,
        source: Box::new(e),
    })
}

impl Registry {
    /// Opens the registry at `path`: a directory (created if missing) holds
    /// `registry.sqlite3`; a path with an extension is the database file
    /// itself. Applies pending schema migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Registry> {
        Registry::open_with(path, &RegistryOptions::default())
    }

    /// [`Registry::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, options: &RegistryOptions) -> Result<Registry> {
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
            path: file,
        })
    }

    /// The database file.
    pub fn database_path(&self) -> &Path {
        &self.path
    }

    /// Runs `body` in one write transaction and returns what it made.
    fn write<T>(&self, mut body: impl FnMut(&mut dyn WriteTx) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.store.write(&mut |tx| {
            out = Some(body(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| RegistryError::Corrupt("write transaction produced nothing".into()))
    }

    /// Stores a validated module as the next version of `upload.name` in the
    /// actor's tenant, `pending`. The actor must be an author; the tenant and
    /// author are the actor's. The report must describe exactly these bytes,
    /// the manifest's limits must fit within `host_limits`. A failed upload
    /// stores nothing.
    pub fn upload(
        &self,
        actor: &Principal,
        upload: Upload<'_>,
        host_limits: &Limits,
        audit: &dyn AuditSink,
    ) -> Result<VersionInfo> {
        require_role(actor, Role::Author, "upload")?;
        let Upload {
            name,
            manifest,
            module,
            report,
        } = upload;
        let sha256 = sha256_hex(module);
        if report.sha256 != sha256 {
            return Err(RegistryError::ReportMismatch {
                field: "sha256",
                module: sha256,
                report: report.sha256,
            });
        }
        let size = u64::try_from(module.len()).unwrap_or(u64::MAX);
        if report.size_bytes != size {
            return Err(RegistryError::ReportMismatch {
                field: "size_bytes",
                module: size.to_string(),
                report: report.size_bytes.to_string(),
            });
        }
        let effective_limits = host_limits.narrowed(&manifest.limits)?;
        check_manifest(&manifest)?;
        let manifest_json = encode("encode manifest", &manifest)?;
        let tenant = &actor.tenant;
        let at = now();
        self.write(|tx| {
            let function_id = match tx.function_id(tenant, &name)? {
                Some(id) => id,
                None => tx.insert_function(tenant, &name, &at)?,
            };
            // Numbered inside the write transaction, so racing uploads of
            // one function get consecutive numbers.
            let previous = tx.latest_report(function_id)?;
            let version = match &previous {
                None => 1,
                Some((v, _)) => v
                    .checked_add(1)
                    .ok_or_else(|| RegistryError::Corrupt("version overflow".into()))?,
            };
            let inspection = InspectionReport {
                module: report.clone(),
                requested_limits: manifest.limits,
                effective_limits,
                diff: previous.map(|(v, old)| ReportDiff::between(v, &old, &report)),
            };
            let report_json = encode("encode report", &inspection)?;
            tx.put_module(&sha256, module)?;
            tx.insert_version(&NewVersionRow {
                function_id,
                version,
                sha256: &sha256,
                author: &actor.subject,
                uploaded_at: &at,
                description: &manifest.description,
                manifest_json: &manifest_json,
                report_json: &report_json,
            })?;
            let target = VersionRef {
                tenant: tenant.clone(),
                name: name.clone(),
                version,
            };
            let info = tx
                .version(&target)?
                .ok_or_else(|| RegistryError::Corrupt("uploaded version vanished".into()))?;
            record(
                audit,
                RegistryAction {
                    tenant_id: tenant.to_string(),
                    actor: actor.subject.to_string(),
                    action: RegistryActionKind::Upload,
                    target: target.to_string(),
                    sha256: Some(sha256.clone()),
                    notes: None,
                },
            )?;
            Ok(info)
        })
    }

    /// Activates a pending version; the function's previously active
    /// version, if any, becomes `superseded` in the same transaction.
    ///
    /// The actor must be an approver of the target's tenant and not the
    /// version's author; `sha256` is the module hash the approver inspected
    /// and must be the stored one; `notes` must not be blank.
    pub fn approve(
        &self,
        actor: &Principal,
        target: &VersionRef,
        sha256: &str,
        notes: &str,
        audit: &dyn AuditSink,
    ) -> Result<VersionInfo> {
        self.decide(
            actor,
            target,
            VersionAction::Approve,
            Some(sha256),
            notes,
            audit,
        )
    }

    /// Refuses a pending version, for good. Same rules as [`Registry::approve`].
    pub fn reject(
        &self,
        actor: &Principal,
        target: &VersionRef,
        sha256: &str,
        notes: &str,
        audit: &dyn AuditSink,
    ) -> Result<VersionInfo> {
        self.decide(
            actor,
            target,
            VersionAction::Reject,
            Some(sha256),
            notes,
            audit,
        )
    }

    /// Withdraws the active version; the function then has none. The actor
    /// must be an approver of the target's tenant; unlike approving, the
    /// version's own author may revoke it (stopping code is never the risk).
    pub fn revoke(
        &self,
        actor: &Principal,
        target: &VersionRef,
        notes: &str,
        audit: &dyn AuditSink,
    ) -> Result<VersionInfo> {
        self.decide(actor, target, VersionAction::Revoke, None, notes, audit)
    }

    fn decide(
        &self,
        actor: &Principal,
        target: &VersionRef,
        action: VersionAction,
        inspected_sha256: Option<&str>,
        notes: &str,
        audit: &dyn AuditSink,
    ) -> Result<VersionInfo> {
        let kind = match action {
            VersionAction::Approve => RegistryActionKind::Approve,
            VersionAction::Reject => RegistryActionKind::Reject,
            VersionAction::Revoke => RegistryActionKind::Revoke,
            VersionAction::Supersede => {
                return Err(RegistryError::forbidden(
                    "supersede follows an approval; it is not asked for",
                ));
            }
        };
        require_role(actor, Role::Approver, action.as_str())?;
        if actor.tenant != target.tenant {
            return Err(RegistryError::forbidden(
                "the key belongs to another tenant",
            ));
        }
        let notes = notes.trim();
        if notes.is_empty() {
            return Err(RegistryError::NotesRequired { action });
        }
        let at = now();
        self.write(|tx| {
            // Re-read under the write lock: the state and hash decided on
            // are the ones committed.
            let head = tx
                .version_head(target)?
                .ok_or_else(|| RegistryError::NotFound {
                    tenant: target.tenant.clone(),
                    name: target.name.clone(),
                    version: Some(target.version),
                })?;
            if action != VersionAction::Revoke && head.author == actor.subject.as_str() {
                return Err(RegistryError::forbidden(format!(
                    "separation of duties: the author of a version may not {action} it"
                )));
            }
            let to = transition(head.state, action)?;
            if let Some(given) = inspected_sha256
                && !given.eq_ignore_ascii_case(&head.sha256)
            {
                return Err(RegistryError::HashMismatch {
                    version: head.version,
                    stored: head.sha256.clone(),
                    given: given.to_owned(),
                });
            }
            if to == VersionState::Active
                && let Some(old) = tx.active_head(head.function_id)?
            {
                let retired = transition(old.state, VersionAction::Supersede)?;
                tx.insert_decision(
                    old.id,
                    &Decision {
                        action: VersionAction::Supersede,
                        actor: actor.subject.clone(),
                        at: at.clone(),
                        notes: format!("superseded by version {}", head.version),
                        sha256: old.sha256.clone(),
                    },
                )?;
                tx.set_state(old.id, old.state, retired)?;
            }
            tx.insert_decision(
                head.id,
                &Decision {
                    action,
                    actor: actor.subject.clone(),
                    at: at.clone(),
                    notes: notes.to_owned(),
                    sha256: head.sha256.clone(),
                },
            )?;
            tx.set_state(head.id, head.state, to)?;
            let info = tx
                .version(target)?
                .ok_or_else(|| RegistryError::Corrupt("decided version vanished".into()))?;
            record(
                audit,
                RegistryAction {
                    tenant_id: target.tenant.to_string(),
                    actor: actor.subject.to_string(),
                    action: kind,
                    target: target.to_string(),
                    sha256: Some(head.sha256.clone()),
                    notes: Some(notes.to_owned()),
                },
            )?;
            Ok(info)
        })
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

    /// Creates an API key for `subject` with `role` in `tenant`. The secret
    /// in the answer is shown once: only its sha256 is stored.
    pub fn create_key(
        &self,
        tenant: &TenantId,
        role: Role,
        subject: &Subject,
        actor: &Subject,
        audit: &dyn AuditSink,
    ) -> Result<NewKey> {
        let (key_id, secret) = keys::generate()?;
        let stored = StoredKey {
            info: KeyInfo {
                key_id: key_id.clone(),
                tenant: tenant.clone(),
                role,
                subject: subject.clone(),
                created_at: now(),
                created_by: actor.clone(),
                revoked_at: None,
                revoked_by: None,
            },
            secret_sha256: keys::hash(&secret).to_vec(),
        };
        self.write(|tx| {
            tx.insert_key(&stored)?;
            record(
                audit,
                RegistryAction {
                    tenant_id: tenant.to_string(),
                    actor: actor.to_string(),
                    action: RegistryActionKind::KeyCreated,
                    target: key_id.clone(),
                    sha256: None,
                    notes: Some(format!("role {role} for {subject}")),
                },
            )
        })?;
        Ok(NewKey { key_id, secret })
    }

    /// Who a secret speaks for. A wrong secret for an existing key id is
    /// `Unknown`, like a missing id; `Revoked` only for the right secret.
    pub fn authenticate(&self, secret: &str) -> std::result::Result<Principal, AuthError> {
        let key_id = keys::parse(secret).ok_or(AuthError::Malformed)?;
        let stored = self.store.key(key_id)?.ok_or(AuthError::Unknown)?;
        if !keys::constant_time_eq(&keys::hash(secret), &stored.secret_sha256) {
            return Err(AuthError::Unknown);
        }
        if stored.info.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        let KeyInfo {
            key_id,
            tenant,
            role,
            subject,
            ..
        } = stored.info;
        Ok(Principal {
            key_id,
            tenant,
            role,
            subject,
        })
    }

    /// The keys of one tenant, or of all tenants; never secrets or hashes.
    pub fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>> {
        self.store.keys(tenant)
    }

    /// Revokes a key for good; it authenticates as `Revoked` from now on.
    pub fn revoke_key(
        &self,
        key_id: &str,
        actor: &Subject,
        audit: &dyn AuditSink,
    ) -> Result<KeyInfo> {
        let at = now();
        self.write(|tx| {
            let key = tx.key(key_id)?.ok_or_else(|| RegistryError::KeyNotFound {
                key_id: key_id.to_owned(),
            })?;
            if key.revoked_at.is_some() {
                return Err(RegistryError::KeyAlreadyRevoked {
                    key_id: key_id.to_owned(),
                });
            }
            tx.revoke_key(key_id, &at, actor)?;
            record(
                audit,
                RegistryAction {
                    tenant_id: key.tenant.to_string(),
                    actor: actor.to_string(),
                    action: RegistryActionKind::KeyRevoked,
                    target: key_id.to_owned(),
                    sha256: None,
                    notes: None,
                },
            )?;
            Ok(KeyInfo {
                revoked_at: Some(at.clone()),
                revoked_by: Some(actor.clone()),
                ..key
            })
        })
    }
}

/// The last step of every write: no record, no action.
fn record(audit: &dyn AuditSink, action: RegistryAction) -> Result<()> {
    audit.record(&action).map_err(RegistryError::Audit)
}
