//! Request extractors whose rejections are the one error body: JSON
//! bodies (with the route's size limit in the message), path parameters,
//! and query strings parsed into derived structs.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// JSON bodies other than uploads and invocations.
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// The body size limits of the routes, from the host's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// An upload is base64 (4/3) of the module, or a source (JSON-escaped,
    /// room for twice its cap), plus a manifest.
    pub(crate) upload: usize,
    /// An invocation (or a test run) is its input plus a little.
    pub(crate) invoke: usize,
}

impl BodyLimits {
    pub(crate) fn new(limits: &aifn_types::Limits) -> BodyLimits {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        BodyLimits {
            upload: size(
                (limits.module_bytes / 3 * 4).max(2 * aifn_types::Source::MAX_BYTES as u64)
                    + (1 << 20),
            ),
            invoke: size(limits.input_bytes + SMALL_BODY as u64),
        }
    }

    /// The limit that applies to `route` (a route template).
    pub(crate) fn for_route(&self, route: &str) -> usize {
        if route == "/v1/functions/{name}/versions" {
            self.upload
        } else if route == "/v1/functions/{name}/invoke"
            || route == "/v1/functions/{name}/versions/{version}/test"
        {
            self.invoke
        } else {
            SMALL_BODY
        }
    }
}

/// A JSON body, parsed into `T`.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from(aifn_service::ServiceError::PayloadTooLarge {
                    message: format!(
                        "the request body is over this route's limit of {} bytes",
                        state.body_limits.for_route(&route)
                    ),
                })
            } else {
                ApiError::invalid(format!("cannot read the request body: {r}"))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
    }
}

/// Path parameters; one that does not decode (`%88`, not UTF-8) is the
/// one error body (found by fuzz/http_request).
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| PathParams(v))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// Parses a query string into `T`. Handlers call it after the role check,
/// so that a caller without the role gets 403 whatever its parameters.
///
/// The field path is named only when it is a plain parameter name: axum's
/// own message prefixes any path, so `?:=x` read `:: unknown field` (found
/// by fuzz/http_request).
pub(crate) fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    let q = uri.query().unwrap_or_default();
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let plain =
            !path.is_empty() && path.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let inner = e.into_inner();
        ApiError::invalid(if plain {
            format!("invalid query string: {path}: {inner}")
        } else {
            format!("invalid query string: {inner}")
        })
    })
}

/// A version number in a path: from 1; anything else names no version.
pub(crate) fn version(v: &str) -> Result<u32, ApiError> {
    v.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
        aifn_service::ServiceError::NotFound {
            what: format!("version {v}"),
        }
        .into()
    })
}
