//! The tenant's settings: read them (any role but agent), change the mode,
//! the budget and the output guard (admin). Every change answers the
//! settings after it.

use aifn_service::{TenantInfo, TenantModeBody};
use aifn_types::{Budget, GuardSettings};
use axum::Json;
use axum::extract::State;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::{AppState, blocking};

pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<TenantInfo>, ApiError> {
    let s = state.service;
    Ok(Json(blocking(move || Ok(s.tenant(&who)?)).await?))
}

pub(crate) async fn put_mode(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<TenantModeBody>,
) -> Result<Json<TenantInfo>, ApiError> {
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.set_tenant_mode(&who, body.mode)?)).await?,
    ))
}

pub(crate) async fn put_budget(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(budget): JsonBody<Budget>,
) -> Result<Json<TenantInfo>, ApiError> {
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.set_tenant_budget(&who, budget)?)).await?,
    ))
}

pub(crate) async fn put_output_guard(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(guard): JsonBody<GuardSettings>,
) -> Result<Json<TenantInfo>, ApiError> {
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.set_output_guard(&who, guard)?)).await?,
    ))
}
