//! The handlers: each extracts its caller first, then its parameters,
//! runs one service use case on a blocking thread, and answers a typed
//! body.

mod agents;
mod approval;
mod functions;
mod invoke;
mod queries;
mod tenant;

use aifn_service::{Readiness, Status};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

pub(crate) use agents::{delete_policy, get_policy, list_agents, put_policy, usage};
pub(crate) use approval::{bundle, diff, module, replay, source, test_run};
pub(crate) use functions::{
    Action, decide, get_function, get_version, list_functions, pending, upload,
};
pub(crate) use invoke::{check_user_id, invoke};
pub(crate) use queries::{audit, tools};
pub(crate) use tenant::{get_tenant, put_budget, put_mode, put_output_guard};

pub(crate) async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
    })
}

/// Ready when the audit log can write; lists the tenants in `open` mode so
/// that a development setting left on in production is seen.
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let s = state.service;
    let open_tenants = crate::blocking(move || {
        s.ready()?;
        Ok(s.open_tenants()?)
    })
    .await?;
    Ok(Json(Readiness {
        status: "ready".into(),
        open_tenants,
    }))
}

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.service.metrics_text() + &state.connections.metrics_text(),
    )
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(crate::openapi())
}
