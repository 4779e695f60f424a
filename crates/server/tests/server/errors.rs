//! The one error body, request validation, size caps and module refusals.
//! (Every error answer in every test also goes through `check_error`.)

use axum::http::StatusCode;
use serde_json::json;

use crate::{
    Harness, any_schema, b64, constant, echo, kind, manifest, message, str_of, text_schema, wasm,
};

#[tokio::test]
async fn malformed_json_bodies_are_invalid_requests() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let v = h
        .deploy(&t, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let auth = |k: &crate::Key| format!("Bearer {}", k.secret);
    let cases: [(&str, &str, &crate::Key); 3] = [
        ("POST", "/v1/functions/echo/invoke", &t.agent),
        ("POST", "/v1/functions/echo/versions", &t.author),
        ("POST", "/v1/functions/echo/versions/1/revoke", &t.approver),
    ];
    for (method, path, key) in cases {
        for bad in [
            &b"{"[..],
            b"",
            b"not json",
            b"[1,2]",
            b"{\"input\": }",
            b"null",
        ] {
            let r = h.raw(method, path, Some(&auth(key)), bad.to_vec()).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{path} {:?}: {:?}",
                String::from_utf8_lossy(bad),
                r.body
            );
            assert_eq!(kind(&r.body), "invalid_request", "{path}");
        }
    }
    // Wrong JSON types, top level and nested in the manifest: the message
    // says what was expected in JSON terms, never a Rust type name.
    for bad in [
        json!({"manifest": "x", "module": ""}),
        json!({"manifest": {"description": "x", "input_schema": {}, "limits": 5}, "module": ""}),
        json!({"manifest": {"description": "x", "input_schema": {}, "capture": "forever"}, "module": ""}),
        json!({"manifest": {"description": 5, "input_schema": {}}, "module": ""}),
    ] {
        let (status, body) = h
            .request(
                "POST",
                "/v1/functions/echo/versions",
                Some(&t.author),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}: {body}"
        );
    }
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/invoke",
            Some(&t.agent),
            Some(json!(null)),
        )
        .await;
    assert_eq!(
        (status, message(&body)),
        (
            StatusCode::BAD_REQUEST,
            "invalid JSON body: invalid type: null, expected a JSON object at line 1 column 4"
        )
    );
    // Nothing was revoked by the malformed bodies.
    let (status, after) = h
        .request("GET", "/v1/functions/echo/versions/1", Some(&t.admin), None)
        .await;
    assert_eq!(
        (status, &after["state"]),
        (StatusCode::OK, &json!("active"))
    );
    // Pair: the same route with a well-formed body works.
    let (status, body) = h.invoke(&t.agent, "echo", json!({"text": "hi"})).await;
    assert_eq!(
        (status, &body["output"]),
        (StatusCode::OK, &json!({"text": "hi"})),
        "{body}"
    );
    assert_eq!(v["version"], 1);
}

#[tokio::test]
async fn unknown_fields_are_refused_and_the_tenant_is_not_a_parameter() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    // A tenant in the invoke body is refused, not ignored.
    let body = json!({"input": {"text": "hi"}, "tenant_id": "globex"});
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/invoke",
            Some(&t.agent),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(message(&body).contains("tenant_id"), "{body}");
    // In an upload body and in its manifest.
    let module = b64(&wasm(&echo()));
    let body =
        json!({"manifest": manifest("echo", text_schema()), "module": module, "tenant": "globex"});
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions",
            Some(&t.author),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    let mut m = manifest("echo", text_schema());
    m["permissions"] = json!(["network"]);
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions",
            Some(&t.author),
            Some(json!({"manifest": m, "module": module})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    assert!(message(&body).contains("permissions"), "{body}");
    // In a decision body, and in query strings.
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions/1/revoke",
            Some(&t.approver),
            Some(json!({"notes": "x", "tenant_id": "globex"})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    let (status, body) = h
        .request("GET", "/v1/audit?tenant_id=globex", Some(&t.admin), None)
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    let (status, body) = h
        .request("GET", "/v1/tools?tenant=globex", Some(&t.agent), None)
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    // Pair: without the extra field the invocation works.
    let (status, _) = h
        .request(
            "POST",
            "/v1/functions/echo/invoke",
            Some(&t.agent),
            Some(json!({"input": {"text": "hi"}, "user_id": "u-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn invalid_requests_name_the_problem() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let v = h
        .upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let module = b64(&wasm(&echo()));
    let upload = |m: serde_json::Value| json!({"manifest": m, "module": module});
    let cases = [
        (
            "POST",
            "/v1/functions/Bad-Name/versions",
            &t.author,
            upload(manifest("x", any_schema())),
            "function name",
        ),
        (
            "POST",
            "/v1/functions/echo/versions",
            &t.author,
            json!({"manifest": manifest("x", any_schema()), "module": "%%%"}),
            "base64",
        ),
        (
            "POST",
            "/v1/functions/echo/versions",
            &t.author,
            upload(manifest("  ", any_schema())),
            "description",
        ),
        (
            "POST",
            "/v1/functions/echo/versions",
            &t.author,
            upload(manifest("x", json!({"type": 5}))),
            "input_schema",
        ),
        (
            "POST",
            "/v1/functions/echo/versions",
            &t.author,
            upload(
                json!({"description": "x", "input_schema": {"type": "object"}, "limits": {"timeout_ms": 10_000_000}}),
            ),
            "timeout_ms",
        ),
        (
            "POST",
            "/v1/functions/echo/versions",
            &t.author,
            upload(
                json!({"description": "x", "input_schema": {"type": "object"}, "limits": {"fuel": 0}}),
            ),
            "fuel",
        ),
        (
            "POST",
            "/v1/functions/echo/versions/1/approve",
            &t.approver,
            json!({"notes": "no hash"}),
            "sha256",
        ),
        (
            "POST",
            "/v1/functions/echo/versions/1/approve",
            &t.approver,
            json!({"sha256": v["sha256"], "notes": "  "}),
            "notes",
        ),
        (
            "POST",
            "/v1/functions/echo/versions/1/reject",
            &t.approver,
            json!({"sha256": v["sha256"]}),
            "notes",
        ),
    ];
    for (method, path, key, body, names) in cases {
        let (status, body) = h.request(method, path, Some(key), Some(body)).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{path}: {body}"
        );
        assert!(
            message(&body).contains(names),
            "{path}: message should name {names:?}: {body}"
        );
    }
    for query in [
        "outcome=bogus",
        "stream=security",
        "since=yesterday",
        "limit=many",
        "before_seq=-1",
        "color=red",
    ] {
        let (status, body) = h
            .request("GET", &format!("/v1/audit?{query}"), Some(&t.admin), None)
            .await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{query}: {body}"
        );
    }
    let (status, body) = h
        .request("GET", "/v1/tools?format=xml", Some(&t.agent), None)
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    // The version is still pending and untouched; pair: a complete approval works.
    let (status, after) = h
        .request("GET", "/v1/functions/echo/versions/1", Some(&t.admin), None)
        .await;
    assert_eq!(
        (
            status,
            &after["state"],
            after["decisions"].as_array().map(Vec::len)
        ),
        (StatusCode::OK, &json!("pending"), Some(0))
    );
    h.approve(&t.approver, &v).await;
    let (status, _) = h
        .request(
            "GET",
            "/v1/audit?outcome=ok&stream=execution&limit=5",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_names_and_versions_are_not_found() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    for path in [
        "/v1/functions/nope",
        "/v1/functions/Bad-Name",
        "/v1/functions/echo/versions/2",
        "/v1/functions/echo/versions/0",
        "/v1/functions/echo/versions/abc",
        "/v1/functions/echo/versions/99999999999",
    ] {
        let (status, body) = h.request("GET", path, Some(&t.admin), None).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}: {body}"
        );
    }
    // Pair.
    let (status, _) = h
        .request("GET", "/v1/functions/echo/versions/1", Some(&t.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bodies_over_the_size_cap_are_payload_too_large() {
    let h = Harness::with(
        |c| c.limits.input_bytes = 1024,
        aifn_server::ServerConfig::default(),
    );
    let t = h.tenant("acme");
    h.deploy(&t, "echo", &echo(), manifest("echo", any_schema()))
        .await;
    // The invoke body cap is the input cap plus 64 KiB.
    let big = "x".repeat(200 * 1024);
    let (status, body) = h.invoke(&t.agent, "echo", json!({"text": big})).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    // The message states the limit that applied.
    assert_eq!(
        message(&body),
        format!(
            "the request body is over this route's limit of {} bytes",
            1024 + 64 * 1024
        )
    );
    // Under the body cap but over the input cap: the function's input limit.
    let (status, body) = h
        .invoke(&t.agent, "echo", json!({"text": "x".repeat(2048)}))
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{body}"
    );
    // Other JSON bodies are capped at 64 KiB.
    let notes = "n".repeat(100 * 1024);
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions/1/revoke",
            Some(&t.approver),
            Some(json!({"notes": notes})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    assert_eq!(
        message(&body),
        "the request body is over this route's limit of 65536 bytes"
    );
    // Pair: within the caps.
    let (status, body) = h
        .invoke(&t.agent, "echo", json!({"text": "x".repeat(900)}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions/1/revoke",
            Some(&t.approver),
            Some(json!({"notes": "stop"})),
        )
        .await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("revoked"))
    );
}

#[tokio::test]
async fn invalid_modules_are_refused_with_the_reason() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let m = || manifest("x", any_schema());
    let http_get = r#"(module
      (import "env" "http_get" (func (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "aifn_call") (result i32) (i32.const 0)))"#;
    let no_call =
        r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#;
    let imported_memory = r#"(module
      (import "aifn" "memory" (memory 1))
      (func (export "aifn_call") (result i32) (i32.const 0)))"#;
    let threads = r#"(module (memory (export "memory") 1 1 shared) (func (export "aifn_call") (result i32) (i32.const 0)))"#;
    let cases: [(Vec<u8>, &str, &str); 5] = [
        (b"definitely not wasm".to_vec(), "invalid_module", "wasm"),
        (wasm(no_call), "invalid_module", "aifn_call"),
        (wasm(http_get), "forbidden_import", "env.http_get"),
        (wasm(imported_memory), "forbidden_import", "aifn.memory"),
        (wasm(threads), "invalid_module", "thread"),
    ];
    for (module, want, names) in cases {
        let (status, body) = h.try_upload(&t.author, "bad", &module, m()).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{names}: {body}"
        );
        assert!(
            message(&body).contains(names),
            "message should name {names:?}: {body}"
        );
    }
    // Nothing was stored.
    let (status, body) = h
        .request("GET", "/v1/functions/bad", Some(&t.admin), None)
        .await;
    assert_eq!((status, kind(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // Pair: a valid module under the same name is accepted.
    let v = h.upload(&t.author, "bad", &constant("1", 1, 0), m()).await;
    assert_eq!(v["version"], 1);
}

#[tokio::test]
async fn modules_over_the_module_cap_are_payload_too_large() {
    let h = Harness::with(
        |c| c.limits.module_bytes = 16 * 1024,
        aifn_server::ServerConfig::default(),
    );
    let t = h.tenant("acme");
    let data = "x".repeat(20 * 1024);
    let fat = format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{data}") (func (export "aifn_call") (result i32) (i32.const 0)))"#
    );
    let (status, body) = h
        .try_upload(&t.author, "fat", &wasm(&fat), manifest("fat", any_schema()))
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    // Far over: refused by the body cap before it is decoded.
    let (status, body) = h
        .try_upload(
            &t.author,
            "fat",
            &vec![0u8; 4 << 20],
            manifest("fat", any_schema()),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    // Pair: the same module with less data fits.
    let thin = fat.replace(&data, &"x".repeat(8 * 1024));
    let (status, body) = h
        .try_upload(
            &t.author,
            "fat",
            &wasm(&thin),
            manifest("fat", any_schema()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(str_of(&body["state"]), "pending");
}

/// Audit storage faults are the host's, not the caller's: a 500 with no
/// file path or database detail (they were answered as 400
/// `invalid_request` with the database path and error in the message).
#[tokio::test]
async fn audit_storage_faults_are_internal_and_leak_nothing() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let db = h.dir.path().join("audit.sqlite3");
    let moved = h.dir.path().join("audit.sqlite3.away");
    // The service has not read the audit log yet, so its next read opens
    // the database file, which is gone.
    std::fs::rename(&db, &moved).expect("move the audit database away");
    let (status, body) = h.request("GET", "/v1/audit", Some(&t.admin), None).await;
    std::fs::rename(&moved, &db).expect("put it back");
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        "{body}"
    );
    // Pair: with the file back the same query works.
    let (status, body) = h.request("GET", "/v1/audit", Some(&t.admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A path parameter that is not UTF-8 once percent-decoded gets the one
/// JSON error body (400 `invalid_request`) after authentication, and 401
/// before it; axum's own plain-text rejection never reaches the client.
/// Found by fuzz/http_request.
#[tokio::test]
async fn undecodable_path_parameters_get_the_one_error_body() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for (method, path, key) in [
        ("GET", "/v1/functions/ec%88ho", &t.agent),
        ("GET", "/v1/functions/echo/versions/%ff", &t.agent),
        ("POST", "/v1/functions/ec%88ho/invoke", &t.agent),
        ("POST", "/v1/functions/ec%88ho/versions", &t.author),
        (
            "POST",
            "/v1/functions/ec%88ho/versions/1/approve",
            &t.approver,
        ),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let (status, reply) = h.request(method, path, Some(key), body.clone()).await;
        assert_eq!(
            (status, kind(&reply)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{method} {path}: {reply}"
        );
        let (status, reply) = h.request(method, path, None, body).await;
        assert_eq!(
            (status, kind(&reply)),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{method} {path}: {reply}"
        );
    }
}
