//! The OpenAPI 3.1 description of every route in [`crate::ROUTES`]: every
//! status each route can answer, each with the schema of its body
//! (`tests/server/conformance.rs` holds a real server to it).

mod approval;
mod gateway;
mod schemas;

use aifn_service::{AUDIT_DEFAULT_PAGE, AUDIT_MAX_PAGE};
use serde_json::{Map, Value, json};

use schemas::{outcome_kinds, schema_ref};

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Access {
    /// No key needed.
    Open,
    /// Any valid key of the tenant.
    AnyRole,
    /// A valid key with one of these roles (else 403).
    Roles(&'static str),
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema_ref("Error")}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "required": true, "schema": schema})
}

/// An object with one array field.
fn list_of(field: &str, items: Value) -> Value {
    json!({"type": "object", "required": [field], "properties": {field: {"type": "array", "items": items}}})
}

/// One operation: its own statuses, plus the ones every route of its kind
/// can answer (authentication, roles, path decoding, body limits, wrong
/// method, shedding at capacity).
fn operation(
    summary: &str,
    access: Access,
    parameters: Vec<Value>,
    body: Option<Value>,
    responses: Value,
) -> Value {
    let mut responses = match responses {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut add = |status: &str, response: Value| {
        responses.entry(status).or_insert(response);
    };
    let has_path = parameters.iter().any(|p| p["in"] == "path");
    if has_path || body.is_some() {
        add(
            "400",
            error_response(
                "invalid_request: a path segment that is not UTF-8, or a malformed body",
            ),
        );
    }
    if body.is_some() {
        add(
            "413",
            error_response("payload_too_large: the body is over the route's size limit"),
        );
    }
    add(
        "405",
        json!({"description": "invalid_request: method not allowed (this path answers the methods in Allow)",
            "headers": {"Allow": header("the methods this path answers", json!({"type": "string"}))},
            "content": {"application/json": {"schema": schema_ref("Error")}}}),
    );
    add(
        "503",
        error_response("unavailable: the server is at capacity (requests are shed, not queued)"),
    );
    let mut op = json!({"summary": summary, "parameters": parameters});
    if let Some(b) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    let roles = match access {
        Access::Open => None,
        Access::AnyRole => Some("any"),
        Access::Roles(roles) => {
            add(
                "403",
                error_response(
                    "forbidden: the key's role does not allow this; checked before the request's parameters and body",
                ),
            );
            Some(roles)
        }
    };
    if let Some(roles) = roles {
        add(
            "401",
            json!({"description": "unauthenticated: missing, malformed, unknown or revoked key",
                "headers": {"WWW-Authenticate": header("the scheme to use", json!({"const": "Bearer"}))},
                "content": {"application/json": {"schema": schema_ref("Error")}}}),
        );
        add(
            "500",
            error_response("internal: a fault on the host; the message has a log id"),
        );
        op["security"] = json!([{"bearer": []}]);
        op["description"] = Value::String(format!("Roles: {roles}. The tenant is the key's."));
    }
    op["responses"] = Value::Object(responses);
    op
}

fn name_param() -> Value {
    json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}})
}

fn version_param() -> Value {
    json!({"name": "version", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}})
}

fn query(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

const NOT_FOUND: &str = "not_found: no such function or version in the key's tenant (a version that is not a positive integer is none); agents see only active versions, the rest is not found to them";

fn decision(action: &str, needs_hash: bool, to: &str) -> Value {
    let mut required = vec!["notes"];
    if needs_hash {
        required.push("sha256");
    }
    operation(
        &format!("{action} a version (it becomes {to})"),
        Access::Roles("approver (never the version's author)"),
        vec![name_param(), version_param()],
        Some(json!({
            "type": "object", "additionalProperties": false, "required": required,
            "properties": {"sha256": {"type": "string", "description": "the module hash the approver inspected"}, "notes": {"type": "string", "minLength": 1},
                "override_failing_tests": {"type": "boolean", "default": false,
                    "description": "approve only: approve although a manifest test failed at upload (the notes say why; the override is recorded)"}}
        })),
        json!({
            "200": ok("the version after the decision", schema_ref("Version")),
            "400": error_response("invalid_request: notes or sha256 missing, override_failing_tests on another decision than approve, or a malformed body"),
            "403": error_response("forbidden: not an approver, or the approver is the version's author"),
            "404": error_response(NOT_FOUND),
            "409": error_response("conflict: illegal transition, a hash that is not the version's, or (approve) a manifest test failed at upload and override_failing_tests is not set"),
        }),
    )
}

fn invoke() -> Value {
    operation(
        "invoke the active version",
        Access::Roles("agent"),
        vec![name_param()],
        Some(json!({
            "type": "object", "additionalProperties": false, "required": ["input"],
            "properties": {"input": {}, "user_id": {"type": "string", "maxLength": 256}}
        })),
        json!({
            "200": ok("the output", schema_ref("InvokeResult")),
            "400": error_response("invalid_input: the input breaks the function's schema (each violation listed) or its input limit; invalid_request: a malformed body"),
            "404": error_response("not_found: no such function in the key's tenant"),
            "403": error_response("forbidden: not an agent key; or the gateway rejected the call before anything else (reason not_allowed: no policy admits the function; denied: the policy's deny list names it), recorded under execution_id"),
            "409": error_response("not_active: the function has no active version"),
            "413": error_response("payload_too_large: the body is over the input limit (plus 64 KiB)"),
            "422": ok("the function failed or hit a limit, or its output was withheld by the output guard", schema_ref("InvocationFailure")),
            "429": {"description": "rate_limited: the tenant's rate or concurrency limit, or (reason budget_exhausted) a fuel or call budget of the agent or the tenant is used up for this hour",
                "headers": {"Retry-After": header("seconds to wait", json!({"type": "integer", "minimum": 1}))},
                "content": {"application/json": {"schema": schema_ref("Error")}}},
            "503": error_response("unavailable: the audit log cannot write (calls fail closed), or the server is at capacity")
        }),
    )
}

fn upload() -> Value {
    operation(
        "upload a module (the new version is pending)",
        Access::Roles("author"),
        vec![name_param()],
        Some(json!({
            "type": "object", "additionalProperties": false, "required": ["manifest"],
            "description": "exactly one of module and source: a source is built into the module by aifn, so the approver reads the code that runs",
            "oneOf": [{"required": ["module"]}, {"required": ["source"]}],
            "properties": {"manifest": schema_ref("Manifest"), "module": {"type": "string", "contentEncoding": "base64"},
                "source": schema_ref("Source")}
        })),
        json!({
            "201": ok("the pending version with its inspection report (the manifest's tests run at upload, their results in report.tests)", schema_ref("Version")),
            "400": error_response("invalid_request: bad name, manifest, tests, limits, base64 or body, both or neither of module and source, or a source that does not build"),
            "413": error_response("payload_too_large: over the module or source size cap"),
            "422": error_response("invalid_module, forbidden_import or compile_timeout"),
            "429": {"description": "rate_limited: the manifest's tests do not fit in the tenant's test runs for this hour",
                "headers": {"Retry-After": header("seconds to wait", json!({"type": "integer", "minimum": 1}))},
                "content": {"application/json": {"schema": schema_ref("Error")}}}
        }),
    )
}

fn tools() -> Value {
    operation(
        "the functions the calling agent may invoke (its policy, or its tenant's open mode), as LLM tool definitions",
        Access::Roles("agent"),
        vec![query(
            "format",
            json!({"type": "string", "enum": ["openai", "anthropic"], "default": "openai"}),
        )],
        None,
        json!({
            "200": ok("tools", list_of("tools", schema_ref("Tool"))),
            "400": error_response("invalid_request: an unknown or repeated format, or an unknown parameter")
        }),
    )
}

fn audit() -> Value {
    let text = || json!({"type": "string"});
    let time = || json!({"type": "string", "format": "date-time"});
    let params = vec![
        query("function", text()),
        query("agent_id", text()),
        query("user_id", text()),
        query(
            "outcome",
            json!({"type": "string", "enum": outcome_kinds()}),
        ),
        query(
            "stream",
            json!({"type": "string", "enum": ["execution", "registry"]}),
        ),
        query("since", time()),
        query("until", time()),
        query(
            "before_seq",
            json!({"type": "integer", "minimum": 0, "description": "records with a smaller seq: the next_before_seq of the previous page"}),
        ),
        query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": AUDIT_MAX_PAGE, "default": AUDIT_DEFAULT_PAGE,
                "description": format!("page size; 0 is served as 1 and more than {AUDIT_MAX_PAGE} as {AUDIT_MAX_PAGE}")}),
        ),
    ];
    operation(
        "the tenant's audit records, newest first",
        Access::Roles("admin, approver"),
        params,
        None,
        json!({
            "200": ok("a page", json!({"type": "object", "required": ["entries", "next_before_seq"], "properties": {
                "entries": {"type": "array", "items": schema_ref("AuditEntry")},
                "next_before_seq": {"type": ["integer", "null"], "minimum": 0}}})),
            "400": error_response("invalid_request: an unknown parameter, or a value not of the parameter's type or enum")
        }),
    )
}

/// The OpenAPI document.
pub fn openapi() -> Value {
    let status = |s: &str| json!({"type": "object", "required": ["status"], "properties": {"status": {"const": s}}});
    let read = |summary: &str, params: Vec<Value>, responses: Value| {
        operation(summary, Access::AnyRole, params, None, responses)
    };
    let mut schemas = schemas::schemas();
    for more in [gateway::schemas(), approval::schemas()] {
        if let (Some(all), Value::Object(more)) = (schemas.as_object_mut(), more) {
            all.extend(more);
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "aifn", "version": env!("CARGO_PKG_VERSION"),
                 "description": "WebAssembly sandbox for user-authored AI functions. Any other path answers 404 not_found."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas
        },
        "paths": {
            "/healthz": {"get": operation("liveness", Access::Open, vec![], None, json!({"200": ok("alive", status("ok"))}))},
            "/readyz": {"get": operation("readiness (the audit log can write), and the tenants in open mode", Access::Open, vec![], None, json!({
                "200": ok("ready", json!({"type": "object", "required": ["status", "open_tenants"], "properties": {
                    "status": {"const": "ready"},
                    "open_tenants": {"type": "array", "items": {"type": "string"},
                        "description": "tenants whose agents may invoke every active function (open mode: development only)"}}})),
                "503": error_response("unavailable: the audit log cannot write, or the server is at capacity")}))},
            "/metrics": {"get": operation("Prometheus metrics", Access::Open, vec![], None, json!({
                "200": {"description": "text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}}))},
            "/v1/openapi.json": {"get": operation("this document", Access::Open, vec![], None, json!({
                "200": ok("OpenAPI", json!({"type": "object", "required": ["openapi", "info", "paths", "components"]}))}))},
            "/v1/functions": {"get": read("the tenant's functions", vec![], json!({
                "200": ok("functions", list_of("functions", schema_ref("FunctionSummary")))}))},
            "/v1/functions/{name}": {"get": read("one function and its versions", vec![name_param()], json!({
                "200": ok("function", schema_ref("FunctionDetail")), "404": error_response(NOT_FOUND)}))},
            "/v1/functions/{name}/versions": {"post": upload()},
            "/v1/functions/{name}/versions/{version}": {"get": read("one version: manifest, inspection report, decisions",
                vec![name_param(), version_param()], json!({
                "200": ok("version", schema_ref("Version")), "404": error_response(NOT_FOUND)}))},
            "/v1/functions/{name}/versions/{version}/approve": {"post": decision("approve", true, "active")},
            "/v1/functions/{name}/versions/{version}/reject": {"post": decision("reject", true, "rejected")},
            "/v1/functions/{name}/versions/{version}/revoke": {"post": decision("revoke", false, "revoked")},
            "/v1/functions/{name}/invoke": {"post": invoke()},
            "/v1/pending": {"get": read("versions awaiting approval", vec![], json!({
                "200": ok("pending versions", list_of("versions", schema_ref("Version"))),
                "404": error_response("not_found: agents see only active versions, so the pending queue is not found to them")}))},
            "/v1/tools": {"get": tools()},
            "/v1/audit": {"get": audit()}
        }
    });
    for more in [gateway::paths(), approval::paths()] {
        if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), more) {
            paths.extend(more);
        }
    }
    doc
}
