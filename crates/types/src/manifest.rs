use serde::{Deserialize, Serialize};

use crate::LimitsRequest;

/// What an author declares with a module: shown to approvers, used by the
/// host to check inputs, and published to agents as a tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What the function does, for approvers and for the LLM that calls it.
    pub description: String,
    /// JSON Schema of the input; inputs are checked against it before a call.
    pub input_schema: serde_json::Value,
    /// JSON Schema of the output, if the author gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    /// Limits the function asks for; never above the host maxima.
    #[serde(default)]
    pub limits: LimitsRequest,
    /// Opt-in capture of raw inputs and outputs in the audit log, for
    /// replay. Absent means never capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CapturePolicy>,
}

/// Raw payload capture for replay, with a retention limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturePolicy {
    /// Captured payloads are deleted after this many days (1 to 90).
    pub retention_days: u32,
}

impl CapturePolicy {
    /// The longest retention a manifest may ask for.
    pub const MAX_RETENTION_DAYS: u32 = 90;
}

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
        }
    }
}

/// One registry action: who did what to which target, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAction {
    /// The tenant the target belongs to.
    pub tenant_id: String,
    /// The subject that acted (`cli` for local key administration).
    pub actor: String,
    /// What was done.
    pub action: RegistryActionKind,
    /// `name@version` for versions, the key id for keys.
    pub target: String,
    /// The module sha256, for version actions.
    pub sha256: Option<String>,
    /// The notes given (required for approve, reject and revoke).
    pub notes: Option<String>,
}
