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
mod console;
mod error;
mod extract;
mod handlers;
mod mcp;
mod openapi;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_requests: 256,
            cors_origins: Vec::new(),
            console: ConsoleConfig::default(),
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
}

impl AppState {
    /// State for a router over `service`.
    pub fn new(service: Service, config: ServerConfig) -> AppState {
        AppState {
            body_limits: BodyLimits::new(&service.config().limits),
            service,
            sessions: Arc::new(console::Sessions::new(config.console.session_ttl())),
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
    let retention = spawn_retention(service.clone());
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
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
