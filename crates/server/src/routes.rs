//! The routes, the router, and the layers around every route.

use std::time::Instant;

use aifn_service::ServiceError;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{BoxError, Router};
use tower::ServiceBuilder;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::SMALL_BODY;
use crate::handlers::{self, Action};

/// Every route: method and path. The OpenAPI document lists exactly these
/// (tested).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/functions"),
    ("GET", "/v1/functions/{name}"),
    ("POST", "/v1/functions/{name}/versions"),
    ("GET", "/v1/functions/{name}/versions/{version}"),
    ("POST", "/v1/functions/{name}/versions/{version}/approve"),
    ("POST", "/v1/functions/{name}/versions/{version}/reject"),
    ("POST", "/v1/functions/{name}/versions/{version}/revoke"),
    ("POST", "/v1/functions/{name}/versions/{version}/test"),
    ("GET", "/v1/functions/{name}/versions/{version}/diff"),
    ("GET", "/v1/functions/{name}/versions/{version}/module"),
    ("GET", "/v1/functions/{name}/versions/{version}/source"),
    ("POST", "/v1/functions/{name}/invoke"),
    ("POST", "/v1/executions/{id}/replay"),
    ("GET", "/v1/pending"),
    ("GET", "/v1/tools"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/bundle"),
    ("GET", "/v1/agents"),
    ("GET", "/v1/agents/{subject}/policy"),
    ("PUT", "/v1/agents/{subject}/policy"),
    ("DELETE", "/v1/agents/{subject}/policy"),
    ("GET", "/v1/agents/{subject}/usage"),
    ("GET", "/v1/tenant"),
    ("PUT", "/v1/tenant/mode"),
    ("PUT", "/v1/tenant/budget"),
    ("PUT", "/v1/tenant/output-guard"),
];

pub(crate) fn router(state: AppState) -> Router {
    let limits = state.body_limits;
    let max_requests = state.config.max_requests.max(1);
    let cors = cors_layer(&state.config.cors_origins);
    let mut app = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/v1/openapi.json", get(handlers::openapi))
        .route("/v1/functions", get(handlers::list_functions))
        .route("/v1/functions/{name}", get(handlers::get_function))
        .route(
            "/v1/functions/{name}/versions",
            post(handlers::upload).layer(DefaultBodyLimit::max(limits.upload)),
        )
        .route(
            "/v1/functions/{name}/versions/{version}",
            get(handlers::get_version),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/approve",
            post(|s, c, p, b| handlers::decide(s, c, p, b, Action::Approve)),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/reject",
            post(|s, c, p, b| handlers::decide(s, c, p, b, Action::Reject)),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/revoke",
            post(|s, c, p, b| handlers::decide(s, c, p, b, Action::Revoke)),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/test",
            post(handlers::test_run).layer(DefaultBodyLimit::max(limits.invoke)),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/diff",
            get(handlers::diff),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/module",
            get(handlers::module),
        )
        .route(
            "/v1/functions/{name}/versions/{version}/source",
            get(handlers::source),
        )
        .route(
            "/v1/functions/{name}/invoke",
            post(handlers::invoke).layer(DefaultBodyLimit::max(limits.invoke)),
        )
        .route("/v1/executions/{id}/replay", post(handlers::replay))
        .route("/v1/pending", get(handlers::pending))
        .route("/v1/tools", get(handlers::tools))
        .route("/v1/audit", get(handlers::audit))
        .route("/v1/audit/bundle", get(handlers::bundle))
        .route("/v1/agents", get(handlers::list_agents))
        .route(
            "/v1/agents/{subject}/policy",
            get(handlers::get_policy)
                .put(handlers::put_policy)
                .delete(handlers::delete_policy),
        )
        .route("/v1/agents/{subject}/usage", get(handlers::usage))
        .route("/v1/tenant", get(handlers::get_tenant))
        .route("/v1/tenant/mode", put(handlers::put_mode))
        .route("/v1/tenant/budget", put(handlers::put_budget))
        .route("/v1/tenant/output-guard", put(handlers::put_output_guard))
        .merge(crate::mcp::router(&state))
        .merge(crate::console::router(&state))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .layer(middleware::from_fn(json_method_not_allowed))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::from(ServiceError::Unavailable {
                        message: "the server is at capacity; retry shortly".into(),
                    })
                }))
                .load_shed()
                .concurrency_limit(max_requests),
        )
        .layer(middleware::from_fn(log_request));
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app.with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(list)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            // MCP clients in a page send their revision and trace context,
            // and read the auth challenge of a 401.
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("mcp-protocol-version"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([header::WWW_AUTHENTICATE]),
    )
}

/// One structured log line per request: never keys, never bodies.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(%method, route = route.as_deref().unwrap_or("(unmatched)"), status, ms, "request");
    response
}

/// axum answers a wrong method with an empty 405; give it the one body.
async fn json_method_not_allowed(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        return ApiError::method_not_allowed(allow).into_response();
    }
    response
}

async fn not_found() -> ApiError {
    ServiceError::NotFound {
        what: "route".into(),
    }
    .into()
}
