//! Registry use cases: upload (validate and compile in the runtime, store
//! pending) and the decisions (approve, reject, revoke). Every attempt is
//! recorded, refusals included: the registry records the ones it decides
//! inside its transaction's rules, this module the ones decided before
//! the registry is asked (the role, the manifest, the module).

use aifn_registry::{Principal, Upload, VersionInfo, VersionRef};
use aifn_runtime::ModuleError;
use aifn_types::{
    AuditTarget, FunctionName, Manifest, Refusal, RefusalKind, RegistryAction, RegistryActionKind,
    Role,
};

use crate::auth::require;
use crate::schema::{compile_schema, not_an_object_schema};
use crate::{Service, ServiceError};

/// An upload: the module and what its author declares.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    /// The function name.
    pub name: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The wasm module bytes.
    pub module: Vec<u8>,
}

/// What an approver decides on one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Activate it (superseding the active one), bound to the sha256 the
    /// approver inspected.
    Approve {
        /// The module hash the approver inspected.
        sha256: &'a str,
    },
    /// Refuse a pending version, bound to the sha256 the approver inspected.
    Reject {
        /// The module hash the approver inspected.
        sha256: &'a str,
    },
    /// Stop the active version: the next call gets `not_active`.
    Revoke,
}

/// The longest description a manifest may carry.
const MAX_DESCRIPTION: usize = 4096;

fn parse_name(s: &str) -> Result<FunctionName, ServiceError> {
    FunctionName::new(s).map_err(|e| ServiceError::InvalidRequest {
        message: e.to_string(),
    })
}

fn module_refusal(e: ModuleError) -> ServiceError {
    match e {
        ModuleError::TooLarge { .. } => ServiceError::PayloadTooLarge {
            message: e.to_string(),
        },
        other => ServiceError::InvalidModule {
            kind: other.kind(),
            message: other.to_string(),
        },
    }
}

/// The manifest's own rules, before the module is looked at.
fn check_manifest(m: &Manifest) -> Result<(), ServiceError> {
    let invalid = |message: String| ServiceError::InvalidRequest { message };
    if m.description.trim().is_empty() || m.description.len() > MAX_DESCRIPTION {
        return Err(invalid(format!(
            "description must have 1 to {MAX_DESCRIPTION} characters"
        )));
    }
    if let Some(why) = not_an_object_schema(&m.input_schema) {
        return Err(invalid(why));
    }
    compile_schema("input_schema", &m.input_schema)?;
    if let Some(s) = &m.output_schema {
        compile_schema("output_schema", s)?;
    }
    Ok(())
}

/// The audit name of a refusal the service decided, if it is one. The
/// service decides the role, the manifest and the module; the registry
/// records the refusals it decides itself (not found, conflicts).
fn refusal_kind(e: &ServiceError) -> Option<RefusalKind> {
    use aifn_types::OutcomeKind as O;
    Some(match e {
        ServiceError::Forbidden { .. } => RefusalKind::Forbidden,
        ServiceError::InvalidRequest { .. } => RefusalKind::InvalidRequest,
        ServiceError::PayloadTooLarge { .. } => RefusalKind::PayloadTooLarge,
        ServiceError::InvalidModule { kind, .. } => match kind {
            O::ForbiddenImport => RefusalKind::ForbiddenImport,
            O::CompileTimeout => RefusalKind::CompileTimeout,
            _ => RefusalKind::InvalidModule,
        },
        _ => return None,
    })
}

/// What a refused attempt was about.
struct Attempted<'a> {
    action: RegistryActionKind,
    target: AuditTarget,
    sha256: Option<&'a str>,
    notes: Option<&'a str>,
}

impl Service {
    /// Records a registry action the service refused, then returns the
    /// refusal. If the record cannot be written the refusal still stands
    /// (nothing changed), and the failure is logged.
    fn refused(&self, who: &Principal, at: Attempted<'_>, error: ServiceError) -> ServiceError {
        let Some(kind) = refusal_kind(&error) else {
            return error;
        };
        let action = RegistryAction {
            tenant_id: who.tenant.clone(),
            actor: who.subject.clone(),
            action: at.action,
            target: at.target,
            sha256: at.sha256.map(str::to_owned),
            notes: at.notes.map(str::to_owned),
            refused: Some(Refusal {
                kind,
                reason: error.to_string(),
            }),
            before: None,
            after: None,
        };
        if let Err(e) = self.inner.audit.record_registry(&action) {
            tracing::error!(error = %e, action = action.action.as_str(), "could not record a refused registry action");
        }
        error
    }

    /// Validates, compiles and stores a new version, `pending`.
    pub fn upload(&self, who: &Principal, req: UploadRequest) -> Result<VersionInfo, ServiceError> {
        let name = parse_name(&req.name);
        let prepared = require(who, &[Role::Author], "uploading")
            .and_then(|()| name.clone().map(drop))
            .and_then(|()| check_manifest(&req.manifest))
            .and_then(|()| self.check_module(&req));
        let (name, report) = match (name, prepared) {
            (Ok(name), Ok(report)) => (name, report),
            (Ok(name), Err(e)) => {
                let at = Attempted {
                    action: RegistryActionKind::Upload,
                    target: AuditTarget::Function { name },
                    sha256: None,
                    notes: None,
                };
                return Err(self.refused(who, at, e));
            }
            // A name that is not one cannot be put in a record's target:
            // it is refused as a malformed request only.
            (Err(_), Err(e)) | (Err(e), Ok(_)) => return Err(e),
        };
        let upload = Upload {
            name,
            manifest: req.manifest,
            module: &req.module,
            report,
        };
        let info = self
            .inner
            .registry
            .upload(who, upload, self.inner.runtime.limits())?;
        tracing::info!(tenant = %who.tenant, function = %info.name, version = info.version, sha256 = %info.sha256, "uploaded");
        Ok(info)
    }

    /// Validates and compiles the module; its report, if it may be stored.
    fn check_module(&self, req: &UploadRequest) -> Result<aifn_types::ModuleReport, ServiceError> {
        let loaded = self
            .inner
            .runtime
            .load(&req.module)
            .map_err(module_refusal)?;
        let report = loaded.report().clone();
        if let (Some(mem), Some(asked)) = (&report.memory, req.manifest.limits.memory_bytes)
            && mem.min_pages.saturating_mul(65536) > asked
        {
            return Err(ServiceError::InvalidRequest {
                message: format!(
                    "limits.memory_bytes = {asked} is below the module's initial memory of {} bytes",
                    mem.min_pages * 65536
                ),
            });
        }
        Ok(report)
    }

    /// A decision on one version: the role first (so a caller without it
    /// learns nothing more), then the registry's own rules. Refusals are
    /// recorded where the target is a real name; a change to the active
    /// version is forgotten by the cache at once, so the next call sees it.
    pub fn decide(
        &self,
        who: &Principal,
        (function, version): (&str, u32),
        decision: Decision<'_>,
        notes: &str,
    ) -> Result<VersionInfo, ServiceError> {
        let (action, sha256, what) = match decision {
            Decision::Approve { sha256 } => {
                (RegistryActionKind::Approve, Some(sha256), "approving")
            }
            Decision::Reject { sha256 } => (RegistryActionKind::Reject, Some(sha256), "rejecting"),
            Decision::Revoke => (RegistryActionKind::Revoke, None, "revoking"),
        };
        let name = parse_name(function);
        if let Err(e) = require(who, &[Role::Approver], what) {
            let Ok(name) = name else { return Err(e) };
            let at = Attempted {
                action,
                target: AuditTarget::Version { name, version },
                sha256,
                notes: Some(notes),
            };
            return Err(self.refused(who, at, e));
        }
        let t = VersionRef {
            tenant: who.tenant.clone(),
            name: name?,
            version,
        };
        let registry = &self.inner.registry;
        let info = match decision {
            Decision::Approve { sha256 } => registry.approve(who, &t, sha256, notes)?,
            Decision::Reject { sha256 } => registry.reject(who, &t, sha256, notes)?,
            Decision::Revoke => registry.revoke(who, &t, notes)?,
        };
        if !matches!(decision, Decision::Reject { .. }) {
            self.inner.active.forget(&who.tenant, &t.name);
        }
        Ok(info)
    }
}
