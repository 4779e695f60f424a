//! `POST /v1/executions/{id}/replay` and `GET /v1/audit/bundle`.

use axum::http::{StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Harness, Tenant, echo, kind, manifest, message, str_of, text_schema};

/// Deploys `cap` (echo, inputs captured) and `plain` (echo, no capture)
/// and invokes each once; their execution ids.
async fn executions(h: &Harness, t: &Tenant) -> (String, String) {
    let mut m = manifest("echo, captured", text_schema());
    m["capture"] = json!({"retention_days": 1});
    h.deploy(t, "cap", &echo(), m).await;
    h.deploy(t, "plain", &echo(), manifest("echo", text_schema()))
        .await;
    let mut ids = Vec::new();
    for name in ["cap", "plain"] {
        let (status, body) = h.invoke(&t.agent, name, json!({"text": "hi"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(str_of(&body["execution_id"]).to_owned());
    }
    (ids.remove(0), ids.remove(0))
}

async fn replay(h: &Harness, key: &crate::Key, id: &str) -> (StatusCode, Value) {
    h.request(
        "POST",
        &format!("/v1/executions/{id}/replay"),
        Some(key),
        None,
    )
    .await
}

#[tokio::test]
async fn a_captured_execution_is_replayed_by_approvers_and_admins() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let globex = h.tenant("globex");
    let (captured, plain) = executions(&h, &t).await;
    for key in [&t.approver, &t.admin] {
        let (status, body) = replay(&h, key, &captured).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verdict"], "reproduced", "{body}");
        assert_eq!(body["execution_id"], captured.as_str());
        assert_ne!(body["replay_execution_id"], captured.as_str());
        assert_eq!(
            (&body["function"], &body["version"]),
            (&json!("cap"), &json!(1))
        );
        assert_eq!(
            (&body["recorded_kind"], &body["replayed_kind"]),
            (&json!("ok"), &json!("ok"))
        );
        assert_eq!(
            body["recorded_output_sha256"],
            body["replayed_output_sha256"]
        );
        assert_eq!(body["input_matches_record"], true);
        // The replay is recorded, as a replay of the original.
        let records = h.audit(&t.admin, "stream=execution").await;
        let id = str_of(&body["replay_execution_id"]);
        let r = records
            .iter()
            .find(|e| e["execution_id"] == id)
            .unwrap_or_else(|| panic!("no record of the replay {id}: {records:?}"));
        assert_eq!(
            (&r["run"], &r["replay_of"]),
            (&json!("replay"), &json!(captured)),
            "{r}"
        );
    }
    // Without a captured input there is nothing to replay.
    let (status, body) = replay(&h, &t.approver, &plain).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::CONFLICT, "conflict"),
        "{body}"
    );
    assert!(message(&body).contains("captured"), "{body}");
    // Authors and agents may not; unknown ids and other tenants' are not found.
    for key in [&t.author, &t.agent] {
        let (status, body) = replay(&h, key, &captured).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{body}"
        );
    }
    for (key, id) in [
        (&t.approver, "no-such-execution"),
        (&globex.approver, captured.as_str()),
    ] {
        let (status, body) = replay(&h, key, id).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{id}: {body}"
        );
    }
    let r = h
        .raw(
            "POST",
            "/v1/executions/%88/replay",
            Some(&format!("Bearer {}", t.approver.secret)),
            Vec::new(),
        )
        .await;
    assert_eq!(
        (r.status, kind(&r.body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn an_evidence_bundle_is_one_file_that_verifies() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let (captured, _) = executions(&h, &t).await;
    let path = format!("/v1/audit/bundle?execution={captured}");
    let (status, headers, bytes) = h.get_bytes(&path, &t.approver).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let disposition = headers[header::CONTENT_DISPOSITION]
        .to_str()
        .expect("ascii");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let bundle: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(bundle["format"], "aifn-evidence-bundle/1");
    assert_eq!(bundle["tenant_id"], "acme");
    let versions = bundle["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "{bundle}");
    assert_eq!(versions[0]["info"]["name"], "cap");
    assert!(versions[0]["module_base64"].is_null(), "{bundle}");
    let report = aifn_service::verify_bundle(&bytes, None).expect("the bundle verifies");
    assert!(report.records >= 1, "{report:?}");
    // Pair: one byte of a record changed is found.
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let tampered = text.replace("acme-agent", "acme-agenX");
    assert_ne!(tampered, text);
    assert!(aifn_service::verify_bundle(tampered.as_bytes(), None).is_err());
    // By function, with the module.
    for q in [
        "function=cap&module=true",
        "function=cap&version=1&include_module=true",
    ] {
        let (status, _, bytes) = h
            .get_bytes(&format!("/v1/audit/bundle?{q}"), &t.admin)
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{q}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let bundle: Value = serde_json::from_slice(&bytes).expect("json");
        let module = base64::engine::general_purpose::STANDARD
            .decode(str_of(&bundle["versions"][0]["module_base64"]))
            .expect("base64");
        assert_eq!(module, crate::wasm(&echo()), "{q}");
        let report = aifn_service::verify_bundle(&bytes, None).expect("verifies");
        assert_eq!(report.modules_checked, 1, "{q}");
    }
}

#[tokio::test]
async fn bundle_requests_are_checked_after_the_role() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let globex = h.tenant("globex");
    let (captured, _) = executions(&h, &t).await;
    for q in [
        "",
        "colour=red",
        "function=cap&version=x",
        "function=cap&module=maybe",
        "since=yesterday&function=cap",
    ] {
        let path = format!("/v1/audit/bundle?{q}");
        // Not a reader of the audit log: forbidden, whatever the query.
        for key in [&t.author, &t.agent] {
            let (status, body) = h.request("GET", &path, Some(key), None).await;
            assert_eq!(
                (status, kind(&body)),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{q}: {body}"
            );
        }
        let (status, body) = h.request("GET", &path, Some(&t.approver), None).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{q}: {body}"
        );
    }
    // Both an execution and a function: one or the other.
    let path = format!("/v1/audit/bundle?execution={captured}&function=cap");
    let (status, body) = h.request("GET", &path, Some(&t.approver), None).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    // Not found: an unknown execution or function, another tenant's execution.
    for (key, q) in [
        (&t.approver, "execution=no-such-execution".to_owned()),
        (&t.approver, "function=nope".to_owned()),
        (&globex.approver, format!("execution={captured}")),
    ] {
        let (status, body) = h
            .request("GET", &format!("/v1/audit/bundle?{q}"), Some(key), None)
            .await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{q}: {body}"
        );
    }
}
