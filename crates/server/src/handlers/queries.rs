//! The routes with query parameters: the tool catalog and the audit log.
//! Parameters are derived structs with enums, parsed after the role check.

use aifn_service::{AuditPage, AuditQuery, AuditStream, ToolFormat, ToolList};
use aifn_types::{OutcomeKind, Timestamp};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::Deserialize;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::extract::query;
use crate::{AppState, blocking};

/// `GET /v1/tools?format=openai|anthropic` (a repeated `format` is refused).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsParams {
    #[serde(default)]
    format: ToolFormat,
}

pub(crate) async fn tools(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
) -> Result<Json<ToolList>, ApiError> {
    state.service.authorize_tools(&who)?;
    let ToolsParams { format } = query(&uri)?;
    let s = state.service;
    let tools = blocking(move || Ok(s.tools(&who, format)?)).await?;
    Ok(Json(ToolList { tools }))
}

/// The tenant's streams; the host-level ones are not a tenant's to read.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TenantStream {
    Execution,
    Registry,
}

/// `GET /v1/audit` filters. The tenant is never a parameter.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    function: Option<String>,
    agent_id: Option<String>,
    user_id: Option<String>,
    outcome: Option<OutcomeKind>,
    stream: Option<TenantStream>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    before_seq: Option<u64>,
    limit: Option<usize>,
}

impl From<AuditParams> for AuditQuery {
    fn from(p: AuditParams) -> AuditQuery {
        AuditQuery {
            stream: p.stream.map(|s| match s {
                TenantStream::Execution => AuditStream::Execution,
                TenantStream::Registry => AuditStream::Registry,
            }),
            function: p.function,
            agent_id: p.agent_id,
            user_id: p.user_id,
            outcome: p.outcome,
            since: p.since,
            until: p.until,
            before_seq: p.before_seq,
            limit: p.limit,
        }
    }
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
) -> Result<Json<AuditPage>, ApiError> {
    state.service.authorize_audit(&who)?;
    let q = AuditQuery::from(query::<AuditParams>(&uri)?);
    let s = state.service;
    Ok(Json(blocking(move || Ok(s.audit(&who, q)?)).await?))
}
