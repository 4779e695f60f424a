//! Upload: a validated module becomes the next `pending` version.

use std::collections::BTreeSet;

use aifn_types::{
    AuditTarget, CapturePolicy, FunctionName, InspectionReport, Limits, Manifest, RegistryAction,
    RegistryActionKind, ReportDiff, Role, TenantId, TestResult, Timestamp,
};

use crate::registry::{Result, sha256_hex};
use crate::store::NewVersionRow;
use crate::{Principal, Registry, RegistryError, Upload, VersionInfo, VersionRef};

pub(crate) fn require_role(actor: &Principal, role: Role, what: &str) -> Result<()> {
    if actor.role == role {
        Ok(())
    } else {
        Err(RegistryError::forbidden(format!(
            "a key with role {} may not {what}",
            actor.role
        )))
    }
}

/// The registry's rules for a manifest, as an upload applies them: its
/// schemas are JSON objects, its capture retention is in range, and its
/// tests are at most [`Manifest::MAX_TESTS`], uniquely named (1 to 64
/// characters) and each with exactly one expectation. Callers that run
/// the tests before uploading check them first with this.
pub fn check_manifest(manifest: &Manifest) -> Result<()> {
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
    check_tests(manifest)
}

/// The longest manifest test name.
const MAX_TEST_NAME: usize = 64;

/// At most [`Manifest::MAX_TESTS`] tests, each named (uniquely, 1 to 64
/// characters) and with exactly one expectation.
fn check_tests(manifest: &Manifest) -> Result<()> {
    let invalid = |m: String| Err(RegistryError::InvalidManifest(m));
    if manifest.tests.len() > Manifest::MAX_TESTS {
        return invalid(format!(
            "a manifest has at most {} tests, not {}",
            Manifest::MAX_TESTS,
            manifest.tests.len()
        ));
    }
    let mut names = BTreeSet::new();
    for test in &manifest.tests {
        let len = test.name.chars().count();
        if !(1..=MAX_TEST_NAME).contains(&len) || test.name.trim().is_empty() {
            return invalid(format!(
                "a test name has 1 to {MAX_TEST_NAME} characters and is not blank; {:?} is not one",
                test.name
            ));
        }
        if !names.insert(test.name.as_str()) {
            return invalid(format!("two tests are named {:?}", test.name));
        }
        test.expectation().map_err(RegistryError::InvalidManifest)?;
    }
    Ok(())
}

/// The results handed in are those of the manifest's tests, in its order.
fn check_results(manifest: &Manifest, results: &[TestResult]) -> Result<()> {
    let ran = results.iter().map(|r| r.name.as_str());
    if !ran.eq(manifest.tests.iter().map(|t| t.name.as_str())) {
        return Err(RegistryError::InvalidManifest(
            "the test results are not those of the manifest's tests, in its order".into(),
        ));
    }
    Ok(())
}

fn encode(op: &'static str, value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| RegistryError::Storage {
        op,
        source: Box::new(e),
    })
}

fn check_report(upload: &Upload<'_>, sha256: &str) -> Result<()> {
    if upload.report.sha256 != sha256 {
        return Err(RegistryError::ReportMismatch {
            field: "sha256",
            module: sha256.to_owned(),
            report: upload.report.sha256.clone(),
        });
    }
    let engine = upload
        .report
        .script
        .as_ref()
        .map(|s| s.engine.sha256.as_str());
    let runs_on = upload.runs_on.map(sha256_hex);
    if engine != runs_on.as_deref() {
        return Err(RegistryError::ReportMismatch {
            field: "script.engine.sha256",
            module: runs_on.unwrap_or_else(|| "no engine".into()),
            report: engine.unwrap_or("no script").to_owned(),
        });
    }
    let size = u64::try_from(upload.module.len()).unwrap_or(u64::MAX);
    if upload.report.size_bytes != size {
        return Err(RegistryError::ReportMismatch {
            field: "size_bytes",
            module: size.to_string(),
            report: upload.report.size_bytes.to_string(),
        });
    }
    Ok(())
}

/// The number after `latest` (1 for a new function).
fn following(latest: Option<u32>) -> Result<u32> {
    match latest {
        None => Ok(1),
        Some(v) => v
            .checked_add(1)
            .ok_or_else(|| RegistryError::Corrupt("version overflow".into())),
    }
}

impl Registry {
    /// The number the next upload of `name` in `tenant` gets now (1 for a
    /// new function). A racing upload may take it first: pass it as
    /// [`Upload::expected_version`] to be told.
    pub fn next_version(&self, tenant: &TenantId, name: &FunctionName) -> Result<u32> {
        following(self.store().latest_version(tenant, name)?)
    }

    /// Stores a validated module as the next version of `upload.name` in the
    /// actor's tenant, `pending`. The actor must be an author; the tenant and
    /// author are the actor's. The report must describe exactly these bytes,
    /// the manifest's limits must fit within `host_limits`, the test
    /// results must be those of the manifest's tests (they are stored in
    /// the inspection report) and, when given, `expected_version` must be
    /// the next number. A failed upload stores nothing; a refused one is
    /// recorded as refused.
    pub fn upload(
        &self,
        actor: &Principal,
        upload: Upload<'_>,
        host_limits: &Limits,
    ) -> Result<VersionInfo> {
        let sha256 = sha256_hex(upload.module);
        let attempt = RegistryAction {
            tenant_id: actor.tenant.clone(),
            actor: actor.subject.clone(),
            action: RegistryActionKind::Upload,
            target: AuditTarget::Function {
                name: upload.name.clone(),
            },
            sha256: Some(sha256.clone()),
            notes: None,
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        };
        self.store_upload(actor, upload, host_limits, &sha256, &attempt)
            .map_err(|e| self.refused(attempt, e))
    }

    fn store_upload(
        &self,
        actor: &Principal,
        upload: Upload<'_>,
        host_limits: &Limits,
        sha256: &str,
        attempt: &RegistryAction,
    ) -> Result<VersionInfo> {
        require_role(actor, Role::Author, "upload")?;
        check_report(&upload, sha256)?;
        let Upload {
            name,
            manifest,
            module,
            report,
            tests,
            source,
            runs_on,
            expected_version,
        } = upload;
        let effective_limits = host_limits.narrowed(&manifest.limits)?;
        check_manifest(&manifest)?;
        check_results(&manifest, &tests)?;
        let source_sha256 = source.as_ref().map(|s| sha256_hex(s.text.as_bytes()));
        let manifest_json = encode("encode manifest", &manifest)?;
        let tenant = &actor.tenant;
        let at = Timestamp::now();
        self.write(|tx| {
            let function_id = match tx.function_id(tenant, &name)? {
                Some(id) => id,
                None => tx.insert_function(tenant, &name, at)?,
            };
            // Numbered inside the write transaction, so racing uploads of
            // one function get consecutive numbers.
            let previous = tx.latest_report(function_id)?;
            let version = following(previous.as_ref().map(|(v, _)| *v))?;
            if let Some(expected) = expected_version
                && expected != version
            {
                return Err(RegistryError::VersionRace {
                    expected,
                    next: version,
                });
            }
            let inspection = InspectionReport {
                module: report.clone(),
                requested_limits: manifest.limits,
                effective_limits,
                diff: previous.map(|(v, old)| ReportDiff::between(v, &old, &report)),
                tests: tests.clone(),
            };
            let report_json = encode("encode report", &inspection)?;
            if let Some(engine) = runs_on {
                tx.put_module(&sha256_hex(engine), engine)?;
            }
            tx.put_module(sha256, module)?;
            tx.insert_version(&NewVersionRow {
                function_id,
                version,
                sha256,
                author: &actor.subject,
                uploaded_at: at,
                description: &manifest.description,
                manifest_json: &manifest_json,
                report_json: &report_json,
                source: source.as_ref().zip(source_sha256.as_deref()),
            })?;
            let target = VersionRef {
                tenant: tenant.clone(),
                name: name.clone(),
                version,
            };
            let info = tx
                .version(&target)?
                .ok_or_else(|| RegistryError::Corrupt("uploaded version vanished".into()))?;
            self.record(&RegistryAction {
                target: AuditTarget::Version {
                    name: name.clone(),
                    version,
                },
                ..attempt.clone()
            })?;
            Ok(info)
        })
    }
}
