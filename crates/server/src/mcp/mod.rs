//! aifn as an MCP server: `/mcp` over Streamable HTTP with the official
//! Rust SDK (`rmcp`), and the Protected Resource Metadata document
//! (RFC 9728) that a 401 points to.
//!
//! The transport is stateless (no `Mcp-Session-Id`): every POST is
//! authenticated on its own, any node of a fleet can answer it, and no
//! long-lived stream holds a graceful shutdown open. Revisions: 2026-07-28
//! (per-request metadata, no `initialize`) and 2025-11-25 (with
//! `initialize`) for older clients.
//!
//! The tools are the caller's tool catalog; a call takes exactly the path
//! of `POST /v1/functions/{name}/invoke` (see [`call`]).

mod auth;
mod call;
mod tools;

use std::borrow::Cow;

use aifn_service::{Principal, Service};
use axum::Router;
use axum::middleware;
use axum::routing::get;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::AppState;

pub(crate) use auth::METADATA_PATH;

/// The revisions `/mcp` implements: the current one, and the last one
/// with an `initialize` handshake for older clients.
const VERSIONS: &[ProtocolVersion] =
    &[ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28];

/// The `/mcp` route and the metadata document's routes, to merge into the
/// API router.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let service = state.service().clone();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        // `Host` is not checked: the server runs behind names the operator
        // chooses, and the bearer key is what a rebinding page lacks. The
        // Origin check is ours (auth.rs), against the CORS setting.
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(state.body_limits.invoke);
    let mcp = StreamableHttpService::new(
        move || Ok(Aifn(service.clone())),
        NeverSessionManager::default().into(),
        config,
    );
    Router::new()
        .route_service("/mcp", mcp)
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        .route(METADATA_PATH, get(auth::metadata))
        .route(&format!("{METADATA_PATH}/mcp"), get(auth::metadata))
}

/// The MCP handler: one per request, over the shared service.
#[derive(Clone)]
struct Aifn(Service);

/// The principal the guard put on the request (every request that reaches
/// the handler has one).
fn principal(cx: &RequestContext<RoleServer>) -> Result<Principal, ErrorData> {
    cx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))
}

impl ServerHandler for Aifn {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("aifn", env!("CARGO_PKG_VERSION")).with_title("aifn"),
            )
            .with_instructions(
                "Each tool is a sandboxed, deterministic function without I/O. \
                 Pass the end user's id in _meta \"aifn/user_id\".",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let who = principal(&cx)?;
        tools::list(self.0.clone(), who).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let who = principal(&cx)?;
        Ok(call::call(self.0.clone(), who, request, &cx).await.into())
    }
}
