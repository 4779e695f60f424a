//! Who may drive `/mcp`: a page of an allowed origin (or no page at all),
//! with an agent's bearer key. A missing or bad key answers 401 with
//! `WWW-Authenticate` pointing to the Protected Resource Metadata document
//! (RFC 9728), which is served here too.

use aifn_service::ServiceError;
use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::caller::Caller;
use crate::error::ApiError;

/// Where the metadata document is (RFC 9728 section 3; `/mcp` appended is
/// served too, as the RFC's path-suffixed form for the `/mcp` resource).
pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The scheme and authority this request reached, as `scheme://host`:
/// `https` when a proxy in front says so (`X-Forwarded-Proto`).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// Whether a browser's `Origin` may drive `/mcp`: this server's own origin
/// or one of `[server] cors_origins`. No header (not a browser) passes.
fn origin_allowed(headers: &HeaderMap, cors_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/');
    origin.eq_ignore_ascii_case(&base_url(headers))
        || cors_origins
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Origin, then key, then role; the principal goes on the request for the
/// handler. Failed attempts are recorded by `authenticate`, as on every
/// route.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if !origin_allowed(&parts.headers, &state.config.cors_origins) {
        return ApiError::from(ServiceError::Forbidden {
            reason: "this origin may not call /mcp".into(),
        })
        .into_response();
    }
    let who = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(Caller(who)) => who,
        Err(e) => return challenge(&parts, e.into_response()),
    };
    if let Err(e) = state.service.authorize_tools(&who) {
        return ApiError::from(e).into_response();
    }
    parts.extensions.insert(who);
    next.run(Request::from_parts(parts, body)).await
}

/// A 401 names the metadata document, so a client learns how to get in.
fn challenge(parts: &Parts, mut response: Response) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED {
        let value = format!(
            "Bearer resource_metadata=\"{}{METADATA_PATH}\"",
            base_url(&parts.headers)
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// The Protected Resource Metadata document. `authorization_servers` is
/// empty: aifn issues no tokens over OAuth; its keys come from
/// `aifn keys create` and are sent as `Authorization: Bearer`.
pub(crate) async fn metadata(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    Json(json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "resource_name": "aifn",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn origins_own_configured_or_none() {
        let cors = vec!["https://app.example".to_owned()];
        let host = ("host", "aifn.local:8080");
        assert!(origin_allowed(&headers(&[host]), &cors));
        assert!(origin_allowed(
            &headers(&[host, ("origin", "http://aifn.local:8080")]),
            &cors
        ));
        assert!(origin_allowed(
            &headers(&[host, ("origin", "https://app.example")]),
            &cors
        ));
        assert!(!origin_allowed(
            &headers(&[host, ("origin", "https://evil.example")]),
            &cors
        ));
        assert!(!origin_allowed(
            &headers(&[host, ("origin", "http://aifn.local:9090")]),
            &cors
        ));
        assert!(!origin_allowed(&headers(&[host, ("origin", "null")]), &[]));
    }

    #[test]
    fn base_url_follows_the_proxy() {
        assert_eq!(base_url(&headers(&[("host", "a:1")])), "http://a:1");
        assert_eq!(
            base_url(&headers(&[("host", "a"), ("x-forwarded-proto", "https")])),
            "https://a"
        );
    }
}
