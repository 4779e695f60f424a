//! Separation of duties, hash binding and tenant isolation over HTTP, and
//! the bearer scheme (the matrix of roles and routes is `authz.rs`).

use aifn_types::Role;
use axum::http::StatusCode;
use serde_json::json;

use crate::{Harness, any_schema, echo, kind, manifest, says, str_of, text_schema};

#[tokio::test]
async fn an_approver_may_not_approve_or_reject_their_own_version() {
    let h = Harness::new();
    let t = h.tenant("acme");
    // Carol holds an author key and an approver key.
    let carol_author = h.key("acme", Role::Author, "carol");
    let carol_approver = h.key("acme", Role::Approver, "carol");
    let v = h
        .upload(
            &carol_author,
            "echo",
            &echo(),
            manifest("echo", text_schema()),
        )
        .await;
    let decision = json!({"sha256": v["sha256"], "notes": "looks fine to me"});
    for action in ["approve", "reject"] {
        let (status, body) = h
            .decide(&carol_approver, action, &v, Some(decision.clone()))
            .await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{action}: {body}"
        );
        assert!(
            crate::message(&body).contains("separation of duties"),
            "{body}"
        );
    }
    // Pair: another approver may.
    let active = h.approve(&t.approver, &v).await;
    assert_eq!(active["decisions"][0]["actor"], "acme-approver");
    // Revoking one's own version is allowed: stopping code is never the risk.
    let (status, body) = h
        .decide(
            &carol_approver,
            "revoke",
            &v,
            Some(json!({"notes": "pulling it"})),
        )
        .await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("revoked")),
        "{body}"
    );
}

#[tokio::test]
async fn a_decision_is_bound_to_the_inspected_hash() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let v = h
        .upload(&t.author, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let other = h
        .upload(
            &t.author,
            "other",
            &says("other"),
            manifest("other", any_schema()),
        )
        .await;
    assert_ne!(v["sha256"], other["sha256"]);
    for action in ["approve", "reject"] {
        for wrong in [other["sha256"].clone(), json!("0".repeat(64)), json!("abc")] {
            let (status, body) = h
                .decide(
                    &t.approver,
                    action,
                    &v,
                    Some(json!({"sha256": wrong, "notes": "ok"})),
                )
                .await;
            assert_eq!(
                (status, kind(&body)),
                (StatusCode::CONFLICT, "conflict"),
                "{action} with {wrong}: {body}"
            );
        }
    }
    let (status, body) = h
        .request("GET", "/v1/functions/echo/versions/1", Some(&t.admin), None)
        .await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("pending"))
    );
    // Pair: the right hash.
    h.approve(&t.approver, &v).await;
    // A decided version cannot be decided again.
    let (status, body) = h
        .decide(
            &t.approver,
            "reject",
            &v,
            Some(json!({"sha256": v["sha256"], "notes": "late"})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::CONFLICT, "conflict"),
        "{body}"
    );
}

#[tokio::test]
async fn tenants_see_only_their_own() {
    let h = Harness::new();
    let acme = h.tenant("acme");
    let globex = h.tenant("globex");
    // The same name in both tenants, different code.
    let a = h
        .deploy(
            &acme,
            "hello",
            &says("acme"),
            manifest("acme's hello", any_schema()),
        )
        .await;
    let g = h
        .deploy(
            &globex,
            "hello",
            &says("globex"),
            manifest("globex's hello", any_schema()),
        )
        .await;
    assert_ne!(a["sha256"], g["sha256"]);
    h.upload(
        &acme.author,
        "acme_only",
        &echo(),
        manifest("pending in acme", text_schema()),
    )
    .await;
    h.upload(
        &globex.author,
        "globex_only",
        &echo(),
        manifest("pending in globex", text_schema()),
    )
    .await;

    for (t, own_sha, own_only, other_only) in [
        (&acme, &a["sha256"], "acme_only", "globex_only"),
        (&globex, &g["sha256"], "globex_only", "acme_only"),
    ] {
        let who = &t.name;
        let (_, list) = h
            .request("GET", "/v1/functions", Some(&t.author), None)
            .await;
        let mut names: Vec<&str> = list["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .map(|f| str_of(&f["name"]))
            .collect();
        names.sort_unstable();
        let mut want = ["hello", own_only];
        want.sort_unstable();
        assert_eq!(names, want, "{who}'s list");
        let (_, detail) = h
            .request("GET", "/v1/functions/hello", Some(&t.agent), None)
            .await;
        assert_eq!(&detail["versions"][0]["sha256"], own_sha, "{who}'s hello");
        assert_eq!(
            detail["versions"].as_array().map(Vec::len),
            Some(1),
            "{who}'s hello"
        );
        let (_, pending) = h
            .request("GET", "/v1/pending", Some(&t.approver), None)
            .await;
        let pending: Vec<&str> = pending["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| str_of(&v["name"]))
            .collect();
        assert_eq!(pending, [own_only], "{who}'s pending");
        let (status, body) = h
            .request(
                "GET",
                &format!("/v1/functions/{other_only}"),
                Some(&t.admin),
                None,
            )
            .await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{who} sees {other_only}"
        );
        let (_, tools) = h.request("GET", "/v1/tools", Some(&t.agent), None).await;
        assert_eq!(
            tools["tools"].as_array().map(Vec::len),
            Some(1),
            "{who}'s tools: {tools}"
        );
        assert_eq!(
            tools["tools"][0]["function"]["description"],
            format!("{who}'s hello")
        );
        // Invoking runs the caller's own function.
        let (status, body) = h.invoke(&t.agent, "hello", json!({})).await;
        assert_eq!(
            (status, &body["output"]),
            (StatusCode::OK, &json!(who)),
            "{body}"
        );
        let entries = h.audit(&t.admin, "").await;
        assert!(!entries.is_empty());
        assert!(
            entries.iter().all(|e| e["tenant_id"] == json!(who)),
            "{who}'s audit: {entries:?}"
        );
    }
    // A version number that exists only in the other tenant: not found,
    // even with that version's true hash.
    let v2 = h
        .upload(
            &acme.author,
            "hello",
            &says("acme2"),
            manifest("acme's hello", any_schema()),
        )
        .await;
    let (status, body) = h
        .decide(
            &globex.approver,
            "approve",
            &v2,
            Some(json!({"sha256": v2["sha256"], "notes": "mine now"})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::NOT_FOUND, "not_found"),
        "{body}"
    );
    let (status, body) = h
        .request(
            "GET",
            "/v1/functions/hello/versions/2",
            Some(&acme.admin),
            None,
        )
        .await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("pending"))
    );
}

/// The scheme of `Authorization: Bearer KEY` is case-insensitive (RFC 9110
/// section 11.1); a scheme that only starts with it is not the scheme.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let header = format!("{scheme} {}", t.admin.secret);
        let r = h
            .raw("GET", "/v1/functions", Some(&header), Vec::new())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}: {:?}", r.body);
    }
    let header = format!("Bearerx {}", t.admin.secret);
    let r = h
        .raw("GET", "/v1/functions", Some(&header), Vec::new())
        .await;
    assert_eq!(
        (r.status, crate::message(&r.body)),
        (
            StatusCode::UNAUTHORIZED,
            "a valid API key is required (malformed key)"
        )
    );
}
