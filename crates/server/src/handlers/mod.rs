//! The handlers: each extracts its caller first, then its parameters,
//! runs one service use case on a blocking thread, and answers a typed
//! body.

mod functions;
mod invoke;
mod queries;

use aifn_service::Status;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

pub(crate) use functions::{
    Action, decide, get_function, get_version, list_functions, pending, upload,
};
pub(crate) use invoke::invoke;
pub(crate) use queries::{audit, tools};

pub(crate) async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
    })
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    state.service.ready()?;
    Ok(Json(Status {
        status: "ready".into(),
    }))
}

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.service.metrics_text(),
    )
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(crate::openapi())
}
