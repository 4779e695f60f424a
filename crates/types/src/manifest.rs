use serde::{Deserialize, Serialize};

use crate::{GuardMode, LimitsRequest};

/// What an author declares with a module: shown to approvers, used by the
/// host to check inputs, and published to agents as a tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
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
    /// The output guard's mode for this function, lowering or raising the
    /// tenant's (approved with the version). Absent: the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_guard: Option<GuardMode>,
}

/// Raw payload capture for replay, with a retention limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CapturePolicy {
    /// Captured payloads are deleted after this many days (1 to 90).
    pub retention_days: u32,
}

impl CapturePolicy {
    /// The longest retention a manifest may ask for.
    pub const MAX_RETENTION_DAYS: u32 = 90;
}
