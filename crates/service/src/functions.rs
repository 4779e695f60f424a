//! Registry use cases: upload (build a source upload's module, validate
//! and compile it in the runtime, run the manifest's tests, store pending)
//! and the decisions (approve, reject, revoke). Every attempt is recorded,
//! refusals included: the registry records the ones it decides inside its
//! transaction's rules, this module the ones decided before the registry
//! is asked (the role, the manifest, the module).

use std::borrow::Cow;

use aifn_registry::{Principal, RegistryError, Upload, VersionInfo, VersionRef};
use aifn_runtime::{LoadedModule, ModuleError, Runtime};
use aifn_types::{
    AuditTarget, FunctionName, Manifest, OutcomeKind, Refusal, RefusalKind, RegistryAction,
    RegistryActionKind, Role, Source, SourceLanguage,
};

use crate::auth::require;
use crate::schema::{compile_schema, not_an_object_schema};
use crate::{Service, ServiceError};

/// An upload: the module (or the source it is built from) and what its
/// author declares.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    /// The function name.
    pub name: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The wasm module bytes; empty for a source upload.
    pub module: Vec<u8>,
    /// The source to build the module from (instead of `module`): the
    /// approver then reads the code that runs.
    pub source: Option<Source>,
}

/// Uploads that lose the race for their version number to another
/// upload of the same function are tried again (tests re-run as the new
/// number) this many times in all.
const UPLOAD_ATTEMPTS: usize = 3;

/// What an approver decides on one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Activate it (superseding the active one), bound to the sha256 the
    /// approver inspected. Refused while a manifest test failed at upload.
    Approve {
        /// The module hash the approver inspected.
        sha256: &'a str,
    },
    /// [`Decision::Approve`] although manifest tests failed at upload: the
    /// override is recorded with the decision (the notes say why).
    ApproveOverridingTests {
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
    // The registry's own rules (tests, capture), before anything runs.
    aifn_registry::check_manifest(m).map_err(|e| invalid(e.to_string()))?;
    for test in &m.tests {
        if let Some(s) = &test.expect_output_schema {
            compile_schema(
                &format!("the expect_output_schema of test {:?}", test.name),
                s,
            )?;
        }
    }
    Ok(())
}

/// The module to upload: the bytes given, or those built from the source.
fn module_of<'a>(req: &'a UploadRequest, runtime: &Runtime) -> Result<Cow<'a, [u8]>, ServiceError> {
    let invalid = |message: &str| ServiceError::InvalidRequest {
        message: message.to_owned(),
    };
    let source = match (&req.source, req.module.is_empty()) {
        // The approver reads a JavaScript version's source: it is
        // uploaded as such, never as a package the client made.
        (None, false) if aifn_runtime::is_javascript_package(&req.module) => {
            return Err(invalid(
                "a JavaScript function is uploaded as its source (language javascript), not as a package",
            ));
        }
        (None, false) => return Ok(Cow::Borrowed(&req.module)),
        (Some(source), true) => source,
        (Some(_), false) => return Err(invalid("give the module or its source, not both")),
        (None, true) => return Err(invalid("a module or its source is required")),
    };
    if source.text.len() > Source::MAX_BYTES {
        return Err(ServiceError::PayloadTooLarge {
            message: format!(
                "the source is {} bytes, over the limit of {} bytes",
                source.text.len(),
                Source::MAX_BYTES
            ),
        });
    }
    match source.language {
        SourceLanguage::Wat => {
            wat::parse_str(&source.text)
                .map(Cow::Owned)
                .map_err(|e| ServiceError::InvalidModule {
                    kind: OutcomeKind::InvalidModule,
                    message: format!("the WAT source does not build: {e}"),
                })
        }
        // The source with the engine it will run on; the runtime compiles
        // it (and refuses a syntax error) when the package is loaded.
        SourceLanguage::Javascript => runtime
            .javascript(&source.text)
            .map(Cow::Owned)
            .map_err(module_refusal),
    }
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
        ServiceError::RateLimited { .. } => RefusalKind::RateLimited,
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
            override_failing_tests: false,
        };
        if let Err(e) = self.inner.audit.record_registry(&action) {
            tracing::error!(error = %e, action = action.action.as_str(), "could not record a refused registry action");
        }
        error
    }

    /// Builds (for a source upload), validates and compiles the module,
    /// runs the manifest's tests on it (each run recorded) and stores it as
    /// a new version, `pending`, with the tests' results in its report.
    pub fn upload(&self, who: &Principal, req: UploadRequest) -> Result<VersionInfo, ServiceError> {
        let name = parse_name(&req.name);
        let prepared = require(who, &[Role::Author], "uploading")
            .and_then(|()| name.clone().map(drop))
            .and_then(|()| check_manifest(&req.manifest))
            .and_then(|()| module_of(&req, &self.inner.runtime))
            .and_then(|bytes| Ok((self.check_module(&bytes, &req.manifest)?, bytes)))
            .and_then(|prepared| {
                self.admit_manifest_tests(who, &req.manifest)?;
                Ok(prepared)
            });
        let (name, (loaded, module)) = match (name, prepared) {
            (Ok(name), Ok(prepared)) => (name, prepared),
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
        let registry = &self.inner.registry;
        // A JavaScript version's engine is stored beside it.
        let engine = loaded
            .report()
            .script
            .as_ref()
            .and_then(|s| self.inner.runtime.js_engine_module(&s.engine.sha256));
        let mut attempts = 0;
        let info = loop {
            attempts += 1;
            if attempts > 1 {
                // Another upload took the number: the tests run again, and
                // count again.
                self.admit_manifest_tests(who, &req.manifest)?;
            }
            let version = registry.next_version(&who.tenant, &name)?;
            let tests = self.run_manifest_tests(who, &name, &req.manifest, &loaded, version)?;
            let upload = Upload {
                name: name.clone(),
                manifest: req.manifest.clone(),
                module: &module,
                report: loaded.report().clone(),
                tests,
                source: req.source.clone(),
                runs_on: engine.as_deref(),
                expected_version: Some(version),
            };
            match registry.upload(who, upload, self.inner.runtime.limits()) {
                Err(RegistryError::VersionRace { .. }) if attempts < UPLOAD_ATTEMPTS => {}
                stored => break stored?,
            }
        };
        tracing::info!(tenant = %who.tenant, function = %info.name, version = info.version, sha256 = %info.sha256, "uploaded");
        Ok(info)
    }

    /// Validates and compiles the module; the loaded module, if it may be
    /// stored.
    fn check_module(
        &self,
        module: &[u8],
        manifest: &Manifest,
    ) -> Result<LoadedModule, ServiceError> {
        let loaded = self.inner.runtime.load(module).map_err(module_refusal)?;
        let report = loaded.report();
        if let (Some(mem), Some(asked)) = (&report.memory, manifest.limits.memory_bytes)
            && mem.min_pages.saturating_mul(65536) > asked
        {
            return Err(ServiceError::InvalidRequest {
                message: format!(
                    "limits.memory_bytes = {asked} is below the module's initial memory of {} bytes",
                    mem.min_pages * 65536
                ),
            });
        }
        Ok(loaded)
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
            Decision::Approve { sha256 } | Decision::ApproveOverridingTests { sha256 } => {
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
            Decision::Approve { sha256 } => registry.approve(who, &t, sha256, notes, false)?,
            Decision::ApproveOverridingTests { sha256 } => {
                registry.approve(who, &t, sha256, notes, true)?
            }
            Decision::Reject { sha256 } => registry.reject(who, &t, sha256, notes)?,
            Decision::Revoke => registry.revoke(who, &t, notes)?,
        };
        if !matches!(decision, Decision::Reject { .. }) {
            self.inner.active.forget(&who.tenant, &t.name);
        }
        Ok(info)
    }
}
