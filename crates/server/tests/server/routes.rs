//! The route table: what is served, what the OpenAPI document lists, and
//! what answers without a key.

use std::collections::BTreeSet;

use aifn_server::{ROUTES, openapi};
use aifn_types::Role;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use crate::{Harness, echo, error_kinds, kind, manifest, str_of, text_schema};

/// A role that may use the route (any role for reads).
fn role_for(method: &str, path: &str) -> Role {
    match (method, path) {
        ("POST", "/v1/functions/{name}/versions") => Role::Author,
        ("POST", p)
            if p.ends_with("/approve") || p.ends_with("/reject") || p.ends_with("/revoke") =>
        {
            Role::Approver
        }
        ("POST", "/v1/functions/{name}/versions/{version}/test" | "/v1/executions/{id}/replay") => {
            Role::Approver
        }
        ("POST", "/v1/functions/{name}/invoke") | ("GET", "/v1/tools") => Role::Agent,
        ("GET", "/v1/audit" | "/v1/audit/bundle" | "/v1/agents/{subject}/usage")
        | ("PUT" | "DELETE", _) => Role::Admin,
        _ => Role::Author,
    }
}

#[tokio::test]
async fn every_route_is_served() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    // A policy for the policy routes to read, replace and delete.
    h.grant(&t.admin, "bot-1", json!({"allow": ["echo"]})).await;
    // A source upload to read, and a captured execution to replay.
    let src = h
        .upload_source(&t.author, "src", &echo(), manifest("source", text_schema()))
        .await;
    let mut captured = manifest("captured", text_schema());
    captured["capture"] = json!({"retention_days": 1});
    h.deploy(&t, "cap", &echo(), captured).await;
    let (_, call) = h.invoke(&t.agent, "cap", json!({"text": "hi"})).await;
    let execution = str_of(&call["execution_id"]).to_owned();
    for (method, template) in ROUTES {
        // Something each route can act on: a fresh pending version to
        // approve or reject, a fresh active function to revoke.
        let pending = h
            .upload(
                &t.author,
                "echo",
                &echo(),
                manifest("echo again", text_schema()),
            )
            .await;
        let (name, version) = if template.ends_with("/revoke") {
            let victim = h
                .deploy(&t, "victim", &echo(), manifest("victim", text_schema()))
                .await;
            ("victim", victim["version"].as_u64().expect("version"))
        } else if template.ends_with("/source") {
            ("src", src["version"].as_u64().expect("version"))
        } else {
            ("echo", pending["version"].as_u64().expect("version"))
        };
        let mut path = template
            .replace("{name}", name)
            .replace("{version}", &version.to_string())
            .replace("{subject}", "bot-1")
            .replace("{id}", &execution);
        if *template == "/v1/audit/bundle" {
            path.push_str(&format!("?execution={execution}"));
        }
        let body = match *template {
            p if p.ends_with("/approve") || p.ends_with("/reject") => {
                Some(json!({"sha256": pending["sha256"], "notes": "ok"}))
            }
            p if p.ends_with("/revoke") => Some(json!({"notes": "ok"})),
            p if p.ends_with("/invoke") || p.ends_with("/test") => {
                Some(json!({"input": {"text": "hi"}}))
            }
            p if p.ends_with("/policy") && *method == "PUT" => Some(json!({"allow": ["echo"]})),
            "/v1/tenant/mode" => Some(json!({"mode": "allowlist"})),
            "/v1/tenant/budget" => Some(json!({})),
            "/v1/tenant/output-guard" => Some(json!({"mode": "flag"})),
            p if p.ends_with("/versions") => Some(
                json!({"manifest": manifest("echo", text_schema()), "module": crate::b64(&crate::wasm(&echo()))}),
            ),
            _ => None,
        };
        let key = t.key(role_for(method, template));
        let (status, body) = h.request(method, &path, Some(key), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes() {
    let doc = openapi();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in the OpenAPI document: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in the OpenAPI document but not served: {unserved:?}"
    );
    assert_eq!(served.len(), ROUTES.len(), "ROUTES has duplicates");

    // The error schema names exactly the product's error kinds.
    let kinds: BTreeSet<&str> =
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["kind"]["enum"]
            .as_array()
            .expect("kind enum")
            .iter()
            .map(|k| k.as_str().expect("kind"))
            .collect();
    assert_eq!(kinds, error_kinds());

    // The served document is the same one.
    let h = Harness::new();
    let (status, served_doc) = h.request("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served_doc, doc);
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for path in [
        "/nope",
        "/v1",
        "/v1/functions/echo/extra",
        "/v1/functions/echo/versions/1/approve/now",
        "/v2/functions",
    ] {
        let (status, body) = h.request("GET", path, Some(&t.admin), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(kind(&body), "not_found", "{path}");
    }
    // An unknown action is not a route, key or not.
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions/1/delete",
            None,
            Some(json!({"notes": "x"})),
        )
        .await;
    assert_eq!((status, kind(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // Pair: a known path with the same key is found.
    let (status, _) = h
        .request("GET", "/v1/functions", Some(&t.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for (method, path) in [
        ("DELETE", "/v1/functions"),
        ("POST", "/healthz"),
        ("PUT", "/v1/functions/echo"),
        ("GET", "/v1/functions/echo/invoke"),
        ("GET", "/v1/functions/echo/versions"),
        ("GET", "/v1/functions/echo/versions/1/approve"),
        ("POST", "/v1/audit"),
        ("POST", "/v1/agents/bot-1/policy"),
        ("GET", "/v1/tenant/mode"),
        ("DELETE", "/v1/tenant"),
    ] {
        let r = h.reply(method, path, Some(&t.admin), Some(json!({}))).await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {:?}",
            r.body
        );
        assert_eq!(kind(&r.body), "invalid_request", "{method} {path}");
        assert!(
            r.headers.contains_key(header::ALLOW),
            "{method} {path}: no Allow header"
        );
    }
}

#[tokio::test]
async fn health_metrics_and_openapi_answer_without_a_key() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let (status, _) = h.invoke(&t.agent, "echo", json!({"text": "hi"})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = h.request("GET", "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = h.request("GET", "/readyz", None, None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"status": "ready", "open_tenants": []})
        )
    );
    let r = h.raw("GET", "/metrics", None, Vec::new()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = str_of(&r.body);
    assert!(
        text.contains("aifn_invocations_total{outcome=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("aifn_invocations_total{outcome=\"timeout\"} 0\n"),
        "{text}"
    );
    assert_eq!(crate::metric(text, "aifn_in_flight"), 0);
    let (status, body) = h.request("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");

    // Pair: an authenticated route does not answer without a key.
    let (status, body) = h.request("GET", "/v1/functions", None, None).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(
        body["error"]["message"],
        Value::from("a valid API key is required (missing key)")
    );
}
