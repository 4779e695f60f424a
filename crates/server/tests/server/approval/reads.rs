//! `GET .../diff`, `.../module` and `.../source`.

use axum::http::{StatusCode, header};
use serde_json::json;

use super::echo_source;
use crate::{Harness, Key, echo, kind, manifest, says, text_schema};

const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "not_found");
const FORBIDDEN: (StatusCode, &str) = (StatusCode::FORBIDDEN, "forbidden");
const INVALID: (StatusCode, &str) = (StatusCode::BAD_REQUEST, "invalid_request");

/// GETs `path` as `key` and asserts the error status and kind.
async fn expect_error(h: &Harness, path: &str, key: &Key, expected: (StatusCode, &str)) {
    let (status, body) = h.request("GET", path, Some(key), None).await;
    assert_eq!((status, kind(&body)), expected, "{path}: {body}");
}

#[tokio::test]
async fn a_diff_against_the_previous_version_or_a_chosen_one() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let globex = h.tenant("globex");
    h.upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let mut wider = text_schema();
    wider["properties"]["lang"] = json!({"type": "string"});
    h.upload(&t.author, "echo", &echo(), manifest("echo, again", wider))
        .await;
    let (status, body) = h
        .request(
            "GET",
            "/v1/functions/echo/versions/2/diff",
            Some(&t.approver),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    let diffs = body["diffs"].as_array().expect("diffs");
    assert_eq!(diffs.len(), 1, "{body}");
    let d = &diffs[0];
    assert_eq!(
        (&d["against"], &d["relation"]),
        (&json!(1), &json!("previous"))
    );
    assert_eq!(
        d["description"],
        json!({"before": "echo", "after": "echo, again"})
    );
    assert_eq!(
        d["input_schema"],
        json!([{"path": "/properties/lang", "change": "added", "after": {"type": "string"}}])
    );
    assert_eq!(d["sha256"]["before"], d["sha256"]["after"]);
    assert_eq!(d["source"], json!(null));
    // Against a version named: relation chosen.
    let (status, body) = h
        .request(
            "GET",
            "/v1/functions/echo/versions/1/diff?against=2",
            Some(&t.author),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["diffs"][0]["relation"], "chosen");
    assert_eq!(body["diffs"][0]["description"]["after"], "echo");
    // Malformed parameters, and versions that are not there.
    for q in [
        "against=x",
        "against=-1",
        "colour=red",
        "against=4294967296",
    ] {
        let path = format!("/v1/functions/echo/versions/2/diff?{q}");
        expect_error(&h, &path, &t.approver, INVALID).await;
    }
    for path in [
        "/v1/functions/echo/versions/3/diff",
        "/v1/functions/echo/versions/2/diff?against=9",
        "/v1/functions/echo/versions/0/diff",
        "/v1/functions/nope/versions/1/diff",
    ] {
        expect_error(&h, path, &t.approver, NOT_FOUND).await;
    }
    // Another tenant's function is not found; agents never diff (a diff
    // shows code).
    expect_error(
        &h,
        "/v1/functions/echo/versions/2/diff",
        &globex.admin,
        NOT_FOUND,
    )
    .await;
    expect_error(
        &h,
        "/v1/functions/echo/versions/2/diff",
        &t.agent,
        FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn a_diff_of_a_source_upload_has_its_line_diff() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let text = echo_source();
    h.upload_source(&t.author, "echo", &text, manifest("echo", text_schema()))
        .await;
    let changed = format!(";; version two\n{text}");
    h.upload_source(&t.author, "echo", &changed, manifest("echo", text_schema()))
        .await;
    let (status, body) = h
        .request(
            "GET",
            "/v1/functions/echo/versions/2/diff",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let source = &body["diffs"][0]["source"];
    assert_eq!(
        (&source["lines_added"], &source["lines_removed"]),
        (&json!(1), &json!(0)),
        "{body}"
    );
    let unified = crate::str_of(&source["unified"]);
    assert!(unified.starts_with("--- echo@1\n+++ echo@2\n"), "{unified}");
    assert!(unified.contains("+;; version two\n"), "{unified}");
}

#[tokio::test]
async fn the_module_is_served_as_wasm_to_authors_approvers_and_admins() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let globex = h.tenant("globex");
    let code = crate::wasm(&says("hello"));
    let v = h
        .upload(
            &t.author,
            "hello",
            &says("hello"),
            manifest("hello", json!({"type": "object"})),
        )
        .await;
    h.approve(&t.approver, &v).await;
    for key in [&t.author, &t.approver, &t.admin] {
        let (status, headers, bytes) = h
            .get_bytes("/v1/functions/hello/versions/1/module", key)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(bytes, code);
        assert_eq!(headers[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(
            headers[header::CONTENT_DISPOSITION],
            "attachment; filename=\"hello-1.wasm\""
        );
    }
    // Agents do not read code, even of an active version.
    expect_error(
        &h,
        "/v1/functions/hello/versions/1/module",
        &t.agent,
        FORBIDDEN,
    )
    .await;
    for (path, key) in [
        ("/v1/functions/hello/versions/2/module", &t.admin),
        ("/v1/functions/hello/versions/0/module", &t.admin),
        ("/v1/functions/nope/versions/1/module", &t.admin),
        ("/v1/functions/hello/versions/1/module", &globex.admin),
    ] {
        expect_error(&h, path, key, NOT_FOUND).await;
    }
}

#[tokio::test]
async fn the_source_is_served_for_source_uploads_only() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let text = echo_source();
    h.upload_source(&t.author, "echo", &text, manifest("echo", text_schema()))
        .await;
    h.upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    for key in [&t.author, &t.approver, &t.admin] {
        let (status, body) = h
            .request(
                "GET",
                "/v1/functions/echo/versions/1/source",
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"language": "wat", "text": text}));
        // Version 2 was uploaded as a module: it has no source.
        expect_error(&h, "/v1/functions/echo/versions/2/source", key, NOT_FOUND).await;
    }
    expect_error(
        &h,
        "/v1/functions/echo/versions/1/source",
        &t.agent,
        FORBIDDEN,
    )
    .await;
}
