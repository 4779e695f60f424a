//! Routes and handlers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use aifn_service::{
    AuditQuery, AuditStream, InvokeRequest, Principal, ServiceError, ToolFormat, UploadRequest,
};
use aifn_types::{Manifest, OutcomeKind};
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceBuilder;

use crate::{ApiError, AppState, blocking};

/// Every route: method and path. The OpenAPI document lists exactly these
/// (tested).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/functions"),
    ("GET", "/v1/functions/{name}"),
    ("POST", "/v1/functions/{name}/versions"),
    ("GET", "/v1/functions/{name}/versions/{version}"),
    ("POST", "/v1/functions/{name}/versions/{version}/approve"),
    ("POST", "/v1/functions/{name}/versions/{version}/reject"),
    ("POST", "/v1/functions/{name}/versions/{version}/revoke"),
    ("POST", "/v1/functions/{name}/invoke"),
    ("GET", "/v1/pending"),
    ("GET", "/v1/tools"),
    ("GET", "/v1/audit"),
];

/// JSON bodies other than uploads.
const SMALL_BODY: usize = 64 * 1024;

pub(crate) fn router(state: AppState) -> Router {
    let limits = state.service.config().limits;
    // An upload is base64 (4/3) plus a manifest; an invocation is its input.
    let upload_body =
        usize::try_from(limits.module_bytes / 3 * 4 + (1 << 20)).unwrap_or(usize::MAX);
    let invoke_body = usize::try_from(limits.input_bytes + SMALL_BODY as u64).unwrap_or(usize::MAX);
    let max_requests = state.config.max_requests.max(1);
    let cors = cors_layer(&state.config.cors_origins);
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/functions", get(list_functions))
        .route("/v1/functions/{name}", get(get_function))
        .route(
            "/v1/functions/{name}/versions",
            post(upload).layer(DefaultBodyLimit::max(upload_body)),
        )
        .route("/v1/functions/{name}/versions/{version}", get(get_version))
        .route(
            "/v1/functions/{name}/versions/{version}/approve",
            post(|s, r, p, h, b| decide(s, r, p, h, b, Action::Approve)),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/reject",
            post(|s, r, p, h, b| decide(s, r, p, h, b, Action::Reject)),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/revoke",
            post(|s, r, p, h, b| decide(s, r, p, h, b, Action::Revoke)),
        )
        .route(
            "/v1/functions/{name}/invoke",
            post(invoke).layer(DefaultBodyLimit::max(invoke_body)),
        )
        .route("/v1/pending", get(pending))
        .route("/v1/tools", get(tools))
        .route("/v1/audit", get(audit))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .layer(middleware::from_fn(json_method_not_allowed))
        .layer(
            ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: BoxError| async {
                        ApiError::from(ServiceError::Unavailable {
                            message: "the server is at capacity; retry shortly".into(),
                        })
                    },
                ))
                .load_shed()
                .concurrency_limit(max_requests),
        )
        .layer(middleware::from_fn(log_request));
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app.with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(list)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

/// One structured log line per request: never keys, never bodies.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(%method, route = route.as_deref().unwrap_or("(unmatched)"), status, ms, "request");
    response
}

/// axum answers a wrong method with an empty 405; give it the one body.
async fn json_method_not_allowed(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        let mut r = (
            StatusCode::METHOD_NOT_ALLOWED,
            Json(json!({"error": {"kind": "invalid_request", "message": "method not allowed on this route"}})),
        )
            .into_response();
        if let Some(a) = allow {
            r.headers_mut().insert(header::ALLOW, a);
        }
        return r;
    }
    response
}

async fn not_found() -> ApiError {
    ServiceError::NotFound {
        what: "route".into(),
    }
    .into()
}

/// The caller, from `Authorization: Bearer KEY` only.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    route: &str,
    remote: Option<SocketAddr>,
) -> Result<Principal, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
    let service = state.service.clone();
    let route = route.to_owned();
    blocking(move || {
        Ok(service.authenticate(
            authorization.as_deref(),
            &route,
            remote.map(|a| a.to_string()).as_deref(),
        )?)
    })
    .await
}

/// The peer address, when served over a socket.
struct Remote(Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Remote {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Remote(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

fn body_json<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(ServiceError::PayloadTooLarge {
                message: "request body over the size limit".into(),
            })
        } else {
            ApiError::invalid(format!("cannot read the request body: {r}"))
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::invalid(format!(
            "invalid JSON body: {}",
            without_type_names(&e.to_string())
        ))
    })
}

/// serde names the Rust type it expected (`expected struct InvokeBody`);
/// the caller sent JSON, so say `a JSON object` and keep our types private.
fn without_type_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("struct ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "struct ".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        out.push_str("a JSON object");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn parse_version(v: &str) -> Result<u32, ApiError> {
    v.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ServiceError::NotFound {
            what: format!("version {v}"),
        }
        .into()
    })
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.service.ready() {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(why) => ApiError::from(ServiceError::Unavailable { message: why }).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.service.metrics_text(),
    )
        .into_response()
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi())
}

async fn list_functions(
    State(state): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, "/v1/functions", remote).await?;
    let s = state.service.clone();
    let list = blocking(move || Ok(s.list_functions(&who)?)).await?;
    Ok(Json(json!({"functions": list})))
}

async fn pending(
    State(state): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, "/v1/pending", remote).await?;
    let s = state.service.clone();
    let list = blocking(move || Ok(s.list_pending(&who)?)).await?;
    Ok(Json(json!({"versions": list})))
}

async fn get_function(
    State(state): State<AppState>,
    Remote(remote): Remote,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, "/v1/functions/{name}", remote).await?;
    let Path(name) = path.map_err(path_rejected)?;
    let s = state.service.clone();
    let detail = blocking(move || Ok(s.get_function(&who, &name)?)).await?;
    Ok(Json(serde_json::to_value(detail).unwrap_or_default()))
}

async fn get_version(
    State(state): State<AppState>,
    Remote(remote): Remote,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(
        &state,
        &headers,
        "/v1/functions/{name}/versions/{version}",
        remote,
    )
    .await?;
    let Path((name, version)) = path.map_err(path_rejected)?;
    let version = parse_version(&version)?;
    let s = state.service.clone();
    let info = blocking(move || Ok(s.get_version(&who, &name, version)?)).await?;
    Ok(Json(serde_json::to_value(info).unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    manifest: Manifest,
    /// The module, base64 (standard alphabet, padded).
    module: String,
}

async fn upload(
    State(state): State<AppState>,
    Remote(remote): Remote,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let who = caller(&state, &headers, "/v1/functions/{name}/versions", remote).await?;
    let Path(name) = path.map_err(path_rejected)?;
    let body: UploadBody = body_json(body)?;
    let module = base64::engine::general_purpose::STANDARD
        .decode(body.module.as_bytes())
        .map_err(|e| ApiError::invalid(format!("module is not valid base64: {e}")))?;
    let s = state.service.clone();
    let info = blocking(move || {
        Ok(s.upload(
            &who,
            UploadRequest {
                name,
                manifest: body.manifest,
                module,
            },
        )?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(info).unwrap_or_default()),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// Required to approve or reject: the hash the approver inspected.
    #[serde(default)]
    sha256: Option<String>,
    notes: String,
}

/// The decision routes: one handler, three fixed routes.
#[derive(Clone, Copy)]
enum Action {
    Approve,
    Reject,
    Revoke,
}

async fn decide(
    State(state): State<AppState>,
    Remote(remote): Remote,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    action: Action,
) -> Result<Json<Value>, ApiError> {
    let route = match action {
        Action::Approve => "/v1/functions/{name}/versions/{version}/approve",
        Action::Reject => "/v1/functions/{name}/versions/{version}/reject",
        Action::Revoke => "/v1/functions/{name}/versions/{version}/revoke",
    };
    let who = caller(&state, &headers, route, remote).await?;
    let Path((name, version)) = path.map_err(path_rejected)?;
    let version = parse_version(&version)?;
    let body: DecisionBody = body_json(body)?;
    let s = state.service.clone();
    let info = blocking(move || {
        let sha = || {
            body.sha256
                .clone()
                .ok_or_else(|| ApiError::invalid("sha256 of the inspected version is required"))
        };
        Ok(match action {
            Action::Approve => s.approve(&who, &name, version, &sha()?, &body.notes)?,
            Action::Reject => s.reject(&who, &name, version, &sha()?, &body.notes)?,
            Action::Revoke => s.revoke(&who, &name, version, &body.notes)?,
        })
    })
    .await?;
    Ok(Json(serde_json::to_value(info).unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    input: Value,
    #[serde(default)]
    user_id: String,
}

async fn invoke(
    State(state): State<AppState>,
    Remote(remote): Remote,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, "/v1/functions/{name}/invoke", remote).await?;
    let Path(name) = path.map_err(path_rejected)?;
    let body: InvokeBody = body_json(body)?;
    if body.user_id.len() > 256 {
        return Err(ApiError::invalid("user_id is longer than 256 bytes"));
    }
    let s = state.service.clone();
    let request = InvokeRequest {
        function: name,
        input: body.input,
        user_id: body.user_id,
    };
    // The call runs on a blocking thread; the answer waits, without
    // holding that thread, until its audit record is durable.
    let ticket = blocking(move || Ok(s.start_invoke(&who, request))).await?;
    let outcome = ticket
        .await
        .map_err(|r| ApiError::with_execution(r.error, r.execution_id))?;
    let stats = json!({
        "execution_id": outcome.execution_id,
        "version": outcome.version,
        "fuel_used": outcome.fuel_used,
        "duration_ms": outcome.duration_ms,
    });
    if outcome.kind == OutcomeKind::Ok {
        let mut v = stats;
        v["output"] = outcome.output.unwrap_or(Value::Null);
        return Ok(Json(v));
    }
    let error = ServiceError::Failed {
        kind: outcome.kind,
        message: outcome.message.unwrap_or_default(),
    };
    Err(ApiError::with_execution(error, Some(outcome.execution_id.clone())).with_extra(stats))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsQuery {
    #[serde(default)]
    format: Option<String>,
}

async fn tools(
    State(state): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
    query: Result<Query<ToolsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, "/v1/tools", remote).await?;
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let format = match q.format.as_deref() {
        None | Some("openai") => ToolFormat::OpenAi,
        Some("anthropic") => ToolFormat::Anthropic,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown tool format {other:?}: use openai or anthropic"
            )));
        }
    };
    let s = state.service.clone();
    let tools = blocking(move || Ok(s.tools(&who, format)?)).await?;
    Ok(Json(json!({"tools": tools})))
}

/// A path parameter axum could not decode (e.g. `%88`, not UTF-8), as
/// the one error body; found by fuzz/http_request.
fn path_rejected(e: PathRejection) -> ApiError {
    ApiError::invalid(e.body_text())
}

fn parse_time(name: &str, v: &str) -> Result<SystemTime, ApiError> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| ApiError::invalid(format!("{name} must be an RFC 3339 time: {e}")))
}

/// Builds the audit query; the tenant is never a parameter.
pub(crate) fn audit_query(params: &HashMap<String, String>) -> Result<AuditQuery, ApiError> {
    let mut q = AuditQuery::default();
    for (k, v) in params {
        match k.as_str() {
            "function" => q.function = Some(v.clone()),
            "agent_id" => q.agent_id = Some(v.clone()),
            "user_id" => q.user_id = Some(v.clone()),
            "outcome" => {
                q.outcome = Some(
                    v.parse()
                        .map_err(|e: aifn_types::UnknownKind| ApiError::invalid(e.to_string()))?,
                )
            }
            "stream" => {
                q.stream = Some(match v.as_str() {
                    "execution" => AuditStream::Execution,
                    "registry" => AuditStream::Registry,
                    _ => return Err(ApiError::invalid("stream must be execution or registry")),
                })
            }
            "since" => q.since = Some(parse_time(k, v)?),
            "until" => q.until = Some(parse_time(k, v)?),
            "before_seq" => {
                q.before_seq = Some(
                    v.parse()
                        .map_err(|_| ApiError::invalid("before_seq must be a number"))?,
                )
            }
            "limit" => {
                q.limit = Some(
                    v.parse()
                        .map_err(|_| ApiError::invalid("limit must be a number"))?,
                )
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter {other:?}"
                )));
            }
        }
    }
    Ok(q)
}

async fn audit(
    State(state): State<AppState>,
    Remote(remote): Remote,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&state, &headers, "/v1/audit", remote).await?;
    let Query(params) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let q = audit_query(&params)?;
    let s = state.service.clone();
    let page = blocking(move || Ok(s.audit(&who, q)?)).await?;
    Ok(Json(serde_json::to_value(page).unwrap_or_default()))
}
