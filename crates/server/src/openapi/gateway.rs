//! The agent gateway's part of the document: agent policies, usage and the
//! tenant's settings (mode, budget, output guard), their routes and bodies.

use serde_json::{Value, json};

use super::schemas::schema_ref;
use super::{Access, error_response, list_of, ok, operation};

const READERS: &str = "admin, approver, author (agents are refused)";
const ADMIN: &str = "admin";

fn subject_param() -> Value {
    json!({"name": "subject", "in": "path", "required": true,
        "description": "the agent's subject (printable ASCII, no spaces, up to 128 bytes)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 128}})
}

const NO_POLICY: &str =
    "not_found: the agent has no policy (it invokes nothing unless the tenant is open)";
const BAD_SUBJECT: &str =
    "invalid_request: a subject that is not printable ASCII, or a malformed body";

fn policy_routes() -> Value {
    let get = operation(
        "an agent's policy",
        Access::Roles(READERS),
        vec![subject_param()],
        None,
        json!({
            "200": ok("the policy and its version", schema_ref("PolicyInfo")),
            "400": error_response(BAD_SUBJECT),
            "404": error_response(NO_POLICY)
        }),
    );
    let put = operation(
        "set an agent's policy (effective at its next call; recorded as policy_set with before and after)",
        Access::Roles(ADMIN),
        vec![subject_param()],
        Some(schema_ref("AgentPolicy")),
        json!({
            "200": ok("the policy with its new version", schema_ref("PolicyInfo")),
            "400": error_response("invalid_request: a bad subject, pattern or limit, or a malformed body"),
            "503": error_response("unavailable: the audit log cannot record the change, or the server is at capacity")
        }),
    );
    let delete = operation(
        "delete an agent's policy (it invokes nothing again; recorded as policy_deleted)",
        Access::Roles(ADMIN),
        vec![subject_param()],
        None,
        json!({
            "204": {"description": "deleted; no body"},
            "400": error_response(BAD_SUBJECT),
            "404": error_response(NO_POLICY),
            "503": error_response("unavailable: the audit log cannot record the change, or the server is at capacity")
        }),
    );
    json!({"get": get, "put": put, "delete": delete})
}

fn tenant_change(summary: &str, body: Value) -> Value {
    operation(
        summary,
        Access::Roles(ADMIN),
        vec![],
        Some(body),
        json!({
            "200": ok("the tenant's settings after the change", schema_ref("TenantInfo")),
            "400": error_response("invalid_request: a malformed body, or (output guard) a pattern name or regular expression that is refused"),
            "503": error_response("unavailable: the audit log cannot record the change, or the server is at capacity")
        }),
    )
}

/// The routes, by path.
pub(super) fn paths() -> Value {
    json!({
        "/v1/agents": {"get": operation("the tenant's agents: subjects with agent keys or a policy",
            Access::Roles(READERS), vec![], None,
            json!({"200": ok("agents", list_of("agents", schema_ref("AgentInfo")))}))},
        "/v1/agents/{subject}/policy": policy_routes(),
        "/v1/agents/{subject}/usage": {"get": operation(
            "an agent's and its tenant's budget usage in the current window (fixed one-hour windows aligned to the UTC hour, counted per node)",
            Access::Roles(ADMIN), vec![subject_param()], None,
            json!({"200": ok("usage", schema_ref("Usage")), "400": error_response(BAD_SUBJECT)}))},
        "/v1/tenant": {"get": operation("the tenant's settings: mode, budget, output guard",
            Access::Roles(READERS), vec![], None,
            json!({"200": ok("settings", schema_ref("TenantInfo"))}))},
        "/v1/tenant/mode": {"put": tenant_change(
            "set the tenant's mode: allowlist (the default) or open (every agent may invoke every active function; for development only)",
            json!({"type": "object", "additionalProperties": false, "required": ["mode"],
                "properties": {"mode": schema_ref("TenantMode")}}))},
        "/v1/tenant/budget": {"put": tenant_change("set the tenant's budget over all its agents (an empty object removes it)", schema_ref("Budget"))},
        "/v1/tenant/output-guard": {"put": tenant_change("set the tenant's output guard", schema_ref("GuardSettings"))}
    })
}

/// The bodies, by name.
pub(super) fn schemas() -> Value {
    let count = || json!({"type": "integer", "minimum": 0});
    let time = || json!({"type": "string", "format": "date-time"});
    let pattern = json!({"type": "string", "pattern": "^([a-z][a-z0-9_]{0,63}|[a-z][a-z0-9_]{0,62}\\*|\\*)$",
        "description": "a function name, or a prefix of names ending in * (* alone: every function)"});
    let positive = || json!({"type": "integer", "minimum": 1});
    json!({
        "TenantMode": {"type": "string", "enum": ["allowlist", "open"]},
        "Budget": {"type": "object", "additionalProperties": false,
            "description": "per fixed one-hour window aligned to the UTC hour; absent: no budget",
            "properties": {"fuel_per_hour": count(), "calls_per_hour": count()}},
        "FunctionLimits": {"type": "object", "additionalProperties": false,
            "description": "lowers (never raises) the function's own limits for this agent",
            "properties": {"fuel": positive(), "timeout_ms": positive(), "memory_bytes": positive()}},
        "AgentPolicy": {"type": "object", "additionalProperties": false,
            "description": "deny wins over allow; an agent with no policy invokes nothing unless its tenant is open",
            "properties": {
                "allow": {"type": "array", "items": pattern.clone()},
                "deny": {"type": "array", "items": pattern},
                "limits": {"type": "object", "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,63}$"},
                    "additionalProperties": schema_ref("FunctionLimits")},
                "budget": schema_ref("Budget")}},
        "PolicyInfo": {"type": "object", "required": ["subject", "version", "policy", "updated_at", "updated_by"], "properties": {
            "subject": {"type": "string"},
            "version": {"type": "integer", "minimum": 1, "description": "per agent, from 1, one more on every set (also after a delete)"},
            "policy": schema_ref("AgentPolicy"), "updated_at": time(), "updated_by": {"type": "string"}}},
        "AgentInfo": {"type": "object", "required": ["subject", "active_keys"], "properties": {
            "subject": {"type": "string"}, "active_keys": count(),
            "policy_version": {"type": ["integer", "null"], "minimum": 1, "description": "null: no policy"}}},
        "WindowUsage": {"type": "object", "required": ["calls", "fuel", "budget"], "properties": {
            "calls": count(), "fuel": count(), "budget": schema_ref("Budget")}},
        "Usage": {"type": "object", "required": ["subject", "window_start", "window_end", "agent", "tenant"], "properties": {
            "subject": {"type": "string"}, "window_start": time(), "window_end": time(),
            "agent": schema_ref("WindowUsage"), "tenant": schema_ref("WindowUsage")}},
        "GuardPattern": {"type": "object", "additionalProperties": false, "required": ["name", "regex"], "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}, "regex": {"type": "string"}}},
        "GuardSettings": {"type": "object", "additionalProperties": false, "properties": {
            "mode": {"type": "string", "enum": ["off", "flag", "block"], "default": "flag"},
            "patterns": {"type": "array", "items": schema_ref("GuardPattern")}}},
        "TenantSettings": {"type": "object", "properties": {
            "mode": schema_ref("TenantMode"), "budget": schema_ref("Budget"),
            "output_guard": schema_ref("GuardSettings")}},
        "TenantInfo": {"type": "object", "required": ["tenant_id", "settings", "version"], "properties": {
            "tenant_id": {"type": "string"}, "settings": schema_ref("TenantSettings"),
            "version": {"type": "integer", "minimum": 0, "description": "0 until the first change"},
            "updated_at": {"oneOf": [time(), {"type": "null"}]},
            "updated_by": {"type": ["string", "null"]}}}
    })
}
