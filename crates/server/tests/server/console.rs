//! The console's security rules in-process (the browser journey is in
//! crates/cli/tests/e2e/console.rs): its headers on every answer, the
//! sign-in's CSRF cookie, agent keys refused, the session cookie's
//! attributes, state changes refused without the CSRF token or from
//! another origin (nothing changes), a revoked key ending its session,
//! and author text escaped.

use aifn_server::{ConsoleConfig, ServerConfig};
use aifn_types::Role;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};

use crate::{Harness, Key, any_schema, echo, manifest};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

async fn go(h: &Harness, method: &str, path: &str, headers: &[(&str, &str)], form: &str) -> Answer {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "console.test");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if method == "POST" {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let (status, headers, bytes) = h
        .exchange(b.body(Body::from(form.to_owned())).expect("request"))
        .await;
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn set_cookies(a: &Answer) -> Vec<String> {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

/// `name=value` of the Set-Cookie for `name`.
fn cookie_pair(a: &Answer, name: &str) -> Option<String> {
    set_cookies(a)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_field(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap_or_default().to_owned()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Signs in with `key`; returns the sign-in answer.
async fn sign_in(h: &Harness, key: &Key) -> Answer {
    let page = go(h, "GET", "/console/sign-in", &[], "").await;
    let pre = cookie_pair(&page, "aifn_sign_in").expect("sign-in cookie");
    let form = format!(
        "csrf={}&api_key={}",
        csrf_field(&page.text),
        enc(&key.secret)
    );
    go(
        h,
        "POST",
        "/console/sign-in",
        &[("cookie", &pre), ("origin", "http://console.test")],
        &form,
    )
    .await
}

/// A signed-in session: its cookie pair and its CSRF token.
async fn session(h: &Harness, key: &Key) -> (String, String) {
    let a = sign_in(h, key).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let cookie = cookie_pair(&a, "aifn_session").expect("session cookie");
    let pending = go(h, "GET", "/console/pending", &[("cookie", &cookie)], "").await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.text);
    (cookie, csrf_field(&pending.text))
}

#[tokio::test]
async fn every_console_answer_has_the_strict_headers() {
    let h = Harness::new();
    for (path, status) in [
        ("/console/sign-in", StatusCode::OK),
        ("/console/pending", StatusCode::SEE_OTHER),
        ("/console/assets/console.js", StatusCode::OK),
        ("/console/audit/not-a-number", StatusCode::SEE_OTHER),
        ("/console/no/such/page", StatusCode::NOT_FOUND),
        ("/console/sign-out", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let a = go(&h, "GET", path, &[], "").await;
        assert_eq!(a.status, status, "{path}");
        assert_eq!(a.headers[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
        assert_eq!(
            a.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{path}"
        );
        assert_eq!(a.headers[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(a.headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
    }
    let page = go(&h, "GET", "/console/sign-in", &[], "").await;
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        !page.text.contains("<script>"),
        "no inline script: {}",
        page.text
    );
    assert!(
        page.text
            .contains(r#"<script src="/console/assets/console.js" defer>"#)
    );
}

#[tokio::test]
async fn sign_in_needs_its_csrf_cookie_and_refuses_agents_and_bad_keys() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let page = go(&h, "GET", "/console/sign-in", &[], "").await;
    let form = format!(
        "csrf={}&api_key={}",
        csrf_field(&page.text),
        enc(&t.approver.secret)
    );
    // The form's token without its cookie: refused, no session.
    let a = go(&h, "POST", "/console/sign-in", &[], &form).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(cookie_pair(&a, "aifn_session"), None);
    // An agent key and a wrong key: no session either.
    let agent = sign_in(&h, &t.agent).await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    assert!(
        agent.text.contains("Agent keys cannot sign in"),
        "{}",
        agent.text
    );
    assert_eq!(cookie_pair(&agent, "aifn_session"), None);
    let wrong = Key {
        id: String::new(),
        secret: "aifn_nope_nope".into(),
    };
    let bad = sign_in(&h, &wrong).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(cookie_pair(&bad, "aifn_session"), None);
    // The approver: a session cookie, HttpOnly, Strict, 8 h, not Secure
    // over plain HTTP; the key is in no cookie.
    let ok = sign_in(&h, &t.approver).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let c = set_cookies(&ok)
        .into_iter()
        .find(|c| c.starts_with("aifn_session="))
        .expect("cookie");
    assert!(
        c.ends_with("; Path=/console; HttpOnly; SameSite=Strict; Max-Age=28800"),
        "{c}"
    );
    assert!(
        set_cookies(&ok)
            .iter()
            .all(|c| !c.contains(&t.approver.secret))
    );
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let config = ServerConfig {
        console: ConsoleConfig {
            session_minutes: 30,
            public_origin: Some("https://console.test".into()),
        },
        ..ServerConfig::default()
    };
    let h = Harness::with(|_| {}, config);
    let t = h.tenant("acme");
    let page = go(&h, "GET", "/console/sign-in", &[], "").await;
    let pre = cookie_pair(&page, "aifn_sign_in").expect("cookie");
    let form = format!(
        "csrf={}&api_key={}",
        csrf_field(&page.text),
        enc(&t.approver.secret)
    );
    // http://console.test is not the public origin.
    let wrong = go(
        &h,
        "POST",
        "/console/sign-in",
        &[("cookie", &pre), ("origin", "http://console.test")],
        &form,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let ok = go(
        &h,
        "POST",
        "/console/sign-in",
        &[("cookie", &pre), ("origin", "https://console.test")],
        &form,
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let c = set_cookies(&ok)
        .into_iter()
        .find(|c| c.starts_with("aifn_session="))
        .expect("cookie");
    assert!(c.ends_with("; Max-Age=1800; Secure"), "{c}");
}

#[tokio::test]
async fn a_decision_needs_the_token_and_the_origin_and_nothing_changes_without() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let v = h
        .upload(&t.author, "echo", &echo(), manifest("echo", any_schema()))
        .await;
    let sha = v["sha256"].as_str().expect("sha").to_owned();
    let (cookie, csrf) = session(&h, &t.approver).await;
    let path = "/console/functions/echo/versions/1/decide";
    let body =
        |token: &str| format!("csrf={token}&action=approve&sha256={sha}&confirm=yes&notes=ok");
    let here = ("origin", "http://console.test");
    for (headers, form) in [
        (vec![("cookie", cookie.as_str()), here], body("")),
        (
            vec![("cookie", cookie.as_str()), here],
            format!("action=approve&sha256={sha}&confirm=yes&notes=ok"),
        ),
        (
            vec![("cookie", cookie.as_str()), here],
            body(&"0".repeat(64)),
        ),
        (
            vec![("cookie", cookie.as_str()), ("origin", "http://evil.test")],
            body(&csrf),
        ),
        (
            vec![
                ("cookie", cookie.as_str()),
                ("origin", "null"),
                ("sec-fetch-site", "cross-site"),
            ],
            body(&csrf),
        ),
        (
            vec![("cookie", cookie.as_str()), ("origin", "null")],
            body(&csrf),
        ),
        (
            vec![("cookie", cookie.as_str()), ("sec-fetch-site", "same-site")],
            body(&csrf),
        ),
        (vec![("cookie", cookie.as_str())], body(&csrf)),
        (
            vec![
                ("cookie", cookie.as_str()),
                ("origin", "null"),
                ("sec-fetch-site", "none"),
            ],
            body(&csrf),
        ),
    ] {
        let a = go(&h, "POST", path, &headers, &form).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{headers:?} {form}: {}",
            a.text
        );
        let (_, now) = h
            .request(
                "GET",
                "/v1/functions/echo/versions/1",
                Some(&t.approver),
                None,
            )
            .await;
        assert_eq!(now["state"], "pending", "{headers:?}");
    }
    // The browser's own form post (Origin: null under no-referrer).
    let a = go(
        &h,
        "POST",
        path,
        &[
            ("cookie", &cookie),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ],
        &body(&csrf),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let (_, now) = h
        .request(
            "GET",
            "/v1/functions/echo/versions/1",
            Some(&t.approver),
            None,
        )
        .await;
    assert_eq!(now["state"], "active");
}

#[tokio::test]
async fn an_author_cannot_approve_through_the_console() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let v = h
        .upload(&t.author, "echo", &echo(), manifest("echo", any_schema()))
        .await;
    let (cookie, csrf) = session(&h, &t.author).await;
    let page = go(
        &h,
        "GET",
        "/console/functions/echo/versions/1",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains(">Approve<"), "{}", page.text);
    let form = format!(
        "csrf={csrf}&action=approve&sha256={}&confirm=yes&notes=mine",
        v["sha256"].as_str().expect("sha")
    );
    let a = go(
        &h,
        "POST",
        "/console/functions/echo/versions/1/decide",
        &[("cookie", &cookie), ("origin", "http://console.test")],
        &form,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.text.contains("approver role"), "{}", a.text);
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions_and_sign_out_ends_one() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let approver2 = h.key("acme", Role::Approver, "second");
    let (cookie, _) = session(&h, &t.approver).await;
    h.revoke_key(&t.approver);
    let a = go(&h, "GET", "/console/pending", &[("cookie", &cookie)], "").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/console/sign-in");
    // Sign-out: the same cookie is no longer a session.
    let (cookie, csrf) = session(&h, &approver2).await;
    let out = go(
        &h,
        "POST",
        "/console/sign-out",
        &[("cookie", &cookie), ("origin", "http://console.test")],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let again = go(&h, "GET", "/console/pending", &[("cookie", &cookie)], "").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn author_text_is_escaped() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let payload = r#"<script>alert(1)</script><img src=x onerror="alert(2)">"#;
    // In the description, a source comment and the approver's notes.
    let source = format!(";; {payload}\n{}", echo());
    let v = h
        .upload_source(&t.author, "echo", &source, manifest(payload, any_schema()))
        .await;
    let body = serde_json::json!({"sha256": v["sha256"], "notes": payload});
    let (status, approved) = h
        .request(
            "POST",
            "/v1/functions/echo/versions/1/approve",
            Some(&t.approver),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let (cookie, _) = session(&h, &t.approver).await;
    let page = go(
        &h,
        "GET",
        "/console/functions/echo/versions/1",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let escaped =
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;";
    assert_eq!(page.text.matches(escaped).count(), 3, "{}", page.text);
    assert!(!page.text.contains("<script>alert"), "{}", page.text);
    assert!(!page.text.contains("<img src=x"), "{}", page.text);
}

#[tokio::test]
async fn an_active_version_is_revoked_and_the_tenant_changed_through_forms() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let v = h
        .upload(&t.author, "echo", &echo(), manifest("echo", any_schema()))
        .await;
    h.approve(&t.approver, &v).await;
    let (cookie, csrf) = session(&h, &t.approver).await;
    let here = ("origin", "http://console.test");
    let page = go(
        &h,
        "GET",
        "/console/functions/echo/versions/1",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert!(page.text.contains(">Revoke<"), "{}", page.text);
    let path = "/console/functions/echo/versions/1/decide";
    let blank = go(
        &h,
        "POST",
        path,
        &[("cookie", &cookie), here],
        &format!("csrf={csrf}&action=revoke&notes=+"),
    )
    .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST, "notes are required");
    let a = go(
        &h,
        "POST",
        path,
        &[("cookie", &cookie), here],
        &format!("csrf={csrf}&action=revoke&notes=leaks"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let (_, now) = h
        .request(
            "GET",
            "/v1/functions/echo/versions/1",
            Some(&t.approver),
            None,
        )
        .await;
    assert_eq!(now["state"], "revoked");
    // The tenant's mode: admins only.
    let form = format!("csrf={csrf}&mode=open&budget=");
    let refused = go(
        &h,
        "POST",
        "/console/tenant",
        &[("cookie", &cookie), here],
        &form,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (admin_cookie, admin_csrf) = session(&h, &t.admin).await;
    let form = format!(
        "csrf={admin_csrf}&mode=open&budget={}",
        enc(r#"{"calls_per_hour": 7}"#)
    );
    let ok = go(
        &h,
        "POST",
        "/console/tenant",
        &[("cookie", &admin_cookie), here],
        &form,
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let (_, tenant) = h.request("GET", "/v1/tenant", Some(&t.admin), None).await;
    assert_eq!(tenant["settings"]["mode"], "open", "{tenant}");
    assert_eq!(
        tenant["settings"]["budget"]["calls_per_hour"], 7,
        "{tenant}"
    );
}

#[tokio::test]
async fn the_audit_page_filters_and_pages() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.upload(&t.author, "echo", &echo(), manifest("echo", any_schema()))
        .await;
    for _ in 0..55 {
        let (s, b) = h
            .request(
                "POST",
                "/v1/functions/echo/versions/1/test",
                Some(&t.approver),
                Some(serde_json::json!({"input": {}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (cookie, _) = session(&h, &t.approver).await;
    let rows = |text: &str| text.matches("<tr><td><a href=\"/console/audit/").count();
    let first = go(
        &h,
        "GET",
        "/console/audit?function=echo&outcome=ok",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(rows(&first.text), 50, "{}", first.text);
    let at = first.text.find("rel=\"next\"").expect("a next link");
    let href = first.text[..at]
        .rsplit("href=\"")
        .next()
        .expect("href")
        .split('"')
        .next()
        .expect("end")
        .replace("&amp;", "&");
    assert!(
        href.contains("outcome=ok") && href.contains("before="),
        "{href}"
    );
    let second = go(&h, "GET", &href, &[("cookie", &cookie)], "").await;
    assert_eq!(rows(&second.text), 5, "{}", second.text);
    assert!(!second.text.contains("rel=\"next\""));
    let none = go(
        &h,
        "GET",
        "/console/audit?function=echo&outcome=timeout",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert!(none.text.contains("No records match."), "{}", none.text);
    let bad = go(
        &h,
        "GET",
        "/console/audit?since=yesterday",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
