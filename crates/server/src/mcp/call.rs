//! `tools/call`: exactly the path of `POST /v1/functions/{name}/invoke`
//! (policy, budgets, schema check, limits, the durable record before the
//! answer), with the answer as an MCP tool result. Anything but `ok` is a
//! result with `isError: true` naming the kind, not a protocol error, so a
//! model can read it and correct its call.

use aifn_runtime::CancelToken;
use aifn_service::{InvokeOutcome, InvokeRequest, Principal, Refused, Service, ServiceError};
use aifn_types::OutcomeKind;
use rmcp::RoleServer;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, MetaObject};
use rmcp::service::RequestContext;
use serde_json::{Map, Value, json};

/// The `_meta` key naming the end user the agent acts for.
pub(crate) const USER_ID_META: &str = "aifn/user_id";
/// The `_meta` key of a result naming its execution (the audit record).
const EXECUTION_META: &str = "aifn/execution_id";
/// The longest user id, as on the HTTP route.
const MAX_USER_ID: usize = 256;

/// Cancels the call if this future is dropped before the call ends (the
/// transport dropped the handler).
struct CancelOnDrop(Option<CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

pub(super) async fn call(
    service: Service,
    who: Principal,
    request: CallToolRequestParams,
    cx: &RequestContext<RoleServer>,
) -> CallToolResult {
    let user_id = match user_id(cx) {
        Ok(u) => u,
        Err(e) => return refusal(&e, None),
    };
    let cancel = CancelToken::new();
    let invoke = InvokeRequest {
        function: request.name.into_owned(),
        input: Value::Object(request.arguments.unwrap_or_default()),
        user_id,
        traceparent: traceparent(cx),
        cancel: Some(cancel.clone()),
    };
    let mut guard = CancelOnDrop(Some(cancel.clone()));
    let mut run = tokio::task::spawn_blocking(move || service.start_invoke(&who, invoke));
    // The client went away (disconnect, or `notifications/cancelled` where
    // the transport routes it): interrupt the guest, keep waiting for the
    // record, which then says `cancelled`.
    let ticket = tokio::select! {
        joined = &mut run => joined,
        () = cx.ct.cancelled() => {
            cancel.cancel();
            run.await
        }
    };
    let answer = match ticket {
        Ok(ticket) => ticket.await,
        Err(e) => {
            let e = ServiceError::internal("tools/call task", &e);
            return refusal(&e, None);
        }
    };
    guard.0 = None;
    match answer {
        Ok(outcome) => result(outcome),
        Err(Refused {
            error,
            execution_id,
        }) => refusal(&error, execution_id),
    }
}

/// `_meta["aifn/user_id"]`: a string of at most 256 bytes, or absent.
fn user_id(cx: &RequestContext<RoleServer>) -> Result<String, ServiceError> {
    match cx.meta.get(USER_ID_META) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if s.len() <= MAX_USER_ID => Ok(s.clone()),
        Some(Value::String(_)) => Err(ServiceError::InvalidRequest {
            message: format!("_meta \"{USER_ID_META}\" is longer than {MAX_USER_ID} bytes"),
        }),
        Some(_) => Err(ServiceError::InvalidRequest {
            message: format!("_meta \"{USER_ID_META}\" must be a string"),
        }),
    }
}

/// `_meta.traceparent`, else the HTTP `traceparent` header.
fn traceparent(cx: &RequestContext<RoleServer>) -> Option<String> {
    if let Some(t) = cx.meta.get_traceparent() {
        return Some(t.to_owned());
    }
    cx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.headers.get("traceparent"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn execution_meta(execution_id: Option<String>) -> Option<MetaObject> {
    let id = execution_id?;
    let mut meta = MetaObject::new();
    meta.insert(EXECUTION_META.into(), Value::String(id));
    Some(meta)
}

/// A call that ran: its output, or how it failed.
fn result(outcome: InvokeOutcome) -> CallToolResult {
    let meta = execution_meta(Some(outcome.execution_id.clone()));
    if outcome.kind == OutcomeKind::Ok {
        let output = outcome.output.unwrap_or(Value::Null);
        return CallToolResult::structured(output).with_meta(meta);
    }
    let body = json!({
        "error": {
            "kind": outcome.kind.as_str(),
            "message": outcome.message.unwrap_or_default(),
        },
        "execution_id": outcome.execution_id,
    });
    error_result(&body).with_meta(meta)
}

/// A call refused before it ran: the same body as the HTTP API's error,
/// with each schema violation (path and rule, never the value).
fn refusal(error: &ServiceError, execution_id: Option<String>) -> CallToolResult {
    let mut e = Map::new();
    e.insert("kind".into(), error.kind().as_str().into());
    e.insert("message".into(), error.to_string().into());
    match error {
        ServiceError::InvalidInput { violations, .. } => {
            e.insert("violations".into(), json!(violations));
        }
        ServiceError::RateLimited { retry_after, .. } => {
            e.insert("retry_after_s".into(), retry_after.as_secs().into());
        }
        _ => {}
    }
    let mut body = Map::new();
    body.insert("error".into(), Value::Object(e));
    if let Some(id) = &execution_id {
        body.insert("execution_id".into(), id.clone().into());
    }
    error_result(&Value::Object(body)).with_meta(execution_meta(execution_id))
}

/// The error as text (a model reads it): JSON naming kind and message. No
/// `structuredContent`, which a client may check against the output schema.
fn error_result(body: &Value) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(body.to_string())])
}
