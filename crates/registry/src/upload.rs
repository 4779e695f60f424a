//! Upload: a validated module becomes the next `pending` version.

use aifn_types::{
    AuditTarget, CapturePolicy, InspectionReport, Limits, Manifest, RegistryAction,
    RegistryActionKind, ReportDiff, Role, Timestamp,
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

pub(crate) fn check_manifest(manifest: &Manifest) -> Result<()> {
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

fn check_report(upload: &Upload<'_>, sha256: &str) -> Result<()> {
    if upload.report.sha256 != sha256 {
        return Err(RegistryError::ReportMismatch {
            field: "sha256",
            module: sha256.to_owned(),
            report: upload.report.sha256.clone(),
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

impl Registry {
    /// Stores a validated module as the next version of `upload.name` in the
    /// actor's tenant, `pending`. The actor must be an author; the tenant and
    /// author are the actor's. The report must describe exactly these bytes,
    /// the manifest's limits must fit within `host_limits`. A failed upload
    /// stores nothing; a refused one is recorded as refused.
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
        } = upload;
        let effective_limits = host_limits.narrowed(&manifest.limits)?;
        check_manifest(&manifest)?;
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
