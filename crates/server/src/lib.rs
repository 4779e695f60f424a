//! The HTTP API of aifn (axum on tokio): how agents, authors and approvers
//! reach the service.
//!
//! Pipeline: **HTTP (here)** → service (use cases) → registry, runtime,
//! audit. This crate only translates: it authenticates the bearer key,
//! parses requests, runs the service on blocking threads (guests and
//! SQLite never block the reactor), and maps every [`ServiceError`] to a
//! status and the one error body `{"error": {"kind", "message"}}` in one
//! place ([`error`]). The tenant comes only from the key: no route or body
//! names it.

mod caller;
mod conn;
mod console;
mod error;
mod extract;
mod handlers;
mod mcp;
mod openapi;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aifn_service::{Service, ServiceError};
use axum::Router;
use tokio::net::TcpListener;

pub use console::ConsoleConfig;
pub use openapi::openapi;
pub use routes::ROUTES;

use crate::error::ApiError;
use crate::extract::BodyLimits;

/// HTTP-level settings (the `[server]` section of the configuration file).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Requests handled at once; past it requests are shed with 503
    /// (no queue). Default 256.
    pub max_requests: usize,
    /// Origins allowed to call from a browser. Default: none, so no CORS
    /// headers are sent and other origins' pages cannot call the API.
    pub cors_origins: Vec<String>,
    /// The approver console at `/console/` (`[server.console]`).
    pub console: ConsoleConfig,
    /// Seconds a client has to send a request's headers, from accept or,
    /// on a keep-alive connection, from the request's first byte; past it
    /// the connection is closed. Default 10.
    pub header_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait idle for its next request
    /// before it is closed. Default 60.
    pub idle_timeout_secs: u64,
    /// Seconds a request's body has to arrive completely, from the end of
    /// its headers; past it the request is answered 400 and the connection
    /// closed. Default 30.
    pub body_timeout_secs: u64,
    /// Connections open at once. At the cap the connection longest without
    /// a request in progress is closed to make room; when every one is
    /// busy a new connection is answered 503 and closed. Keep it below the
    /// process's file descriptor limit. Default 1024.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_requests: 256,
            cors_origins: Vec::new(),
            console: ConsoleConfig::default(),
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

impl ServerConfig {
    fn conn_limits(&self) -> conn::ConnLimits {
        conn::ConnLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    service: Service,
    config: Arc<ServerConfig>,
    body_limits: BodyLimits,
    sessions: Arc<console::Sessions>,
    connections: Arc<conn::Table>,
}

impl AppState {
    /// State for a router over `service`.
    pub fn new(service: Service, config: ServerConfig) -> AppState {
        AppState {
            body_limits: BodyLimits::new(&service.config().limits),
            service,
            sessions: Arc::new(console::Sessions::new(config.console.session_ttl())),
            connections: Arc::new(conn::Table::new(config.conn_limits())),
            config: Arc::new(config),
        }
    }

    /// The service.
    pub fn service(&self) -> &Service {
        &self.service
    }
}

/// The whole API as an axum router.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then
/// stops accepting, finishes in-flight requests and flushes the audit log.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = state.service.clone();
    let connections = state.connections.clone();
    let retention = spawn_retention(service.clone());
    let result = conn::run(listener, router(state), connections, shutdown).await;
    retention.abort();
    let closed = tokio::task::spawn_blocking(move || service.close()).await;
    match closed {
        Ok(Ok(())) => tracing::info!("audit log flushed and checkpointed"),
        Ok(Err(e)) => tracing::error!(error = %e, "could not close the audit log cleanly"),
        Err(e) => tracing::error!(error = %e, "audit close task failed"),
    }
    result
}

fn spawn_retention(service: Service) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let s = service.clone();
            match tokio::task::spawn_blocking(move || s.apply_retention()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(pruned = n, "audit retention applied"),
                Ok(Err(e)) => tracing::error!(error = %e, "audit retention failed"),
                Err(e) => tracing::error!(error = %e, "audit retention task failed"),
            }
        }
    })
}

/// Runs blocking service work off the reactor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(ApiError::from(ServiceError::internal("blocking task", &e))),
    }
}
