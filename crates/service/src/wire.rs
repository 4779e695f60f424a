//! The JSON bodies of the HTTP API's replies, shared by the server (which
//! serializes them) and the CLI (which deserializes them), so an API change
//! is a compile error or a clear deserialization error, never a silently
//! empty field.
//!
//! Bodies that are one value of another crate are that type itself:
//! `GET /v1/functions/{name}` answers a [`crate::FunctionDetail`]; a
//! version, an upload (201) and a decision answer a [`VersionInfo`];
//! `GET /v1/audit` answers an [`crate::AuditPage`]; a policy answers a
//! [`crate::PolicyInfo`], usage a [`crate::Usage`] and every tenant route a
//! [`crate::TenantInfo`].

use aifn_registry::{FunctionSummary, VersionInfo};
use aifn_types::{RejectReason, TenantId, TenantMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AgentInfo, ToolDefinition, Violation};

/// `GET /v1/functions`: the caller's tenant's functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionList {
    /// One summary per function, by name.
    pub functions: Vec<FunctionSummary>,
}

/// `GET /v1/pending`: versions awaiting an approver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionList {
    /// The versions, with their inspection reports.
    pub versions: Vec<VersionInfo>,
}

/// `GET /v1/tools`: the active functions as LLM tool definitions, in the
/// format asked for (`openai` or `anthropic`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolList {
    /// One definition per active function.
    pub tools: Vec<ToolDefinition>,
}

/// `POST /v1/functions/{name}/invoke`, 200: the call ran and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeReply {
    /// The execution id of the call's audit record.
    pub execution_id: String,
    /// The version that ran.
    pub version: u32,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time in milliseconds, admission to record.
    pub duration_ms: f64,
    /// The function's output.
    pub output: Value,
}

/// `POST /v1/functions/{name}/invoke`, 422: the call ran and failed or hit
/// a limit (`timeout`, `trap`, `function_error`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationFailure {
    /// The outcome kind and its message.
    pub error: ErrorDetail,
    /// The execution id of the call's audit record.
    pub execution_id: String,
    /// The version that ran.
    pub version: u32,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time in milliseconds, admission to record.
    pub duration_ms: f64,
}

/// Every other error answer: `{"error": {"kind", "message"}}`, with the
/// execution id when the refusal was recorded as an invocation attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
    /// The audit record of the refused or failed call, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

/// The `error` member of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The kind name: an outcome kind (`forbidden`, `not_found`, ...) or a
    /// request-level one (`invalid_request`, `unavailable`, ...).
    pub kind: String,
    /// What went wrong, safe to show the caller.
    pub message: String,
    /// For `invalid_input`: each way the input breaks the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<Violation>>,
    /// For a call the gateway rejected (`forbidden` or `rate_limited`):
    /// `not_allowed`, `denied` or `budget_exhausted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

/// `GET /healthz` (`ok`) and `GET /readyz` (`ready`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: String,
}

/// `GET /readyz`: ready, and the tenants whose agents may invoke every
/// active function (`open` mode, for development only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// The tenants in `open` mode, by id.
    pub open_tenants: Vec<TenantId>,
}

/// `GET /v1/agents`: the tenant's agents (subjects with agent keys or a
/// policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentList {
    /// One entry per agent subject.
    pub agents: Vec<AgentInfo>,
}

/// `PUT /v1/tenant/mode`: the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct TenantModeBody {
    /// `allowlist` or `open`.
    pub mode: TenantMode,
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::*;

    /// Parses `json` (a body the server answers today) and serializes it
    /// back to the same JSON.
    fn round_trip<T: Serialize + DeserializeOwned>(json: Value) {
        let typed: T = serde_json::from_value(json.clone()).expect("parses");
        assert_eq!(serde_json::to_value(&typed).expect("serializes"), json);
    }

    #[test]
    fn todays_bodies_round_trip() {
        round_trip::<Status>(serde_json::json!({"status": "ok"}));
        round_trip::<ToolList>(serde_json::json!({"tools": [
            {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}},
            {"name": "f", "description": "d", "input_schema": {"type": "object"}}
        ]}));
        round_trip::<InvokeReply>(serde_json::json!({
            "execution_id": "e1", "version": 2, "fuel_used": 10, "duration_ms": 0.5,
            "output": {"n": 1}
        }));
        round_trip::<InvocationFailure>(serde_json::json!({
            "error": {"kind": "timeout", "message": "deadline of 300 ms reached"},
            "execution_id": "e1", "version": 1, "fuel_used": 99, "duration_ms": 300.2
        }));
        round_trip::<ErrorBody>(serde_json::json!({
            "error": {"kind": "invalid_input", "message": "1 violation",
                      "violations": [{"path": "/a", "message": "not a string"}]},
            "execution_id": "e2"
        }));
        round_trip::<ErrorBody>(
            serde_json::json!({"error": {"kind": "forbidden", "message": "no"}}),
        );
        round_trip::<ErrorBody>(serde_json::json!({
            "error": {"kind": "forbidden", "message": "not allowed", "reason": "not_allowed"},
            "execution_id": "e3"
        }));
        round_trip::<Readiness>(serde_json::json!({"status": "ready", "open_tenants": ["acme"]}));
        round_trip::<TenantModeBody>(serde_json::json!({"mode": "open"}));
    }

    #[test]
    fn a_changed_body_is_an_error_not_an_empty_field() {
        let renamed = serde_json::json!({"error": {"type": "forbidden", "message": "no"}});
        let e = serde_json::from_value::<ErrorBody>(renamed).expect_err("refused");
        assert!(e.to_string().contains("kind"), "{e}");
        let e = serde_json::from_value::<InvokeReply>(serde_json::json!({"output": 1}))
            .expect_err("refused");
        assert!(e.to_string().contains("execution_id"), "{e}");
    }
}
