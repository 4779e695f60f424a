//! The approver console: server-rendered HTML at `/console/` over the
//! same service methods as the API, so that a signed-in person can do
//! nothing their key could not. Sessions instead of bearer keys
//! ([`session`]); every state-changing request checks its origin and its
//! CSRF token; every page carries a strict Content-Security-Policy (no
//! inline script: the one script and the stylesheet are served from here,
//! embedded in the binary). Everything shown is escaped by maud.

mod agents;
mod audit;
mod catalog;
mod html;
mod review;
mod session;

use std::time::Duration;

use aifn_service::ServiceError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, extract::DefaultBodyLimit};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub(crate) use session::Sessions;
use session::{
    SESSION_COOKIE, SIGN_IN_COOKIE, Viewer, cookie, random_token, same_secret, set_cookie,
};

use crate::AppState;

/// The `[server.console]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// How long a session lasts from sign-in, in minutes. Default 480 (8 h).
    pub session_minutes: u64,
    /// The origin browsers reach the console at, e.g.
    /// `https://aifn.example.com` behind a TLS proxy. State-changing
    /// requests must come from it, and with `https` the cookies are
    /// `Secure`. Default: `http://` and the request's `Host`.
    pub public_origin: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_minutes: 480,
            public_origin: None,
        }
    }
}

impl ConsoleConfig {
    pub(crate) fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_minutes.max(1).saturating_mul(60))
    }

    fn secure(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// The console's routes (all under `/console`).
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let invoke_limit = state.body_limits.invoke;
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(home))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/pending", get(review::pending))
        .route("/console/functions", get(catalog::functions))
        .route("/console/functions/{name}", get(catalog::function))
        .route(
            "/console/functions/{name}/versions/{version}",
            get(review::version),
        )
        .route(
            "/console/functions/{name}/versions/{version}/decide",
            post(review::decide),
        )
        .route(
            "/console/functions/{name}/versions/{version}/test",
            post(review::test_run).layer(DefaultBodyLimit::max(invoke_limit)),
        )
        .route("/console/audit", get(audit::list))
        .route("/console/audit/{seq}", get(audit::record))
        .route("/console/agents", get(agents::list))
        .route("/console/agents/{subject}", get(agents::agent))
        .route("/console/agents/{subject}/policy", post(agents::set_policy))
        .route("/console/tenant", post(agents::set_tenant))
        .route("/console/{*rest}", get(page_not_found))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
}

/// The headers of every console response, and the origin check of every
/// state-changing request.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = if req.method() == axum::http::Method::POST
        && !same_origin(req.headers(), &state.config.console)
    {
        ConsoleError::Page(
            StatusCode::FORBIDDEN,
            "this request came from another origin and was refused. Post from the \
             console's own pages; behind a proxy, set [server.console] public_origin \
             to the address browsers use"
                .into(),
        )
        .into_response()
    } else {
        next.run(req).await
    };
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ConsoleError::Page(
            StatusCode::METHOD_NOT_ALLOWED,
            "this page does not answer that method".into(),
        )
        .into_response();
        if let Some(a) = allow {
            response.headers_mut().insert(header::ALLOW, a);
        }
    }
    if state.config.console.secure() {
        secure_cookies(response.headers_mut());
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Marks every cookie an answer sets `Secure` (behind https, the cookies
/// that end a session too).
fn secure_cookies(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        let text = c.to_str().unwrap_or_default();
        let fixed = if text.ends_with("; Secure") {
            Some(c.clone())
        } else {
            HeaderValue::from_str(&format!("{text}; Secure")).ok()
        };
        if let Some(v) = fixed {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// A POST from the console's own origin. A browser says where a request
/// comes from: `Origin` must be the console's when it names one; browsers
/// send `Origin: null` on form posts under `Referrer-Policy: no-referrer`,
/// and then `Sec-Fetch-Site` must be `same-origin`. A POST that says
/// neither is refused: the console is for browsers. The CSRF token is
/// checked as well, by the handler.
fn same_origin(headers: &HeaderMap, config: &ConsoleConfig) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let same_site = fetch_site == Some("same-origin");
    match headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""))
    {
        Some("null") | None => same_site,
        Some(origin) => {
            let expected = match &config.public_origin {
                Some(o) => o.trim_end_matches('/').to_owned(),
                None => match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
                    Some(host) => format!("http://{host}"),
                    None => return false,
                },
            };
            origin.eq_ignore_ascii_case(&expected) && (fetch_site.is_none() || same_site)
        }
    }
}

/// What a console request ends in when it does not end in a page.
#[derive(Debug)]
pub(crate) enum ConsoleError {
    /// No live session: to the sign-in page.
    SignIn,
    /// An error page with this status and message.
    Page(StatusCode, String),
}

impl ConsoleError {
    fn csrf() -> ConsoleError {
        ConsoleError::Page(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page and try again".into(),
        )
    }

    fn bad(message: impl Into<String>) -> ConsoleError {
        ConsoleError::Page(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<ServiceError> for ConsoleError {
    fn from(e: ServiceError) -> ConsoleError {
        match e {
            ServiceError::Unauthenticated { .. } => ConsoleError::SignIn,
            e => ConsoleError::Page(crate::error::status(&e), e.to_string()),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::SignIn => {
                let mut r = Redirect::to("/console/sign-in").into_response();
                // The session cookie of an ended session is no use.
                if let Ok(v) =
                    HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", Duration::ZERO, false))
                {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                r
            }
            ConsoleError::Page(status, message) => {
                (status, html::error_page(status, &message)).into_response()
            }
        }
    }
}

/// Runs blocking service work off the reactor.
async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ConsoleError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ConsoleError::from),
        Err(e) => Err(ServiceError::internal("console task", &e).into()),
    }
}

/// An `application/x-www-form-urlencoded` body parsed into `T`.
pub(crate) struct FormBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for FormBody<T> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ConsoleError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ConsoleError::Page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the form is too large".into(),
                )
            } else {
                ConsoleError::bad("cannot read the form")
            }
        })?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormBody)
            .map_err(|e| ConsoleError::bad(format!("invalid form: {e}")))
    }
}

/// Path parameters; one that does not decode is a page, not the API's
/// JSON.
pub(crate) struct PagePath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S>
    for PagePath<T>
{
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ConsoleError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| PagePath(v))
            .map_err(|e| ConsoleError::bad(e.body_text()))
    }
}

async fn page_not_found() -> ConsoleError {
    ConsoleError::Page(
        StatusCode::NOT_FOUND,
        "there is no such console page".into(),
    )
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
}

async fn home(viewer: Result<Viewer, ConsoleError>) -> Redirect {
    match viewer {
        Ok(_) => Redirect::to("/console/pending"),
        Err(_) => Redirect::to("/console/sign-in"),
    }
}

/// The sign-in page, with a fresh sign-in CSRF token in a cookie and in
/// the form (the session does not exist yet).
async fn sign_in_page(State(state): State<AppState>) -> Result<Response, ConsoleError> {
    let token = random_token()?;
    Ok(sign_in_response(&state, &token, StatusCode::OK, None))
}

fn sign_in_response(
    state: &AppState,
    token: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let cookie = set_cookie(
        SIGN_IN_COOKIE,
        token,
        Duration::from_secs(600),
        state.config.console.secure(),
    );
    let mut r = (status, html::sign_in(token, error)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct SignInForm {
    api_key: String,
    csrf: Option<String>,
}

async fn sign_in(State(state): State<AppState>, req: Request) -> Result<Response, ConsoleError> {
    let expected = cookie(req.headers(), SIGN_IN_COOKIE).map(str::to_owned);
    let previous = cookie(req.headers(), SESSION_COOKIE).map(str::to_owned);
    let (_, remote) = crate::caller::origin_of(req.extensions());
    let FormBody(form) = FormBody::<SignInForm>::from_request(req, &state).await?;
    match (expected.as_deref(), form.csrf.as_deref()) {
        (Some(a), Some(b)) if same_secret(a, b) => {}
        _ => return Err(ConsoleError::csrf()),
    }
    let service = state.service.clone();
    let key = form.api_key.trim().to_owned();
    let principal = run(move || {
        let origin = aifn_service::Origin {
            route: "/console/sign-in",
            remote,
        };
        let credential = if key.is_empty() {
            aifn_service::Credential::Missing
        } else {
            aifn_service::Credential::ApiKey(key)
        };
        service.authenticate(&credential, origin)
    })
    .await;
    let again = |message: &str| -> Result<Response, ConsoleError> {
        let token = random_token()?;
        Ok(sign_in_response(
            &state,
            &token,
            StatusCode::UNAUTHORIZED,
            Some(message),
        ))
    };
    let who = match principal {
        Ok(p) => p,
        Err(ConsoleError::SignIn) => return again("That API key is not valid."),
        Err(e) => return Err(e),
    };
    if who.role == aifn_types::Role::Agent {
        let token = random_token()?;
        return Ok(sign_in_response(
            &state,
            &token,
            StatusCode::FORBIDDEN,
            Some("Agent keys cannot sign in to the console: agents use the API."),
        ));
    }
    // A sign-in over a live session ends that one.
    if let Some(old) = &previous {
        state.sessions.close(old);
    }
    let (token, _) = state.sessions.open(who)?;
    let secure = state.config.console.secure();
    let mut r = Redirect::to("/console/pending").into_response();
    for c in [
        set_cookie(SESSION_COOKIE, &token, state.sessions.ttl(), secure),
        set_cookie(SIGN_IN_COOKIE, "", Duration::ZERO, secure),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    FormBody(form): FormBody<CsrfForm>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(form.csrf.as_deref())?;
    let parts_cookie = cookie(&headers, SESSION_COOKIE).map(str::to_owned);
    if let Some(token) = parts_cookie {
        state.sessions.close(&token);
    }
    Err(ConsoleError::SignIn)
}
