//! Offline verification of a bundle: pure, no database.

use std::collections::BTreeSet;

use aifn_audit::{
    AuditRecord, EvidenceError, ExecutionRecord, KeySource, RegistryRecord, verify_evidence,
};
use aifn_registry::{Decision, VersionAction, VersionInfo};
use aifn_types::{AuditTarget, RegistryActionKind};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{BUNDLE_FORMAT, Bundle};

/// What [`verify_bundle`] checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// Records rehashed from their bodies.
    pub records: u64,
    /// Links of other records checked.
    pub links: u64,
    /// Checkpoint signatures checked.
    pub checkpoints: u64,
    /// Versions whose upload and decisions were matched to the chain.
    pub versions: u64,
    /// Module bytes hashed against their version's sha256.
    pub modules_checked: u64,
    /// The public key (hex) the checkpoints were verified with.
    pub public_key: String,
    /// Whether that key was given (trusted) or named by the checkpoints.
    pub key_source: KeySource,
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file is not a bundle.
    #[error("not an evidence bundle: {reason}")]
    Parse {
        /// The parse error.
        reason: String,
    },
    /// A bundle of a format this build does not know.
    #[error("bundle format {found:?} is not {BUNDLE_FORMAT:?}")]
    Format {
        /// The format found.
        found: String,
    },
    /// The records, links or checkpoints do not verify.
    #[error("the evidence does not verify: {0}")]
    Evidence(#[from] EvidenceError),
    /// A record of another tenant than the bundle's.
    #[error("record {seq} is not of the bundle's tenant")]
    ForeignRecord {
        /// The record.
        seq: u64,
    },
    /// A version of another tenant than the bundle's.
    #[error("version {version} is not of the bundle's tenant")]
    ForeignVersion {
        /// `name@version`.
        version: String,
    },
    /// A module that is not base64.
    #[error("the module of {version} is not base64")]
    BadModule {
        /// `name@version`.
        version: String,
    },
    /// A module whose sha256 is not its version's.
    #[error("the module of {version} does not hash to the version's sha256")]
    ModuleMismatch {
        /// `name@version`.
        version: String,
    },
    /// A version without a chained upload record by its author with its sha256.
    #[error("the upload of {version} by its author with its sha256 is not among the records")]
    UnchainedUpload {
        /// `name@version`.
        version: String,
    },
    /// A decision without a chained registry record that matches it.
    #[error("the {action} of {version} by {actor} does not match any registry record")]
    UnchainedDecision {
        /// `name@version`.
        version: String,
        /// The decision's action.
        action: String,
        /// The decision's actor.
        actor: String,
    },
    /// An execution record whose module is none of the bundled versions'.
    #[error("execution record {seq} ran a module that is none of the bundled versions'")]
    UnknownModule {
        /// The record.
        seq: u64,
    },
    /// The execution the bundle was asked for is not among its records.
    #[error("execution {execution_id}, which the bundle is of, is not among its records")]
    MissingExecution {
        /// The execution id.
        execution_id: String,
    },
}

/// Verifies a bundle file with no database: the evidence (every hash
/// link, every checkpoint signature: against `trusted_key` when given),
/// that every record is of the bundle's tenant, each module present
/// against its version's sha256, each version's upload and decisions
/// against chained registry records, each execution record's module
/// against the bundled versions, and the asked-for execution's presence.
pub fn verify_bundle(
    bytes: &[u8],
    trusted_key: Option<&[u8; 32]>,
) -> Result<BundleReport, BundleError> {
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| BundleError::Parse {
        reason: e.to_string(),
    })?;
    if bundle.format != BUNDLE_FORMAT {
        return Err(BundleError::Format {
            found: bundle.format,
        });
    }
    let evidence = verify_evidence(&bundle.evidence, trusted_key)?;
    let tenant = bundle.tenant_id.as_str();
    let mut records = Vec::with_capacity(bundle.evidence.records.len());
    for r in &bundle.evidence.records {
        let rec: AuditRecord =
            serde_json::from_str(&r.body).map_err(|e| EvidenceError::BadBody {
                seq: r.seq,
                reason: e.to_string(),
            })?;
        if rec.tenant_id() != Some(tenant) {
            return Err(BundleError::ForeignRecord { seq: r.seq });
        }
        records.push((r.seq, rec));
    }
    let registry: Vec<&RegistryRecord> = records
        .iter()
        .filter_map(|(_, r)| match r {
            AuditRecord::Registry(r) => Some(r),
            _ => None,
        })
        .collect();
    let mut modules_checked = 0;
    let mut shas = BTreeSet::new();
    for v in &bundle.versions {
        let info = &v.info;
        let named = format!("{}@{}", info.name, info.version);
        if info.tenant != bundle.tenant_id {
            return Err(BundleError::ForeignVersion { version: named });
        }
        if let Some(b64) = &v.module_base64 {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| BundleError::BadModule {
                    version: named.clone(),
                })?;
            if hex::encode(Sha256::digest(&bytes)) != info.sha256 {
                return Err(BundleError::ModuleMismatch { version: named });
            }
            modules_checked += 1;
        }
        check_version(info, &registry)?;
        shas.insert(info.sha256.as_str());
    }
    for (seq, rec) in &records {
        if let AuditRecord::Execution(r) = rec
            && r.module_sha256
                .as_deref()
                .is_some_and(|m| !shas.contains(m))
        {
            return Err(BundleError::UnknownModule { seq: *seq });
        }
    }
    if let Some(id) = &bundle.request.execution {
        let found = records.iter().any(|(_, r)| {
            matches!(r, AuditRecord::Execution(ExecutionRecord { execution_id, .. }) if execution_id == id)
        });
        if !found {
            return Err(BundleError::MissingExecution {
                execution_id: id.clone(),
            });
        }
    }
    Ok(BundleReport {
        records: evidence.records,
        links: evidence.links,
        checkpoints: evidence.checkpoints,
        versions: bundle.versions.len() as u64,
        modules_checked,
        public_key: evidence.public_key,
        key_source: evidence.key_source,
    })
}

/// The version's upload and each decision have a matching chained record.
fn check_version(info: &VersionInfo, registry: &[&RegistryRecord]) -> Result<(), BundleError> {
    let named = format!("{}@{}", info.name, info.version);
    let about = |r: &RegistryRecord, version: u32| {
        r.action.refused.is_none()
            && matches!(&r.action.target, AuditTarget::Version { name, version: v }
                if *name == info.name && *v == version)
    };
    let uploaded = registry.iter().any(|r| {
        about(r, info.version)
            && r.action.action == RegistryActionKind::Upload
            && r.action.actor == info.author
            && r.action.sha256.as_deref() == Some(info.sha256.as_str())
    });
    if !uploaded {
        return Err(BundleError::UnchainedUpload { version: named });
    }
    for d in &info.decisions {
        let matched = match kind_of(d.action) {
            Some(kind) => registry.iter().any(|r| {
                about(r, info.version)
                    && r.action.action == kind
                    && r.action.actor == d.actor
                    && r.action.sha256.as_deref() == Some(d.sha256.as_str())
                    && r.action.override_failing_tests == d.override_failing_tests
                    && notes_match(r.action.notes.as_deref(), &d.notes)
            }),
            // A supersede is the approval of the version that replaced
            // it, by the same approver.
            None => superseded_by(d).is_some_and(|newer| {
                registry.iter().any(|r| {
                    about(r, newer)
                        && r.action.action == RegistryActionKind::Approve
                        && r.action.actor == d.actor
                })
            }),
        };
        if !matched {
            return Err(BundleError::UnchainedDecision {
                version: named,
                action: d.action.to_string(),
                actor: d.actor.to_string(),
            });
        }
    }
    Ok(())
}

fn kind_of(action: VersionAction) -> Option<RegistryActionKind> {
    match action {
        VersionAction::Approve => Some(RegistryActionKind::Approve),
        VersionAction::Reject => Some(RegistryActionKind::Reject),
        VersionAction::Revoke => Some(RegistryActionKind::Revoke),
        VersionAction::Supersede => None,
    }
}

/// The version a supersede's notes name (`superseded by version N`).
pub(super) fn superseded_by(d: &Decision) -> Option<u32> {
    d.notes
        .strip_prefix("superseded by version ")
        .and_then(|n| n.parse().ok())
}

/// The audit log cuts notes at 4 KiB and marks the cut.
const CUT_MARK: &str = "…[truncated]";

fn notes_match(recorded: Option<&str>, decided: &str) -> bool {
    match recorded {
        Some(r) if r == decided => true,
        Some(r) => r
            .strip_suffix(CUT_MARK)
            .is_some_and(|kept| kept.len() < decided.len() && decided.starts_with(kept)),
        None => decided.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_match_exactly_or_up_to_the_audit_logs_cut() {
        assert!(notes_match(Some("fine"), "fine"));
        assert!(!notes_match(Some("fine"), "fine!"));
        assert!(notes_match(Some("abc…[truncated]"), "abcdef"));
        assert!(!notes_match(Some("abc…[truncated]"), "abd"));
        assert!(
            !notes_match(Some("abc…[truncated]"), "abc"),
            "nothing was cut"
        );
        assert!(notes_match(None, ""));
        assert!(!notes_match(None, "x"));
    }

    #[test]
    fn a_supersede_names_the_version_that_replaced_it() {
        let d = |notes: &str| Decision {
            action: VersionAction::Supersede,
            actor: aifn_types::Subject::new("bob").expect("subject"),
            at: aifn_types::Timestamp::UNIX_EPOCH,
            notes: notes.into(),
            sha256: String::new(),
            override_failing_tests: false,
        };
        assert_eq!(superseded_by(&d("superseded by version 3")), Some(3));
        assert_eq!(superseded_by(&d("superseded by version x")), None);
        assert_eq!(superseded_by(&d("replaced")), None);
        assert_eq!(kind_of(VersionAction::Supersede), None);
        assert_eq!(
            kind_of(VersionAction::Revoke),
            Some(RegistryActionKind::Revoke)
        );
    }
}
