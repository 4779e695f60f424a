//! Agent policies and usage: list the tenant's agents, read, set and
//! delete one agent's policy, read its budget usage. The service checks the
//! roles (admins change; approvers and authors read; agents get 403).

use aifn_service::{AgentList, PolicyInfo, Usage};
use aifn_types::{AgentPolicy, Role, Subject};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::{AppState, blocking};

/// The `{subject}` of a path. Agents are refused before the subject is
/// looked at, so a bad path tells them nothing more than a good one.
fn subject(who: &aifn_service::Principal, raw: &str) -> Result<Subject, ApiError> {
    if who.role == Role::Agent {
        return Err(aifn_service::ServiceError::Forbidden {
            reason: "agents cannot read or change policies".into(),
        }
        .into());
    }
    Subject::new(raw).map_err(|e| ApiError::invalid(format!("subject {raw:?}: {e}")))
}

pub(crate) async fn list_agents(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<AgentList>, ApiError> {
    let s = state.service;
    let agents = blocking(move || Ok(s.agents(&who)?)).await?;
    Ok(Json(AgentList { agents }))
}

pub(crate) async fn get_policy(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
) -> Result<Json<PolicyInfo>, ApiError> {
    let agent = subject(&who, &raw)?;
    let s = state.service;
    Ok(Json(blocking(move || Ok(s.policy(&who, &agent)?)).await?))
}

pub(crate) async fn put_policy(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
    JsonBody(policy): JsonBody<AgentPolicy>,
) -> Result<Json<PolicyInfo>, ApiError> {
    let agent = subject(&who, &raw)?;
    let s = state.service;
    Ok(Json(
        blocking(move || Ok(s.set_policy(&who, &agent, policy)?)).await?,
    ))
}

pub(crate) async fn delete_policy(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let agent = subject(&who, &raw)?;
    let s = state.service;
    blocking(move || Ok(s.delete_policy(&who, &agent)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn usage(
    State(state): State<AppState>,
    Caller(who): Caller,
    PathParams(raw): PathParams<String>,
) -> Result<Json<Usage>, ApiError> {
    let agent = subject(&who, &raw)?;
    let s = state.service;
    Ok(Json(blocking(move || Ok(s.usage(&who, &agent)?)).await?))
}
