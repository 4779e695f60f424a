//! What the registry hands to the audit log about every action it took or
//! refused: who did what to which target.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{FunctionName, NameError, Subject, TenantId};

/// A registry action, as handed to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryActionKind {
    /// A new version was uploaded (pending).
    Upload,
    /// A version was approved (active).
    Approve,
    /// A version was rejected.
    Reject,
    /// An active version was revoked.
    Revoke,
    /// An API key was created.
    KeyCreated,
    /// An API key was revoked.
    KeyRevoked,
    /// An agent's policy was created or replaced.
    PolicySet,
    /// An agent's policy was deleted (the agent may invoke nothing).
    PolicyDeleted,
    /// A tenant's settings (mode, budget, output guard) were changed.
    TenantSettings,
}

impl RegistryActionKind {
    /// The product name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryActionKind::Upload => "upload",
            RegistryActionKind::Approve => "approve",
            RegistryActionKind::Reject => "reject",
            RegistryActionKind::Revoke => "revoke",
            RegistryActionKind::KeyCreated => "key_created",
            RegistryActionKind::KeyRevoked => "key_revoked",
            RegistryActionKind::PolicySet => "policy_set",
            RegistryActionKind::PolicyDeleted => "policy_deleted",
            RegistryActionKind::TenantSettings => "tenant_settings",
        }
    }

    /// True for the actions on API keys (their target is a key id).
    pub fn is_key_action(self) -> bool {
        matches!(
            self,
            RegistryActionKind::KeyCreated | RegistryActionKind::KeyRevoked
        )
    }
}

/// What a registry action was about. Serializes to one string, as records
/// always had it: `name@version`, the function name alone, or the key id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuditTarget {
    /// One version of a function.
    Version {
        /// The function.
        name: FunctionName,
        /// The version number.
        version: u32,
    },
    /// A function, for an upload refused before it got a version number.
    Function {
        /// The function.
        name: FunctionName,
    },
    /// An API key.
    Key {
        /// The key's id.
        key_id: String,
    },
    /// An agent (the subject of its keys), for policy actions.
    Agent {
        /// The agent's subject.
        subject: Subject,
    },
    /// The tenant itself, for changes of its settings.
    Tenant,
}

impl AuditTarget {
    /// The function the target belongs to; `None` for keys.
    pub fn function_name(&self) -> Option<&FunctionName> {
        match self {
            AuditTarget::Version { name, .. } | AuditTarget::Function { name } => Some(name),
            AuditTarget::Key { .. } | AuditTarget::Agent { .. } | AuditTarget::Tenant => None,
        }
    }

    /// Reads the stored string back; which form it has follows from the
    /// action (a key id could also be a valid function name).
    pub fn parse(action: RegistryActionKind, s: &str) -> Result<AuditTarget, NameError> {
        match action {
            RegistryActionKind::KeyCreated | RegistryActionKind::KeyRevoked => {
                return Ok(AuditTarget::Key {
                    key_id: s.to_owned(),
                });
            }
            RegistryActionKind::PolicySet | RegistryActionKind::PolicyDeleted => {
                return Ok(AuditTarget::Agent {
                    subject: Subject::new(s)?,
                });
            }
            RegistryActionKind::TenantSettings => return Ok(AuditTarget::Tenant),
            _ => {}
        }
        // A function name never contains '@', so the first one separates.
        match s.split_once('@') {
            None => Ok(AuditTarget::Function {
                name: FunctionName::new(s)?,
            }),
            Some((name, version)) => Ok(AuditTarget::Version {
                name: FunctionName::new(name)?,
                version: version.parse().map_err(|_| NameError {
                    what: "audit target",
                    reason: "the version after '@' must be a number",
                })?,
            }),
        }
    }
}

impl fmt::Display for AuditTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditTarget::Version { name, version } => write!(f, "{name}@{version}"),
            AuditTarget::Function { name } => f.write_str(name.as_str()),
            AuditTarget::Key { key_id } => f.write_str(key_id),
            AuditTarget::Agent { subject } => f.write_str(subject.as_str()),
            // The tenant is already the record's `tenant_id`.
            AuditTarget::Tenant => f.write_str("tenant"),
        }
    }
}

impl Serialize for AuditTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why the registry or the service refused an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// The role, the tenant or separation of duties forbids it.
    Forbidden,
    /// No such function, version or key.
    NotFound,
    /// The target's state does not allow it, or the inspected hash is not
    /// the stored one.
    Conflict,
    /// The request itself is unacceptable (notes, manifest, limits).
    InvalidRequest,
    /// The module is not valid WebAssembly.
    InvalidModule,
    /// The module imports something the host does not offer.
    ForbiddenImport,
    /// The module took too long to compile.
    CompileTimeout,
    /// The upload is larger than allowed.
    PayloadTooLarge,
    /// Over a limit of this hour (an upload's tests over the tenant's
    /// test runs).
    RateLimited,
}

impl RefusalKind {
    /// Every kind, in a stable order.
    pub const ALL: [RefusalKind; 9] = [
        RefusalKind::Forbidden,
        RefusalKind::NotFound,
        RefusalKind::Conflict,
        RefusalKind::InvalidRequest,
        RefusalKind::InvalidModule,
        RefusalKind::ForbiddenImport,
        RefusalKind::CompileTimeout,
        RefusalKind::PayloadTooLarge,
        RefusalKind::RateLimited,
    ];

    /// The product name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Forbidden => "forbidden",
            RefusalKind::NotFound => "not_found",
            RefusalKind::Conflict => "conflict",
            RefusalKind::InvalidRequest => "invalid_request",
            RefusalKind::InvalidModule => "invalid_module",
            RefusalKind::ForbiddenImport => "forbidden_import",
            RefusalKind::CompileTimeout => "compile_timeout",
            RefusalKind::PayloadTooLarge => "payload_too_large",
            RefusalKind::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused action: what kind of refusal, and the message the caller got.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Refusal {
    /// The kind.
    pub kind: RefusalKind,
    /// Why, as the caller was told.
    pub reason: String,
}

/// One registry action, taken or refused: who did what to which target,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredAction")]
pub struct RegistryAction {
    /// The tenant the target belongs to.
    pub tenant_id: TenantId,
    /// The subject that acted (`cli` for local key administration).
    pub actor: Subject,
    /// What was done, or asked for.
    pub action: RegistryActionKind,
    /// What it was done to.
    pub target: AuditTarget,
    /// The module sha256, for version actions.
    pub sha256: Option<String>,
    /// The notes given (required for approve, reject and revoke).
    pub notes: Option<String>,
    /// Set when the action was refused; absent (not `null`) otherwise, so
    /// the records of actions taken keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// For policy and tenant-settings actions: the state before (JSON;
    /// `null` when there was none). Absent for other actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// For policy and tenant-settings actions: the state after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// An approval of a version whose manifest tests failed at upload,
    /// taken with the approver's explicit override (the notes say why).
    /// Absent when false, so other records keep their bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_failing_tests: bool,
}

/// The serialized form, whose target is read with its action's help.
#[derive(Deserialize)]
struct StoredAction {
    tenant_id: TenantId,
    actor: Subject,
    action: RegistryActionKind,
    target: String,
    sha256: Option<String>,
    notes: Option<String>,
    #[serde(default)]
    refused: Option<Refusal>,
    #[serde(default)]
    before: Option<serde_json::Value>,
    #[serde(default)]
    after: Option<serde_json::Value>,
    #[serde(default)]
    override_failing_tests: bool,
}

impl TryFrom<StoredAction> for RegistryAction {
    type Error = NameError;
    fn try_from(s: StoredAction) -> Result<RegistryAction, NameError> {
        Ok(RegistryAction {
            target: AuditTarget::parse(s.action, &s.target)?,
            tenant_id: s.tenant_id,
            actor: s.actor,
            action: s.action,
            sha256: s.sha256,
            notes: s.notes,
            refused: s.refused,
            before: s.before,
            after: s.after,
            override_failing_tests: s.override_failing_tests,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn action(kind: RegistryActionKind, target: AuditTarget) -> RegistryAction {
        RegistryAction {
            tenant_id: TenantId::new("acme").expect("tenant"),
            actor: Subject::new("cli").expect("actor"),
            action: kind,
            target,
            sha256: None,
            notes: None,
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        }
    }

    #[test]
    fn targets_serialize_to_the_strings_records_always_had() {
        let name = FunctionName::new("echo").expect("name");
        let v = AuditTarget::Version {
            name: name.clone(),
            version: 12,
        };
        let a = action(RegistryActionKind::Approve, v.clone());
        let json = serde_json::to_value(&a).expect("serialize");
        assert_eq!(
            json,
            json!({"tenant_id": "acme", "actor": "cli", "action": "approve",
                   "target": "echo@12", "sha256": null, "notes": null})
        );
        assert_eq!(
            serde_json::from_value::<RegistryAction>(json).expect("back"),
            a
        );
        let f = action(RegistryActionKind::Upload, AuditTarget::Function { name });
        let json = serde_json::to_value(&f).expect("serialize");
        assert_eq!(json["target"], "echo");
        assert_eq!(
            serde_json::from_value::<RegistryAction>(json).expect("back"),
            f
        );
    }

    #[test]
    fn a_key_id_that_looks_like_a_function_name_stays_a_key() {
        let k = AuditTarget::Key {
            key_id: "deadbeefdeadbeef".into(),
        };
        assert_eq!(
            AuditTarget::parse(RegistryActionKind::KeyRevoked, "deadbeefdeadbeef"),
            Ok(k.clone())
        );
        assert_eq!(k.function_name(), None);
        assert!(matches!(
            AuditTarget::parse(RegistryActionKind::Upload, "deadbeefdeadbeef"),
            Ok(AuditTarget::Function { .. })
        ));
        assert!(AuditTarget::parse(RegistryActionKind::Revoke, "echo@x").is_err());
        assert!(AuditTarget::parse(RegistryActionKind::Revoke, "Echo@1").is_err());
        assert_eq!(
            AuditTarget::parse(RegistryActionKind::Revoke, "echo@3")
                .expect("version")
                .function_name()
                .map(FunctionName::as_str),
            Some("echo")
        );
    }

    #[test]
    fn refusals_are_written_only_when_there_is_one() {
        let mut a = action(
            RegistryActionKind::KeyRevoked,
            AuditTarget::Key {
                key_id: "k1".into(),
            },
        );
        assert!(!serde_json::to_string(&a).expect("json").contains("refused"));
        a.refused = Some(Refusal {
            kind: RefusalKind::Conflict,
            reason: "already revoked".into(),
        });
        let json = serde_json::to_value(&a).expect("serialize");
        assert_eq!(
            json["refused"],
            json!({"kind": "conflict", "reason": "already revoked"})
        );
        assert_eq!(
            serde_json::from_value::<RegistryAction>(json).expect("back"),
            a
        );
    }

    #[test]
    fn refusal_kinds_have_their_product_names() {
        for k in RefusalKind::ALL {
            let json = serde_json::to_value(k).expect("serialize");
            assert_eq!(json, json!(k.as_str()));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(RefusalKind::PayloadTooLarge.as_str(), "payload_too_large");
        assert_eq!(RefusalKind::NotFound.as_str(), "not_found");
    }
}
