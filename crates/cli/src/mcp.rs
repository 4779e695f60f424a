//! `aifn mcp`: a stdio MCP server for desktop clients that speak only
//! stdio. It forwards `tools/list` and `tools/call` to a remote aifn's
//! `/mcp` as an MCP client (the official SDK over Streamable HTTP, with the
//! agent key as the bearer), so the remote does everything: policy,
//! budgets, schema check, the audit record. A cancelled local call drops
//! the remote request, which interrupts the guest there.

use std::borrow::Cow;

use anyhow::Context as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, ErrorCode,
    Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion, RequestMetaObject,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt as _};

use crate::Exit;

/// `aifn mcp` options.
#[derive(clap::Args)]
pub(crate) struct McpArgs {
    /// The remote aifn: `http://HOST:PORT` or `https://HOST` (its `/mcp`
    /// is used).
    #[arg(long, env = "AIFN_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The agent's API key.
    #[arg(long, env = "AIFN_KEY", hide_env_values = true)]
    key: Option<String>,
}

/// The revisions the bridge speaks on stdio (the same as `/mcp`).
const VERSIONS: &[ProtocolVersion] =
    &[ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28];

/// `_meta` keys that belong to the local exchange, not the forwarded call.
const PROTOCOL_META: &str = "io.modelcontextprotocol/";

pub(crate) fn run(args: McpArgs) -> anyhow::Result<Exit> {
    let key = args.key.context("no API key: pass --key or set AIFN_KEY")?;
    let url = mcp_url(&args.server)?;
    // reqwest's rustls has no crypto provider of its own here: use ring,
    // as the rest of the CLI does. A second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(bridge(url, key))?;
    Ok(Exit::Ok)
}

/// `SERVER/mcp`; a bare `HOST:PORT` means http.
fn mcp_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim_end_matches('/');
    match server.split_once("://") {
        None => Ok(format!("http://{server}/mcp")),
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(format!("{server}/mcp")),
        Some(_) => anyhow::bail!(
            "--server {server}: write http://HOST:PORT or https://HOST (or just HOST:PORT)"
        ),
    }
}

async fn bridge(url: String, key: String) -> anyhow::Result<()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(key),
    );
    let remote = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("aifn-mcp", env!("CARGO_PKG_VERSION")),
    )
    .serve(transport)
    .await
    .with_context(|| format!("cannot connect to {url}"))?;
    let local = Bridge(remote.peer().clone())
        .serve(rmcp::transport::stdio())
        .await
        .context("the stdio client did not start an MCP session")?;
    // Ends when the stdio client closes its side.
    let _ = local.waiting().await;
    let _ = remote.cancel().await;
    Ok(())
}

/// The stdio server: every request goes to the remote.
struct Bridge(Peer<RoleClient>);

/// The local request's `_meta` without the local protocol's keys: the end
/// user's id (`aifn/user_id`), `traceparent` and the like travel on.
fn forwarded_meta(cx: &RequestContext<RoleServer>) -> Option<RequestMetaObject> {
    let mut meta = RequestMetaObject::new();
    for (k, v) in cx.meta.iter() {
        if !k.starts_with(PROTOCOL_META) && k != "progressToken" {
            meta.insert(k.clone(), v.clone());
        }
    }
    (!meta.is_empty()).then_some(meta)
}

fn remote_error(e: rmcp::service::ServiceError) -> ErrorData {
    match e {
        rmcp::service::ServiceError::McpError(e) => e,
        other => ErrorData::new(
            ErrorCode::INTERNAL_ERROR,
            format!("the remote aifn failed: {other}"),
            None,
        ),
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("aifn-mcp", env!("CARGO_PKG_VERSION")).with_title("aifn"),
        )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(VERSIONS)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.0.list_tools(request).await.map_err(remote_error)
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        request.meta = forwarded_meta(&cx);
        // Cancelled here: dropping the remote call cancels it there.
        tokio::select! {
            r = self.0.call_tool_once(request) => r.map_err(remote_error),
            () = cx.ct.cancelled() => Err(ErrorData::new(
                ErrorCode::INTERNAL_ERROR, "cancelled", None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(mcp_url("h:1").expect("url"), "http://h:1/mcp");
        assert_eq!(mcp_url("https://h/").expect("url"), "https://h/mcp");
        assert!(mcp_url("ftp://h").is_err());
    }
}
