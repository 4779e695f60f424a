//! The OpenAPI 3.1 description of every route in [`crate::ROUTES`].

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn secured(mut op: Value, roles: &str) -> Value {
    op["security"] = json!([{"bearer": []}]);
    op["description"] = Value::String(format!("Roles: {roles}. The tenant is the key's."));
    let responses = op["responses"].as_object_mut().map(|r| {
        r.insert(
            "401".into(),
            error_response("unauthenticated: missing, malformed, unknown or revoked key"),
        );
        r.insert(
            "403".into(),
            error_response("forbidden: the key's role does not allow this"),
        );
    });
    debug_assert!(responses.is_some());
    op
}

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}})
}

fn version_param() -> Value {
    json!({"name": "version", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}})
}

fn decision(action: &str, needs_hash: bool, to: &str) -> Value {
    let mut required = vec!["notes"];
    if needs_hash {
        required.push("sha256");
    }
    secured(
        json!({
            "summary": format!("{action} a version (it becomes {to})"),
            "parameters": [name_param(), version_param()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false, "required": required,
                "properties": {"sha256": {"type": "string", "description": "the module hash the approver inspected"}, "notes": {"type": "string", "minLength": 1}}
            }}}},
            "responses": {
                "200": ok("the version after the decision", json!({"$ref": "#/components/schemas/Version"})),
                "400": error_response("invalid_request: notes or sha256 missing"),
                "404": error_response("not_found"),
                "409": error_response("conflict: illegal transition or a hash that is not the version's"),
            }
        }),
        "approver (never the version's author)",
    )
}

/// The OpenAPI document.
pub fn openapi() -> Value {
    let error_kinds: Vec<&str> = aifn_types::OutcomeKind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain([
            "invalid_request",
            "conflict",
            "payload_too_large",
            "unavailable",
            "internal",
        ])
        .collect();
    let audit_params: Vec<Value> = [
        "function",
        "agent_id",
        "user_id",
        "outcome",
        "stream",
        "since",
        "until",
        "before_seq",
        "limit",
    ]
    .iter()
    .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string"}}))
    .collect();
    json!({
        "openapi": "3.1.0",
        "info": {"title": "aifn", "version": env!("CARGO_PKG_VERSION"),
                 "description": "WebAssembly sandbox for user-authored AI functions."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["kind", "message"], "properties": {
                        "kind": {"type": "string", "enum": error_kinds},
                        "message": {"type": "string"},
                        "violations": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}}
                    }},
                    "execution_id": {"type": "string"}
                }},
                "Version": {"type": "object", "description": "A function version: name, version, sha256, author, uploaded_at, state (pending, active, rejected, revoked, superseded), manifest, report (the inspection report), decisions."},
                "Manifest": {"type": "object", "required": ["description", "input_schema"], "properties": {
                    "description": {"type": "string"}, "input_schema": {"type": "object"}, "output_schema": {"type": "object"},
                    "limits": {"type": "object"}, "capture": {"type": "object", "properties": {"retention_days": {"type": "integer"}}}
                }}
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "liveness", "responses": {"200": ok("alive", json!({"type": "object"}))}}},
            "/readyz": {"get": {"summary": "readiness (the audit log can write)", "responses": {
                "200": ok("ready", json!({"type": "object"})), "503": error_response("unavailable")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}}}},
            "/v1/openapi.json": {"get": {"summary": "this document", "responses": {"200": ok("OpenAPI", json!({"type": "object"}))}}},
            "/v1/functions": {"get": secured(json!({"summary": "the tenant's functions", "responses": {
                "200": ok("functions", json!({"type": "object", "properties": {"functions": {"type": "array"}}}))}}), "any")},
            "/v1/functions/{name}": {"get": secured(json!({"summary": "one function and its versions", "parameters": [name_param()], "responses": {
                "200": ok("function", json!({"type": "object"})), "404": error_response("not_found")}}), "any")},
            "/v1/functions/{name}/versions": {"post": secured(json!({
                "summary": "upload a module (the new version is pending)",
                "parameters": [name_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["manifest", "module"],
                    "properties": {"manifest": {"$ref": "#/components/schemas/Manifest"}, "module": {"type": "string", "contentEncoding": "base64"}}
                }}}},
                "responses": {
                    "201": ok("the pending version with its inspection report", json!({"$ref": "#/components/schemas/Version"})),
                    "400": error_response("invalid_request: bad name, manifest or limits"),
                    "413": error_response("payload_too_large: over the module size cap"),
                    "422": error_response("invalid_module, forbidden_import or compile_timeout")
                }}), "author")},
            "/v1/functions/{name}/versions/{version}": {"get": secured(json!({"summary": "one version: manifest, inspection report, decisions",
                "parameters": [name_param(), version_param()], "responses": {
                "200": ok("version", json!({"$ref": "#/components/schemas/Version"})), "404": error_response("not_found")}}), "any")},
            "/v1/functions/{name}/versions/{version}/approve": {"post": decision("approve", true, "active")},
            "/v1/functions/{name}/versions/{version}/reject": {"post": decision("reject", true, "rejected")},
            "/v1/functions/{name}/versions/{version}/revoke": {"post": decision("revoke", false, "revoked")},
            "/v1/functions/{name}/invoke": {"post": secured(json!({
                "summary": "invoke the active version",
                "parameters": [name_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["input"],
                    "properties": {"input": {}, "user_id": {"type": "string", "maxLength": 256}}
                }}}},
                "responses": {
                    "200": ok("the output", json!({"type": "object", "required": ["output", "execution_id", "fuel_used", "duration_ms"],
                        "properties": {"output": {}, "execution_id": {"type": "string"}, "version": {"type": "integer"},
                                       "fuel_used": {"type": "integer"}, "duration_ms": {"type": "number"}}})),
                    "400": error_response("invalid_input: not matching the function's schema, with each violation"),
                    "404": error_response("not_found"),
                    "409": error_response("not_active: no active version"),
                    "422": error_response("the function failed or hit a limit (fuel_exhausted, timeout, memory_limit, stack_overflow, trap, output_too_large, invalid_output, function_error)"),
                    "429": error_response("rate_limited (with Retry-After)"),
                    "503": error_response("unavailable: the audit log cannot write, calls fail closed")
                }}), "agent")},
            "/v1/pending": {"get": secured(json!({"summary": "versions awaiting approval", "responses": {
                "200": ok("pending versions", json!({"type": "object", "properties": {"versions": {"type": "array"}}}))}}), "any")},
            "/v1/tools": {"get": secured(json!({"summary": "active functions as LLM tool definitions",
                "parameters": [{"name": "format", "in": "query", "schema": {"type": "string", "enum": ["openai", "anthropic"]}}],
                "responses": {"200": ok("tools", json!({"type": "object", "properties": {"tools": {"type": "array"}}}))}}), "agent")},
            "/v1/audit": {"get": secured(json!({"summary": "the tenant's audit records, newest first",
                "parameters": audit_params,
                "responses": {"200": ok("a page", json!({"type": "object", "properties": {"entries": {"type": "array"}, "next_before_seq": {"type": ["integer", "null"]}}})),
                              "400": error_response("invalid_request")}}), "admin, approver")}
        }
    })
}
