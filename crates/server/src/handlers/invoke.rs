//! Invocation: the call runs on a blocking thread; the answer waits until
//! its audit record is durable (on that thread only when it leads the
//! commit, else without holding it). The answer's shape is shared with
//! test runs.

use aifn_service::{InvokeOutcome, InvokeReply, InvokeRequest, ServiceError};
use aifn_types::OutcomeKind;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Presented;
use crate::error::{ApiError, RunStats};
use crate::extract::{JsonBody, PathParams};
use crate::{AppState, blocking};

/// The longest `user_id` an agent may name.
const MAX_USER_ID: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub(crate) struct InvokeBody {
    input: Value,
    #[serde(default)]
    user_id: String,
}

pub(crate) async fn invoke(
    State(state): State<AppState>,
    presented: Presented,
    name: Result<PathParams<String>, ApiError>,
    body: Result<JsonBody<InvokeBody>, ApiError>,
) -> Result<Json<InvokeReply>, ApiError> {
    let s = state.service;
    // One blocking hop for the key and the call. The key is checked
    // first, so a request without a valid one learns nothing else.
    let ticket = blocking(move || {
        let who = presented.authenticate(&s)?;
        let (PathParams(name), JsonBody(body)) = (name?, body?);
        check_user_id(&body.user_id)?;
        let request = InvokeRequest {
            function: name,
            input: body.input,
            user_id: body.user_id,
            traceparent: None,
            cancel: None,
        };
        Ok(s.start_invoke(&who, request))
    })
    .await?;
    let outcome = ticket
        .await
        .map_err(|r| ApiError::with_execution(r.error, r.execution_id))?;
    answer(outcome)
}

/// Refuses a `user_id` longer than an agent may name.
pub(crate) fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    if user_id.len() > MAX_USER_ID {
        return Err(ApiError::invalid(format!(
            "user_id is longer than {MAX_USER_ID} bytes"
        )));
    }
    Ok(())
}

/// The answer to a call that ran: 200 with the output, or the failure
/// with what the call used (invocations and test runs alike).
pub(crate) fn answer(outcome: InvokeOutcome) -> Result<Json<InvokeReply>, ApiError> {
    if outcome.kind == OutcomeKind::Ok {
        return Ok(Json(InvokeReply {
            execution_id: outcome.execution_id,
            version: outcome.version,
            fuel_used: outcome.fuel_used,
            duration_ms: outcome.duration_ms,
            output: outcome.output.unwrap_or(Value::Null),
        }));
    }
    let error = ServiceError::Failed {
        kind: outcome.kind,
        message: outcome.message.unwrap_or_default(),
    };
    Err(ApiError::failed(
        error,
        RunStats {
            execution_id: outcome.execution_id,
            version: outcome.version,
            fuel_used: outcome.fuel_used,
            duration_ms: outcome.duration_ms,
        },
    ))
}
