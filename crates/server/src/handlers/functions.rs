//! Functions and versions: list, read, upload (a module or a source),
//! decide.

use aifn_service::{
    Decision, FunctionDetail, FunctionList, UploadRequest, VersionInfo, VersionList,
};
use aifn_types::{Manifest, Role, Source};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, version};
use crate::{AppState, blocking};

pub(crate) async fn list_functions(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<FunctionList>, ApiError> {
    let s = state.service;
    let functions = blocking(move || Ok(s.list_functions(&who)?)).await?;
    Ok(Json(FunctionList { functions }))
}

pub(crate) async fn pending(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<VersionList>, ApiError> {
    let s = state.service;
    let versions = blocking(move || Ok(s.list_pending(&who)?)).await?;
    Ok(Json(VersionList { versions }))
}

pub(crate) async fn get_function(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<FunctionDetail>, ApiError> {
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.get_function(&who, &name)?)).await?,
    ))
}

pub(crate) async fn get_version(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((name, v)): PathParams<(String, String)>,
) -> Result<Json<VersionInfo>, ApiError> {
    let v = version(&v)?;
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.get_version(&who, &name, v)?)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub(crate) struct UploadBody {
    manifest: Manifest,
    /// The module, base64 (standard alphabet, padded); or else `source`.
    #[serde(default)]
    module: Option<String>,
    /// The source to build the module from (the service checks that
    /// exactly one of the two is given).
    #[serde(default)]
    source: Option<Source>,
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<UploadBody>,
) -> Result<(StatusCode, Json<VersionInfo>), ApiError> {
    let module = match body.module {
        Some(m) => base64::engine::general_purpose::STANDARD
            .decode(m.as_bytes())
            .map_err(|e| ApiError::invalid(format!("module is not valid base64: {e}")))?,
        None => Vec::new(),
    };
    let s = state.service;
    let request = UploadRequest {
        name,
        manifest: body.manifest,
        module,
        source: body.source,
    };
    let info = blocking(move || Ok(s.upload(&who, request)?)).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub(crate) struct DecisionBody {
    /// Required to approve or reject: the hash the approver inspected.
    #[serde(default)]
    sha256: Option<String>,
    notes: String,
    /// Approve only: approve although a manifest test failed at upload
    /// (the notes say why; the override is recorded).
    #[serde(default)]
    override_failing_tests: bool,
}

/// The decision routes: one handler, three fixed routes.
#[derive(Clone, Copy)]
pub(crate) enum Action {
    Approve,
    Reject,
    Revoke,
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams((name, v)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<DecisionBody>,
    action: Action,
) -> Result<Json<VersionInfo>, ApiError> {
    let v = version(&v)?;
    let s = state.service;
    let info = blocking(move || {
        let sha256 = || {
            body.sha256
                .as_deref()
                .ok_or_else(|| ApiError::invalid("sha256 of the inspected version is required"))
        };
        // After the role (the service refuses and records anyone else).
        if body.override_failing_tests
            && !matches!(action, Action::Approve)
            && who.role == Role::Approver
        {
            return Err(ApiError::invalid(
                "override_failing_tests applies to approve only",
            ));
        }
        let decision = match action {
            Action::Approve if body.override_failing_tests => {
                Decision::ApproveOverridingTests { sha256: sha256()? }
            }
            Action::Approve => Decision::Approve { sha256: sha256()? },
            Action::Reject => Decision::Reject { sha256: sha256()? },
            Action::Revoke => Decision::Revoke,
        };
        Ok(s.decide(&who, (&name, v), decision, &body.notes)?)
    })
    .await?;
    Ok(Json(info))
}
