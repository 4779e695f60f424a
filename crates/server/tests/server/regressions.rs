//! Defects a new user met, each pinned by the request that showed it:
//! refused registry actions leave a record, tool schemas are object
//! schemas, agents see active versions only, the role check comes before
//! parameter checks, unauthenticated attempts are counted, and schema
//! violations at the root say so.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{Harness, b64, echo, kind, manifest, message, metric, str_of, text_schema, wasm};

/// The tenant's registry records of `action` on `target` that were refused.
async fn refused(h: &Harness, key: &crate::Key, action: &str, target: &str) -> Vec<Value> {
    h.audit(key, "stream=registry&limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"] == action && e["target"] == target && !e["refused"].is_null())
        .collect()
}

#[tokio::test]
async fn refused_uploads_and_decisions_are_recorded() {
    let h = Harness::new();
    let t = h.tenant("acme");
    // Refused before the registry: not wasm, a forbidden import, the wrong role.
    let not_wasm = json!({"manifest": manifest("x", text_schema()), "module": b64(b"\0asm junk")});
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/bad/versions",
            Some(&t.author),
            Some(not_wasm),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_module")
    );
    let importer = wasm(
        r#"(module (import "env" "open" (func)) (memory (export "memory") 1)
        (func (export "aifn_call") (result i32) (i32.const 0)))"#,
    );
    let (status, body) = h
        .try_upload(&t.author, "bad", &importer, manifest("x", text_schema()))
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "forbidden_import")
    );
    let (status, _) = h
        .try_upload(
            &t.agent,
            "bad",
            &wasm(&echo()),
            manifest("x", text_schema()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let kinds: Vec<Value> = refused(&h, &t.admin, "upload", "bad")
        .await
        .iter()
        .map(|e| e["refused"]["kind"].clone())
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    for k in ["invalid_module", "forbidden_import", "forbidden"] {
        assert!(kinds.contains(&json!(k)), "{k} in {kinds:?}");
    }
    // Decisions refused with 403 (the author approving; an agent revoking)
    // and 409 (rejecting an active version).
    let v = h
        .deploy(&t, "f", &echo(), manifest("f", text_schema()))
        .await;
    let decide = json!({"sha256": v["sha256"], "notes": "mine"});
    let (status, _) = h
        .decide(&t.author, "approve", &v, Some(decide.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .decide(&t.agent, "revoke", &v, Some(json!({"notes": "x"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = h.decide(&t.approver, "reject", &v, Some(decide)).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::CONFLICT, "conflict"),
        "{body}"
    );
    for (action, want) in [
        ("approve", "forbidden"),
        ("revoke", "forbidden"),
        ("reject", "conflict"),
    ] {
        let found = refused(&h, &t.admin, action, "f@1").await;
        assert_eq!(found.len(), 1, "{action}: {found:?}");
        assert_eq!(found[0]["refused"]["kind"], want, "{action}: {found:?}");
        assert!(!str_of(&found[0]["refused"]["reason"]).is_empty());
    }
    // Pair: the actions that took effect carry no refusal.
    let done: Vec<Value> = h
        .audit(&t.admin, "stream=registry&limit=1000")
        .await
        .into_iter()
        .filter(|e| e["target"] == "f@1")
        .filter(|e| e["refused"].is_null())
        .collect();
    assert_eq!(done.len(), 2, "upload and approve: {done:?}");
}

#[tokio::test]
async fn input_schemas_must_be_object_schemas() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for (schema, says) in [
        (json!({}), "its root has no \"type\""),
        (
            json!({"type": "string"}),
            "its root has \"type\": \"string\"",
        ),
        (json!(true), "it is a boolean"),
    ] {
        let (status, body) = h
            .try_upload(
                &t.author,
                "f",
                &wasm(&echo()),
                manifest("f", schema.clone()),
            )
            .await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{schema}"
        );
        assert!(
            message(&body).contains("input_schema must be an object schema"),
            "{body}"
        );
        assert!(message(&body).contains(says), "{body}");
    }
    // Pair: an object schema is accepted and its tool definition carries it.
    h.deploy(&t, "f", &echo(), manifest("f", text_schema()))
        .await;
    for format in ["openai", "anthropic"] {
        let (status, body) = h
            .request(
                "GET",
                &format!("/v1/tools?format={format}"),
                Some(&t.agent),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let tools = body["tools"].as_array().expect("tools");
        assert_eq!(tools.len(), 1);
        let schema = &tools[0]["function"]["parameters"];
        let schema = if schema.is_null() {
            &tools[0]["input_schema"]
        } else {
            schema
        };
        assert_eq!(schema["type"], "object", "{format}: {body}");
    }
}

#[tokio::test]
async fn agents_see_active_versions_only() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let active = h
        .deploy(&t, "f", &echo(), manifest("active one", text_schema()))
        .await;
    let pending = h
        .upload(
            &t.author,
            "f",
            &echo(),
            manifest("pending two", text_schema()),
        )
        .await;
    h.upload(
        &t.author,
        "draft",
        &echo(),
        manifest("only pending", text_schema()),
    )
    .await;
    // The pending queue, a pending version and a function with nothing
    // active answer 404 to an agent, as another tenant's would.
    for path in [
        "/v1/pending",
        "/v1/functions/f/versions/2",
        "/v1/functions/draft",
        "/v1/functions/draft/versions/1",
    ] {
        let (status, body) = h.request("GET", path, Some(&t.agent), None).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}: {body}"
        );
    }
    let (_, list) = h
        .request("GET", "/v1/functions", Some(&t.agent), None)
        .await;
    let names: Vec<&str> = list["functions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|f| str_of(&f["name"]))
        .collect();
    assert_eq!(names, ["f"], "{list}");
    assert_eq!(list["functions"][0]["latest_version"], 1, "{list}");
    let (status, detail) = h
        .request("GET", "/v1/functions/f", Some(&t.agent), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let versions: Vec<&Value> = detail["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(versions, [&active["version"]], "{detail}");
    // Pair: an author sees everything.
    let (_, detail) = h
        .request("GET", "/v1/functions/f", Some(&t.author), None)
        .await;
    assert_eq!(detail["versions"].as_array().expect("versions").len(), 2);
    let (status, _) = h
        .request("GET", "/v1/functions/f/versions/2", Some(&t.author), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    let (status, body) = h.request("GET", "/v1/pending", Some(&t.author), None).await;
    assert_eq!(
        (status, body["versions"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
}

#[tokio::test]
async fn the_role_check_comes_before_parameter_checks() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for (path, key) in [
        ("/v1/tools?format=bad", &t.author),
        ("/v1/tools?format=openai&format=anthropic", &t.admin),
        ("/v1/audit?limit=x", &t.agent),
        ("/v1/audit?stream=security", &t.author),
    ] {
        let (status, body) = h.request("GET", path, Some(key), None).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}: {body}"
        );
    }
    // Pair: with the role, the same parameters are refused as parameters.
    for (path, key, says) in [
        ("/v1/tools?format=bad", &t.agent, "unknown variant `bad`"),
        (
            "/v1/tools?format=openai&format=anthropic",
            &t.agent,
            "duplicate field `format`",
        ),
        ("/v1/audit?limit=x", &t.admin, "limit"),
        (
            "/v1/audit?stream=security",
            &t.admin,
            "unknown variant `security`",
        ),
        (
            "/v1/audit?tenant_id=globex",
            &t.admin,
            "unknown field `tenant_id`",
        ),
    ] {
        let (status, body) = h.request("GET", path, Some(key), None).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{path}: {body}"
        );
        assert!(message(&body).contains(says), "{path}: {body}");
    }
}

/// Found by fuzz/http_request: axum's query rejection prefixed any field
/// path, so `?:=x` answered `:: unknown field`. A plain parameter name is
/// still named; a path that is not one is left out.
#[tokio::test]
async fn a_query_error_names_plain_parameters_and_nothing_else() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for (path, says, not) in [
        ("/v1/audit?:=x", "unknown field `:`", "::"),
        (
            "/v1/audit?a%3A%3Ab=x",
            "unknown field `a::b`",
            "query string: a",
        ),
        ("/v1/audit?limit=x", "query string: limit: ", "::"),
    ] {
        let (status, body) = h.request("GET", path, Some(&t.admin), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(message(&body).contains(says), "{path}: {body}");
        assert!(!message(&body).contains(not), "{path}: {body}");
    }
    let (status, body) = h
        .request("GET", "/v1/audit?:=x", Some(&t.admin), None)
        .await;
    crate::check_error(status, &body, h.dir.path());
}

#[tokio::test]
async fn unauthenticated_attempts_are_counted_and_growing_values_are_counters() {
    let h = Harness::new();
    for auth in [None, Some("Basic x"), Some("Bearer nope"), Some("Bearer ")] {
        let r = h.raw("GET", "/v1/functions", auth, Vec::new()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = h.raw("GET", "/metrics", None, Vec::new()).await;
    let text = str_of(&r.body);
    assert_eq!(
        metric(text, "aifn_invocations_total{outcome=\"unauthenticated\"}"),
        4,
        "{text}"
    );
    for counter in [
        "aifn_invocations_total",
        "aifn_fuel_used_total",
        "aifn_audit_records_total",
        "aifn_audit_commits_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {counter} counter\n")),
            "{counter}: {text}"
        );
    }
    for gauge in [
        "aifn_in_flight",
        "aifn_audit_healthy",
        "aifn_cached_modules",
    ] {
        assert!(
            text.contains(&format!("# TYPE {gauge} gauge\n")),
            "{gauge}: {text}"
        );
    }
}

#[tokio::test]
async fn a_violation_at_the_root_names_the_root_and_counts_read_as_english() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "f", &echo(), manifest("f", text_schema()))
        .await;
    let (status, body) = h
        .invoke(&t.agent, "f", json!({"text": "hi", "extra": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        message(&body),
        "input does not match the schema of f (1 violation)"
    );
    let v = &body["error"]["violations"];
    assert_eq!(
        (v.as_array().map(Vec::len), &v[0]["path"]),
        (Some(1), &json!("")),
        "{body}"
    );
    // Two violations read as a plural.
    let (_, body) = h
        .invoke(&t.agent, "f", json!({"text": 5, "extra": 1}))
        .await;
    assert_eq!(
        message(&body),
        "input does not match the schema of f (2 violations)"
    );
}
