//! The approval tools' part of the document: test runs, diffs, module and
//! source reads, replays and evidence bundles, their routes and bodies.

use serde_json::{Value, json};

use super::schemas::{outcome_kinds, schema_ref};
use super::{
    Access, NOT_FOUND, error_response, header, name_param, ok, operation, query, version_param,
};

const CODE_READERS: &str = "author, approver, admin (agents are refused)";

fn sha256() -> Value {
    json!({"type": "string", "pattern": "^[0-9a-f]{64}$"})
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn test_run() -> Value {
    operation(
        "run an input on any version, pending included: a test run, answered as an invocation is, recorded as a test run (never an agent's execution)",
        Access::Roles("approver, or an author on a version they uploaded"),
        vec![name_param(), version_param()],
        Some(json!({
            "type": "object", "additionalProperties": false, "required": ["input"],
            "properties": {"input": {}, "user_id": {"type": "string", "maxLength": 256,
                "description": "the user the run acts for (default: the caller's subject)"}}
        })),
        json!({
            "200": ok("the output", schema_ref("InvokeResult")),
            "400": error_response("invalid_input: the input breaks the version's schema or its input limit; invalid_request: a malformed body"),
            "403": error_response("forbidden: not an approver, nor the author of this version"),
            "404": error_response(NOT_FOUND),
            "413": error_response("payload_too_large: the body is over the input limit (plus 64 KiB)"),
            "422": ok("the run failed or hit a limit, or its output was withheld by the output guard", schema_ref("InvocationFailure")),
            "429": {"description": "rate_limited: the tenant's test runs for this hour are used up, or no slot of the tenant's concurrency or rate is free",
                "headers": {"Retry-After": header("seconds to wait", json!({"type": "integer", "minimum": 1}))},
                "content": {"application/json": {"schema": schema_ref("Error")}}},
            "503": error_response("unavailable: the audit log cannot write (runs fail closed), or the server is at capacity")
        }),
    )
}

fn diff() -> Value {
    operation(
        "the complete diff of a version: against `against`, else against the previous version and the active one (when that is another)",
        Access::Roles(CODE_READERS),
        vec![
            name_param(),
            version_param(),
            query(
                "against",
                json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
            ),
        ],
        None,
        json!({
            "200": ok("the diffs", schema_ref("DiffReport")),
            "400": error_response("invalid_request: against is not a version number, or an unknown parameter"),
            "404": error_response("not_found: no such function or version (this one or against) in the key's tenant")
        }),
    )
}

fn module() -> Value {
    operation(
        "the module bytes, exactly as stored (checked against the version's sha256)",
        Access::Roles(CODE_READERS),
        vec![name_param(), version_param()],
        None,
        json!({
            "200": {"description": "the module",
                "headers": {"Content-Disposition": header("attachment; filename=\"NAME-VERSION.wasm\"", json!({"type": "string"}))},
                "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}}},
            "404": error_response(NOT_FOUND)
        }),
    )
}

fn source() -> Value {
    operation(
        "the source a version was uploaded as",
        Access::Roles(CODE_READERS),
        vec![name_param(), version_param()],
        None,
        json!({
            "200": ok("the source", schema_ref("Source")),
            "404": error_response("not_found: no such function or version in the key's tenant, or the version was uploaded as a module (it has no source)")
        }),
    )
}

fn replay() -> Value {
    operation(
        "run a captured execution again: its version, recorded input, context and start time (no body); the replay is recorded",
        Access::Roles("approver, admin"),
        vec![json!({"name": "id", "in": "path", "required": true,
            "description": "the execution id, as in its audit record", "schema": {"type": "string"}})],
        None,
        json!({
            "200": ok("reproduced (the same output sha256 and kind) or diverged", schema_ref("ReplayReport")),
            "404": error_response("not_found: no execution with this id in the key's tenant"),
            "409": error_response("conflict: the execution has no captured input (its manifest has no capture, or the capture expired)"),
            "429": {"description": "rate_limited: the tenant's test runs for this hour are used up (replays count), or no slot of the tenant's concurrency or rate is free",
                "headers": {"Retry-After": header("seconds to wait", json!({"type": "integer", "minimum": 1}))},
                "content": {"application/json": {"schema": schema_ref("Error")}}},
            "503": error_response("unavailable: the audit log cannot record the replay, or the server is at capacity")
        }),
    )
}

fn bundle() -> Value {
    let time = || json!({"type": "string", "format": "date-time"});
    operation(
        "an evidence bundle: one file to verify offline (aifn audit verify-bundle)",
        Access::Roles("admin, approver"),
        vec![
            query(
                "execution",
                json!({"type": "string", "description": "one execution (or else function)"}),
            ),
            query(
                "function",
                json!({"type": "string", "description": "a function's executions and registry records (or else execution)"}),
            ),
            query(
                "version",
                json!({"type": "integer", "minimum": 1, "maximum": u32::MAX, "description": "with function: that version only"}),
            ),
            query("since", time()),
            query("until", time()),
            query(
                "module",
                json!({"type": "boolean", "default": false, "description": "include the module bytes (include_module is the same)"}),
            ),
        ],
        None,
        json!({
            "200": {"description": "the bundle",
                "headers": {"Content-Disposition": header("attachment; filename=\"aifn-evidence-bundle.json\"", json!({"type": "string"}))},
                "content": {"application/json": {"schema": schema_ref("Bundle")}}},
            "400": error_response("invalid_request: not exactly one of execution and function, an unknown parameter or a value not of its type, or over 10,000 records (narrow the window)"),
            "404": error_response("not_found: no such execution, function or version in the key's tenant")
        }),
    )
}

/// The routes, by path.
pub(super) fn paths() -> Value {
    json!({
        "/v1/functions/{name}/versions/{version}/test": {"post": test_run()},
        "/v1/functions/{name}/versions/{version}/diff": {"get": diff()},
        "/v1/functions/{name}/versions/{version}/module": {"get": module()},
        "/v1/functions/{name}/versions/{version}/source": {"get": source()},
        "/v1/executions/{id}/replay": {"post": replay()},
        "/v1/audit/bundle": {"get": bundle()}
    })
}

fn diff_schemas() -> Value {
    let change = |t: Value| json!({"type": "object", "required": ["before", "after"], "properties": {"before": t.clone(), "after": t}});
    let strings = || json!({"type": "array", "items": {"type": "string"}});
    let list = |name: &str| json!({"type": "array", "items": schema_ref(name)});
    let diff_fields = [
        "against",
        "relation",
        "sha256",
        "description",
        "input_schema",
        "output_schema",
        "requested_limits",
        "effective_limits",
        "capture",
        "output_guard",
        "imports_added",
        "imports_removed",
        "exports_added",
        "exports_removed",
        "features_added",
        "features_removed",
        "has_start",
        "memory",
        "table",
        "sizes",
        "tests",
        "source",
    ];
    json!({
        "JsonChange": {"type": "object", "required": ["path", "change"], "properties": {
            "path": {"type": "string", "description": "a JSON Pointer: into the before document for a removal, the after one otherwise"},
            "change": {"type": "string", "enum": ["added", "removed", "changed"]},
            "before": {}, "after": {}}},
        "FieldChange": {"type": "object", "required": ["field", "before", "after"], "properties": {
            "field": {"type": "string"},
            "before": {"type": ["integer", "null"], "minimum": 0, "description": "null: absent (a limit not asked for takes the host's)"},
            "after": {"type": ["integer", "null"], "minimum": 0}}},
        "TestChange": {"type": "object", "required": ["name", "change"], "properties": {
            "name": {"type": "string"},
            "change": {"type": "string", "enum": ["added", "removed", "definition_changed", "result_changed"]},
            "definition": {"type": "array", "items": schema_ref("JsonChange"), "description": "the definition's changes; an added or removed test's whole definition at \"\""},
            "before": schema_ref("TestResult"), "after": schema_ref("TestResult")}},
        "SourceDiff": {"type": "object", "required": ["unified", "lines_added", "lines_removed"], "properties": {
            "unified": {"type": "string", "description": "a unified diff with 3 lines of context"},
            "lines_added": count(), "lines_removed": count()}},
        "VersionDiff": {"type": "object", "required": diff_fields,
            "description": "only what changed is listed; sha256 is always shown",
            "properties": {
                "against": {"type": "integer", "minimum": 1},
                "relation": {"type": "string", "enum": ["previous", "active", "chosen"]},
                "sha256": change(sha256()),
                "description": nullable(change(json!({"type": "string"}))),
                "input_schema": list("JsonChange"), "output_schema": list("JsonChange"),
                "requested_limits": list("FieldChange"), "effective_limits": list("FieldChange"),
                "capture": nullable(change(json!({}))), "output_guard": nullable(change(json!({}))),
                "imports_added": strings(), "imports_removed": strings(),
                "exports_added": strings(), "exports_removed": strings(),
                "features_added": strings(), "features_removed": strings(),
                "has_start": nullable(change(json!({"type": "boolean"}))),
                "memory": nullable(change(json!({}))), "table": nullable(change(json!({}))),
                "sizes": list("FieldChange"), "tests": list("TestChange"),
                "source": nullable(schema_ref("SourceDiff"))
            }},
        "DiffReport": {"type": "object", "required": ["version", "diffs"], "properties": {
            "version": {"type": "integer", "minimum": 1}, "diffs": list("VersionDiff")}}
    })
}

fn evidence_schemas() -> Value {
    let link = |extra: (&str, Value)| {
        json!({"type": "object", "required": ["seq", "prev_hash", "hash", extra.0], "properties": {
            "seq": {"type": "integer", "minimum": 1}, "prev_hash": sha256(), "hash": sha256(), extra.0: extra.1}})
    };
    let time = || json!({"type": "string", "format": "date-time"});
    let text = || json!({"type": "string"});
    let nullable_text = || json!({"type": ["string", "null"]});
    json!({
        "EvidenceRecord": link(("body", json!({"type": "string", "description": "the record's stored canonical JSON, byte for byte"}))),
        "EvidenceLink": link(("body_sha256", sha256())),
        "Checkpoint": {"type": "object", "required": ["seq", "hash", "time", "node", "public_key", "signature"], "properties": {
            "seq": count(), "hash": {"type": "string"}, "time": text(), "node": text(),
            "public_key": {"type": "string", "description": "Ed25519, hex"}, "signature": {"type": "string", "description": "Ed25519, hex"}}},
        "Evidence": {"type": "object", "required": ["chain_format_2_from", "records", "links", "checkpoints"], "properties": {
            "chain_format_2_from": count(),
            "records": {"type": "array", "items": schema_ref("EvidenceRecord")},
            "links": {"type": "array", "items": schema_ref("EvidenceLink"), "description": "records outside the bundle: their hash links only"},
            "checkpoints": {"type": "array", "items": schema_ref("Checkpoint")}}},
        "BundleRequest": {"type": "object", "properties": {
            "execution": nullable_text(), "function": nullable_text(),
            "version": {"type": ["integer", "null"], "minimum": 1},
            "since": {"oneOf": [time(), {"type": "null"}]}, "until": {"oneOf": [time(), {"type": "null"}]},
            "include_module": {"type": "boolean"}}},
        "BundledVersion": {"type": "object", "required": ["info"], "properties": {
            "info": schema_ref("Version"),
            "module_base64": {"type": ["string", "null"], "contentEncoding": "base64"}}},
        "Bundle": {"type": "object", "required": ["format", "created_at", "tenant_id", "how_to_verify", "request", "versions", "evidence"], "properties": {
            "format": {"const": "aifn-evidence-bundle/1"},
            "created_at": time(), "tenant_id": text(), "how_to_verify": text(),
            "request": schema_ref("BundleRequest"),
            "versions": {"type": "array", "items": schema_ref("BundledVersion")},
            "evidence": schema_ref("Evidence")}}
    })
}

/// The bodies, by name.
pub(super) fn schemas() -> Value {
    let kind = || json!({"type": "string", "enum": outcome_kinds()});
    let hash = || nullable(sha256());
    let mut all = json!({
        "Source": {"type": "object", "additionalProperties": false, "required": ["language", "text"], "properties": {
            "language": {"type": "string", "enum": ["wat", "javascript"]},
            "text": {"type": "string", "maxLength": aifn_types::Source::MAX_BYTES}}},
        "SourceInfo": {"type": "object", "required": ["language", "sha256", "size_bytes"], "properties": {
            "language": {"type": "string", "enum": ["wat", "javascript"]}, "sha256": sha256(), "size_bytes": count()}},
        "ManifestTest": {"type": "object", "additionalProperties": false, "required": ["name", "input"],
            "description": "exactly one of expect_output, expect_kind and expect_output_schema",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 64},
                "input": {}, "expect_output": {}, "expect_kind": kind(),
                "expect_output_schema": {"type": "object"}}},
        "TestResult": {"type": "object", "required": ["name", "passed", "expected", "kind", "output_sha256", "fuel_used", "duration_ms"], "properties": {
            "name": {"type": "string"}, "passed": {"type": "boolean"},
            "expected": {"type": "string", "description": "output, kind KIND or output_schema"},
            "kind": kind(), "output_sha256": hash(), "fuel_used": count(),
            "duration_ms": {"type": "number", "minimum": 0},
            "message": {"type": "string"}}},
        "ReplayReport": {"type": "object",
            "required": ["execution_id", "replay_execution_id", "function", "version", "verdict", "recorded_kind", "replayed_kind", "input_matches_record"],
            "properties": {
                "execution_id": {"type": "string", "description": "the execution replayed"},
                "replay_execution_id": {"type": "string", "description": "the replay's own audit record"},
                "function": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
                "verdict": {"type": "string", "enum": ["reproduced", "diverged"]},
                "recorded_kind": kind(), "replayed_kind": kind(),
                "recorded_output_sha256": hash(), "replayed_output_sha256": hash(),
                "input_matches_record": {"type": "boolean", "description": "false: the captured input does not hash to the record's (the capture was altered)"},
                "message": {"type": ["string", "null"]}}}
    });
    if let Some(m) = all.as_object_mut() {
        for more in [diff_schemas(), evidence_schemas()] {
            if let Value::Object(more) = more {
                m.extend(more);
            }
        }
    }
    all
}
