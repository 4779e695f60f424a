//! CORS: no browser origin is allowed unless configured, and then only
//! the configured ones.

use aifn_server::ServerConfig;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::{Harness, Reply};

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

async fn from_origin(
    h: &Harness,
    method: &str,
    path: &str,
    origin: &str,
    key: Option<&crate::Key>,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::ORIGIN, origin);
    if let Some(k) = key {
        b = b.header(header::AUTHORIZATION, format!("Bearer {}", k.secret));
    }
    h.send(b.body(Body::empty()).expect("request")).await
}

async fn preflight(h: &Harness, path: &str, origin: &str) -> Reply {
    let req = Request::builder()
        .method("OPTIONS")
        .uri(path)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type",
        )
        .body(Body::empty())
        .expect("request");
    h.send(req).await
}

fn allowed_origin(r: &Reply) -> Option<&str> {
    r.headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().expect("ascii"))
}

#[tokio::test]
async fn by_default_no_origin_is_allowed() {
    let h = Harness::new();
    let t = h.tenant("acme");
    for origin in [APP, EVIL, "null"] {
        for (path, key, status) in [
            ("/healthz", None, StatusCode::OK),
            ("/v1/functions", Some(&t.admin), StatusCode::OK),
            ("/v1/functions", None, StatusCode::UNAUTHORIZED),
            ("/nope", None, StatusCode::NOT_FOUND),
        ] {
            let r = from_origin(&h, "GET", path, origin, key).await;
            assert_eq!(r.status, status, "{path}");
            assert_eq!(allowed_origin(&r), None, "{origin} {path}");
            assert!(
                !r.headers
                    .contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            );
        }
        let r = preflight(&h, "/v1/functions/echo/invoke", origin).await;
        assert!(!r.status.is_success(), "preflight answered {}", r.status);
        assert_eq!(allowed_origin(&r), None, "{origin} preflight");
        assert!(!r.headers.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS));
    }
}

#[tokio::test]
async fn a_configured_origin_is_allowed_and_no_other() {
    let h = Harness::with(
        |_| {},
        ServerConfig {
            cors_origins: vec![APP.to_owned()],
            ..ServerConfig::default()
        },
    );
    let t = h.tenant("acme");
    for (path, key, status) in [
        ("/healthz", None, StatusCode::OK),
        ("/v1/functions", Some(&t.admin), StatusCode::OK),
        ("/v1/functions", None, StatusCode::UNAUTHORIZED),
    ] {
        let r = from_origin(&h, "GET", path, APP, key).await;
        assert_eq!(
            (r.status, allowed_origin(&r)),
            (status, Some(APP)),
            "{path}"
        );
        let r = from_origin(&h, "GET", path, EVIL, key).await;
        assert_eq!((r.status, allowed_origin(&r)), (status, None), "{path}");
    }
    let r = preflight(&h, "/v1/functions/echo/invoke", APP).await;
    assert_eq!((r.status, allowed_origin(&r)), (StatusCode::OK, Some(APP)));
    let methods = r.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .expect("ascii")
        .to_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = r.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    let r = preflight(&h, "/v1/functions/echo/invoke", EVIL).await;
    assert_eq!(allowed_origin(&r), None);
    // A look-alike origin is not the configured one.
    let r = from_origin(
        &h,
        "GET",
        "/healthz",
        "https://app.example.evil.example",
        None,
    )
    .await;
    assert_eq!(allowed_origin(&r), None);
}
