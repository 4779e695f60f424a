//! The document's `components.schemas`: the bodies the routes answer with.
//! Enums come from the product's own lists where it has one.

use aifn_service::ErrorKind;
use aifn_types::{OutcomeKind, VersionState};
use serde_json::{Value, json};

/// A `$ref` to a schema of this module.
pub(super) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

fn sha256() -> Value {
    json!({"type": "string", "pattern": "^[0-9a-f]{64}$"})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

/// The names of the product's outcome kinds, `ok` included.
pub(super) fn outcome_kinds() -> Vec<&'static str> {
    OutcomeKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// The one error body, and what a failed call adds to it.
fn errors() -> Value {
    let kinds: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    // What a call that ran can end in, other than ok.
    let failures: Vec<&str> = OutcomeKind::ALL
        .iter()
        .filter(|k| {
            **k != OutcomeKind::Ok
                && **k != OutcomeKind::InvalidInput
                && !k.is_refusal()
                && !k.is_module_refusal()
        })
        .map(|k| k.as_str())
        .collect();
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "object", "required": ["kind", "message"], "additionalProperties": false, "properties": {
                "kind": {"type": "string", "enum": kinds},
                "message": {"type": "string", "minLength": 1},
                "violations": {"type": "array", "description": "invalid_input only: each way the input breaks the function's schema",
                    "items": {"type": "object", "required": ["path", "message"], "properties": {
                        "path": {"type": "string", "description": "JSON Pointer into the input (empty: the whole input)"},
                        "message": {"type": "string"}}}},
                "reason": {"type": "string", "enum": ["not_allowed", "denied", "budget_exhausted"],
                    "description": "a call the gateway rejected: not_allowed or denied (forbidden), budget_exhausted (rate_limited)"}
            }},
            "execution_id": {"type": "string", "description": "the audit record of a refused call"}
        }},
        "InvocationFailure": {"description": "a call that ran (or was loaded) and failed or hit a limit, or whose output the output guard withheld (output_blocked: the output is never answered); recorded in the audit log under execution_id",
            "allOf": [schema_ref("Error")],
            "type": "object", "required": ["error", "execution_id", "version", "fuel_used", "duration_ms"],
            "properties": {
                "error": {"properties": {"kind": {"enum": failures}}},
                "execution_id": {"type": "string"},
                "version": {"type": "integer", "minimum": 1},
                "fuel_used": count(),
                "duration_ms": {"type": "number", "minimum": 0}
            }},
        "InvokeResult": {"type": "object", "required": ["output", "execution_id", "version", "fuel_used", "duration_ms"],
            "properties": {
                "output": {"description": "the function's output: any JSON (matching its output_schema, if it has one)"},
                "execution_id": {"type": "string"},
                "version": {"type": "integer", "minimum": 1},
                "fuel_used": count(),
                "duration_ms": {"type": "number", "minimum": 0}
            }}
    })
}

/// Functions, versions and what they are uploaded with.
fn registry() -> Value {
    let states: Vec<&str> = VersionState::ALL.iter().map(|s| s.as_str()).collect();
    let limit = json!({"type": "integer", "minimum": 1});
    json!({
        "Manifest": {"type": "object", "additionalProperties": false, "required": ["description", "input_schema"], "properties": {
            "description": {"type": "string", "minLength": 1, "maxLength": 4096},
            "input_schema": {"type": "object", "required": ["type"], "properties": {"type": {"const": "object"}},
                "description": "a JSON Schema whose root is an object schema (tool definitions need one)"},
            "output_schema": {"type": "object"},
            "limits": {"type": "object", "additionalProperties": false, "properties": {
                "fuel": limit, "timeout_ms": limit, "memory_bytes": limit, "table_elements": limit,
                "input_bytes": limit, "output_bytes": limit, "log_bytes": limit}},
            "capture": {"type": "object", "additionalProperties": false, "required": ["retention_days"],
                "properties": {"retention_days": {"type": "integer", "minimum": 1, "maximum": aifn_types::CapturePolicy::MAX_RETENTION_DAYS}}},
            "output_guard": {"type": "string", "enum": ["off", "flag", "block"],
                "description": "the output guard's mode for this function (absent: the tenant's)"},
            "tests": {"type": "array", "maxItems": aifn_types::Manifest::MAX_TESTS, "items": schema_ref("ManifestTest"),
                "description": "run at upload in the sandbox under the version's limits; approval is refused while one fails, unless overridden"}
        }},
        "Decision": {"type": "object", "required": ["action", "actor", "at", "notes", "sha256"], "properties": {
            "action": {"type": "string", "enum": ["approve", "reject", "revoke", "supersede"]},
            "actor": {"type": "string"}, "at": time(), "notes": {"type": "string"}, "sha256": sha256(),
            "override_failing_tests": {"type": "boolean", "description": "present (true) on an approval that overrode failing tests"}
        }},
        "Version": {"type": "object",
            "required": ["tenant", "name", "version", "sha256", "author", "uploaded_at", "state", "manifest", "report", "decisions"],
            "properties": {
                "tenant": {"type": "string"}, "name": {"type": "string"},
                "version": {"type": "integer", "minimum": 1}, "sha256": sha256(),
                "author": {"type": "string"}, "uploaded_at": time(),
                "state": {"type": "string", "enum": states},
                "manifest": schema_ref("Manifest"),
                "report": {"type": "object", "required": ["module", "effective_limits"],
                    "description": "the inspection report: module facts (imports, exports, memory, features), requested and effective limits, the diff from the previous version, and the manifest's test results",
                    "properties": {"tests": {"type": "array", "items": schema_ref("TestResult")}}},
                "decisions": {"type": "array", "items": schema_ref("Decision")},
                "source": {"allOf": [schema_ref("SourceInfo")], "description": "present when the version was uploaded as source"}
            }},
        "FunctionSummary": {"type": "object", "required": ["name", "description", "active_version", "latest_version", "latest_state", "counts"], "properties": {
            "name": {"type": "string"},
            "description": {"type": ["string", "null"], "description": "the active version's; null without one"},
            "active_version": nullable("integer"), "latest_version": {"type": "integer", "minimum": 1},
            "latest_state": {"type": "string", "enum": states},
            "counts": {"type": "object", "description": "versions per state",
                "propertyNames": {"enum": states}, "additionalProperties": count()}
        }},
        "FunctionDetail": {"type": "object", "required": ["summary", "versions"], "properties": {
            "summary": schema_ref("FunctionSummary"),
            "versions": {"type": "array", "description": "newest first", "items": schema_ref("Version")}
        }}
    })
}

/// Tool definitions in either model API's format.
fn tools() -> Value {
    let parameters = json!({"type": "object", "required": ["type"], "properties": {"type": {"const": "object"}}});
    json!({
        "OpenAiTool": {"type": "object", "required": ["type", "function"], "additionalProperties": false, "properties": {
            "type": {"const": "function"},
            "function": {"type": "object", "required": ["name", "description", "parameters"], "additionalProperties": false, "properties": {
                "name": {"type": "string"}, "description": {"type": "string"}, "parameters": parameters}}
        }},
        "AnthropicTool": {"type": "object", "required": ["name", "description", "input_schema"], "additionalProperties": false, "properties": {
            "name": {"type": "string"}, "description": {"type": "string"}, "input_schema": parameters
        }},
        "Tool": {"oneOf": [schema_ref("OpenAiTool"), schema_ref("AnthropicTool")]}
    })
}

/// Audit entries: a record of the tenant's `execution` or `registry`
/// stream, flat, with its place in the hash chain.
fn audit() -> Value {
    let chain =
        json!({"seq": {"type": "integer", "minimum": 1}, "prev_hash": sha256(), "hash": sha256()});
    let mut execution = json!({
        "stream": {"const": "execution"},
        "execution_id": {"type": "string"}, "time": time(), "tenant_id": {"type": "string"},
        "agent_id": {"type": "string"}, "user_id": {"type": "string"}, "function": {"type": "string"},
        "version": nullable("integer"), "module_sha256": {"oneOf": [sha256(), {"type": "null"}]},
        "outcome": {"type": "string", "enum": outcome_kinds()}, "error_message": nullable("string"),
        "duration_ms": {"type": "number", "minimum": 0}, "fuel_used": count(), "memory_peak_bytes": count(),
        "input_sha256": sha256(), "input_size": count(),
        "output_sha256": {"oneOf": [sha256(), {"type": "null"}]}, "output_size": count(),
        "input_summary": {"description": "the input's shape: field names and JSON types, never values"},
        "node": {"type": "string"}
    });
    let mut registry = json!({
        "stream": {"const": "registry"}, "time": time(), "tenant_id": {"type": "string"},
        "actor": {"type": "string"},
        "action": {"type": "string", "enum": ["upload", "approve", "reject", "revoke", "key_created", "key_revoked", "policy_set", "policy_deleted", "tenant_settings"]},
        "target": {"type": "string", "description": "name@version, a key id, an agent's subject, or tenant"},
        "sha256": {"oneOf": [sha256(), {"type": "null"}]}, "notes": nullable("string"), "node": {"type": "string"}
    });
    // Optional members (absent, not null, when empty), so not required.
    let registry_extra = json!({
        "before": {"description": "policy and tenant-settings actions: the state before (null: none)"},
        "after": {"description": "policy and tenant-settings actions: the state after (null: deleted)"},
        "override_failing_tests": {"type": "boolean", "description": "present (true) on an approval that overrode failing tests"}
    });
    let execution_extra = json!({
        "admission": {"type": "object", "required": ["decision"], "description": "the gateway's decision on the call",
            "properties": {"decision": {"type": "string", "enum": ["allow", "reject"]},
                "reason": {"type": "string", "enum": ["not_allowed", "denied", "budget_exhausted"]},
                "allowed_by": {"type": "string", "enum": ["policy", "open_mode"]},
                "policy_version": {"type": "integer", "minimum": 1}}},
        "findings": {"type": "array", "description": "the output guard's findings: kinds and JSON paths, never values",
            "items": {"type": "object", "required": ["kind", "path"], "properties": {
                "kind": {"type": "string", "enum": ["ssn", "payment_card", "iban", "credential", "pattern"]},
                "path": {"type": "string"}, "pattern": {"type": "string"}}}},
        "traceparent": {"type": "string"},
        "cancelled": {"type": "boolean"},
        "run": {"type": "string", "enum": ["test_run", "replay"],
            "description": "absent for an agent's invocation; test_run: a manifest test at upload or a test run; replay: a replay"},
        "test_name": {"type": "string", "description": "the manifest test that ran, for a test run at upload"},
        "replay_of": {"type": "string", "description": "the execution a replay ran again"}
    });
    let entry = |props: &mut Value| {
        let map = props.as_object_mut().map(|m| {
            if let Some(c) = chain.as_object() {
                m.extend(c.clone());
            }
            m.keys().cloned().collect::<Vec<_>>()
        });
        json!({"type": "object", "required": map.unwrap_or_default(), "properties": props})
    };
    let with = |mut e: Value, extra: Value| {
        if let (Some(p), Value::Object(x)) = (e["properties"].as_object_mut(), extra) {
            p.extend(x);
        }
        e
    };
    json!({
        "ExecutionEntry": with(entry(&mut execution), execution_extra),
        "RegistryEntry": with(entry(&mut registry), registry_extra),
        "AuditEntry": {"oneOf": [schema_ref("ExecutionEntry"), schema_ref("RegistryEntry")]}
    })
}

/// Every schema, by name.
pub(super) fn schemas() -> Value {
    let mut all = serde_json::Map::new();
    for part in [errors(), registry(), tools(), audit()] {
        if let Value::Object(m) = part {
            all.extend(m);
        }
    }
    Value::Object(all)
}
