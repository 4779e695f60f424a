//! The approval tools over HTTP: uploads of a source, manifest tests and
//! the override, test runs (here); diffs, module and source reads
//! (`reads`); replays and evidence bundles (`forensics`). Each route's
//! roles allowed and refused, not found, the answer's shape, and error
//! bodies (checked by the harness with `check_error`).

mod forensics;
mod reads;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{Harness, Key, echo, kind, manifest, message, text_schema, trap};

/// Echoes its input; the WAT text of a source upload.
pub(super) fn echo_source() -> String {
    echo()
}

async fn test_run(
    h: &Harness,
    key: &Key,
    name: &str,
    version: u32,
    body: Value,
) -> (StatusCode, Value) {
    h.request(
        "POST",
        &format!("/v1/functions/{name}/versions/{version}/test"),
        Some(key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_test_run_answers_as_an_invocation_and_is_recorded_as_a_test_run() {
    let h = Harness::new();
    let t = h.tenant("acme");
    // A pending version: no active version is needed.
    h.upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let (status, body) = test_run(
        &h,
        &t.approver,
        "echo",
        1,
        json!({"input": {"text": "hi"}, "user_id": "u7"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["output"], json!({"text": "hi"}));
    assert_eq!(body["version"], 1);
    assert!(body["fuel_used"].as_u64().is_some_and(|f| f > 0), "{body}");
    let id = crate::str_of(&body["execution_id"]).to_owned();
    let records = h.audit(&t.admin, "stream=execution").await;
    let record = records
        .iter()
        .find(|e| e["execution_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no record of {id}: {records:?}"));
    assert_eq!(record["run"], "test_run", "{record}");
    assert_eq!(record["agent_id"], "acme-approver", "{record}");
    assert_eq!(record["user_id"], "u7", "{record}");
    // Never counted as an agent's execution.
    let r = h.raw("GET", "/metrics", None, Vec::new()).await;
    let text = crate::str_of(&r.body);
    assert!(
        text.contains("aifn_invocations_total{outcome=\"ok\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("aifn_test_runs_total{outcome=\"ok\"} 1\n"),
        "{text}"
    );
    // The version's own author may test it too; the user defaults to them.
    let (status, body) = test_run(&h, &t.author, "echo", 1, json!({"input": {"text": "me"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = crate::str_of(&body["execution_id"]).to_owned();
    let records = h.audit(&t.admin, "stream=execution").await;
    let record = records
        .iter()
        .find(|e| e["execution_id"] == id.as_str())
        .expect("record");
    assert_eq!(
        (&record["agent_id"], &record["user_id"]),
        (&json!("acme-author"), &json!("acme-author"))
    );
}

#[tokio::test]
async fn a_failing_test_run_has_the_failure_shape_of_an_invocation() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.upload(
        &t.author,
        "boom",
        &trap(),
        manifest("traps", json!({"type": "object"})),
    )
    .await;
    let (status, body) = test_run(&h, &t.approver, "boom", 1, json!({"input": {}})).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "trap"),
        "{body}"
    );
    for field in ["execution_id", "version", "fuel_used", "duration_ms"] {
        assert!(body.get(field).is_some(), "{field}: {body}");
    }
    // An input that breaks the schema is refused before it runs.
    h.upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let (status, body) = test_run(&h, &t.approver, "echo", 1, json!({"input": {"text": 5}})).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{body}"
    );
    assert!(body["error"]["violations"].is_array(), "{body}");
    // Malformed bodies.
    for bad in [
        json!({"input": {}, "colour": 1}),
        json!({}),
        json!({"input": {}, "user_id": "u".repeat(257)}),
    ] {
        let (status, body) = test_run(&h, &t.approver, "echo", 1, bad.clone()).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn test_runs_are_for_approvers_and_the_versions_author() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let globex = h.tenant("globex");
    let other_author = h.key("acme", aifn_types::Role::Author, "someone-else");
    h.upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let input = || json!({"input": {"text": "hi"}});
    for key in [&t.admin, &t.agent, &other_author] {
        let (status, body) = test_run(&h, key, "echo", 1, input()).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{body}"
        );
    }
    for (name, version) in [("echo", 2), ("nope", 1)] {
        let (status, body) = test_run(&h, &t.approver, name, version, input()).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{body}"
        );
    }
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions/0/test",
            Some(&t.approver),
            Some(input()),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::NOT_FOUND, "not_found"),
        "{body}"
    );
    // Another tenant's version is not found to its approver.
    let (status, body) = test_run(&h, &globex.approver, "echo", 1, input()).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::NOT_FOUND, "not_found"),
        "{body}"
    );
    // Pair: the approver and the author may.
    for key in [&t.approver, &t.author] {
        let (status, body) = test_run(&h, key, "echo", 1, input()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn an_upload_is_a_module_or_a_source_never_both() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let v = h
        .upload_source(
            &t.author,
            "echo",
            &echo_source(),
            manifest("echo", text_schema()),
        )
        .await;
    assert_eq!(v["source"]["language"], "wat", "{v}");
    assert_eq!(v["source"]["size_bytes"], echo_source().len(), "{v}");
    // The module built is the one the text compiles to.
    let module = h
        .upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    assert_eq!(v["sha256"], module["sha256"]);
    assert!(module["source"].is_null(), "{module}");
    let m = || manifest("echo", text_schema());
    let source = || json!({"language": "wat", "text": echo_source()});
    for (what, body) in [
        (
            "both",
            json!({"manifest": m(), "module": crate::b64(&crate::wasm(&echo())), "source": source()}),
        ),
        ("neither", json!({"manifest": m()})),
        (
            "unknown language",
            json!({"manifest": m(), "source": {"language": "rust", "text": "fn main() {}"}}),
        ),
    ] {
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
            "{what}: {body}"
        );
    }
    // A source that does not build is refused, nothing stored.
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions",
            Some(&t.author),
            Some(json!({"manifest": m(), "source": {"language": "wat", "text": "(module (func"}})),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    let (_, f) = h
        .request("GET", "/v1/functions/echo", Some(&t.admin), None)
        .await;
    assert_eq!(f["versions"].as_array().map(Vec::len), Some(2), "{f}");
    // An approver cannot upload a source either.
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/echo/versions",
            Some(&t.approver),
            Some(json!({"manifest": m(), "source": source()})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{body}"
    );
}

#[tokio::test]
async fn approval_with_a_failing_test_needs_the_override_and_notes() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let mut m = manifest("echo", text_schema());
    m["tests"] = json!([
        {"name": "echoes", "input": {"text": "a"}, "expect_output": {"text": "a"}},
        {"name": "wrong", "input": {"text": "a"}, "expect_output": {"text": "b"}}
    ]);
    let v = h.upload(&t.author, "echo", &echo(), m).await;
    let tests = v["report"]["tests"].as_array().expect("test results");
    assert_eq!(tests.len(), 2, "{v}");
    assert_eq!(
        (&tests[0]["passed"], &tests[1]["passed"]),
        (&json!(true), &json!(false))
    );
    let approve = |over: Option<bool>| {
        let mut b =
            json!({"sha256": v["sha256"], "notes": "the wrong test is wrong, not the code"});
        if let Some(o) = over {
            b["override_failing_tests"] = json!(o);
        }
        b
    };
    for over in [None, Some(false)] {
        let (status, body) = h
            .decide(&t.approver, "approve", &v, Some(approve(over)))
            .await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::CONFLICT, "conflict"),
            "{body}"
        );
        assert!(message(&body).contains("wrong"), "{body}");
    }
    // The override on another decision is a malformed request.
    let (status, body) = h
        .decide(&t.approver, "reject", &v, Some(approve(Some(true))))
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    // Not an approver: forbidden, override or not.
    let (status, body) = h
        .decide(&t.admin, "approve", &v, Some(approve(Some(true))))
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{body}"
    );
    // Pair: with the override it is approved, and the override is recorded.
    let (status, body) = h
        .decide(&t.approver, "approve", &v, Some(approve(Some(true))))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "active");
    let d = body["decisions"]
        .as_array()
        .and_then(|d| d.last())
        .expect("decision")
        .clone();
    assert_eq!(
        (&d["action"], &d["override_failing_tests"]),
        (&json!("approve"), &json!(true)),
        "{d}"
    );
    let records = h.audit(&t.admin, "stream=registry").await;
    assert!(
        records.iter().any(|r| r["action"] == "approve"
            && r["override_failing_tests"] == true
            && r["refused"].is_null()),
        "{records:?}"
    );
}
