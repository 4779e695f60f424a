//! The approval tools: test runs of any version, complete diffs, the
//! module and source a version runs, replays of captured executions, and
//! evidence bundles. The service checks the roles; routes with a query
//! string check them first, then parse it.

use aifn_service::{Bundle, BundleRequest, DiffReport, InvokeReply, ReplayReport, TestRunRequest};
use aifn_types::{Source, Timestamp};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::invoke::{answer, check_user_id};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, query, version};
use crate::{AppState, blocking};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub(crate) struct TestRunBody {
    input: Value,
    /// The user the run acts for (default: the caller's subject).
    #[serde(default)]
    user_id: Option<String>,
}

/// `POST .../versions/{version}/test`: a test run, answered as an
/// invocation is (200 with the output, 422 with what the run used, or a
/// refusal), and recorded as a test run, never as an agent's execution.
pub(crate) async fn test_run(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((name, v)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<TestRunBody>,
) -> Result<Json<InvokeReply>, ApiError> {
    let v = version(&v)?;
    if let Some(u) = &body.user_id {
        check_user_id(u)?;
    }
    let s = state.service;
    let request = TestRunRequest {
        input: body.input,
        user_id: body.user_id,
    };
    let outcome = blocking(move || {
        s.test_run(&who, (&name, v), request)
            .map_err(|r| ApiError::with_execution(r.error, r.execution_id))
    })
    .await?;
    answer(outcome)
}

/// `GET .../diff?against=N`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffParams {
    against: Option<u32>,
}

pub(crate) async fn diff(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((name, v)): PathParams<(String, String)>,
    uri: Uri,
) -> Result<Json<DiffReport>, ApiError> {
    let v = version(&v)?;
    let DiffParams { against } = query(&uri)?;
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.diff(&who, (&name, v), against)?)).await?,
    ))
}

/// `GET .../module`: the module bytes, `application/wasm`.
pub(crate) async fn module(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((name, v)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let v = version(&v)?;
    let s = state.service;
    let (name, bytes) = blocking(move || {
        let bytes = s.module(&who, (&name, v))?;
        Ok((name, bytes))
    })
    .await?;
    // The name was found, so it is a function name: safe in a header.
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}-{v}.wasm\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/wasm"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// `GET .../source`: the source the version was uploaded as.
pub(crate) async fn source(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((name, v)): PathParams<(String, String)>,
) -> Result<Json<Source>, ApiError> {
    let v = version(&v)?;
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.source(&who, (&name, v))?)).await?,
    ))
}

/// `POST /v1/executions/{id}/replay` (no body).
pub(crate) async fn replay(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<ReplayReport>, ApiError> {
    let s = state.service;
    Ok(Json(blocking(move || Ok(s.replay(&who, &id)?)).await?))
}

/// `GET /v1/audit/bundle`: what to bundle. `module=true` adds the module
/// bytes (`include_module` is the same parameter, as the request type
/// names it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleParams {
    execution: Option<String>,
    function: Option<String>,
    version: Option<u32>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    #[serde(alias = "include_module")]
    module: Option<bool>,
}

pub(crate) async fn bundle(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    // Bundles are for the audit log's readers: the role before the query.
    state.service.authorize_audit(&who)?;
    let p: BundleParams = query(&uri)?;
    let request = BundleRequest {
        execution: p.execution,
        function: p.function,
        version: p.version,
        since: p.since,
        until: p.until,
        include_module: p.module.unwrap_or(false),
    };
    let s = state.service;
    let bundle: Bundle = blocking(move || Ok(s.bundle(&who, request)?)).await?;
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"aifn-evidence-bundle.json\""),
        )],
        Json(bundle),
    )
        .into_response())
}
