//! The one place where errors become HTTP responses: a status, the one
//! error body `{"error": {"kind", "message"}}` (the wire types of
//! `aifn_service`; a call the gateway rejected adds its `reason`), and the
//! headers that go with some of them.

use aifn_service::{ErrorBody, ErrorDetail, InvocationFailure, ServiceError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What a call that ran and failed reports beside its error.
#[derive(Debug, Clone)]
pub(crate) struct RunStats {
    pub(crate) execution_id: String,
    pub(crate) version: u32,
    pub(crate) fuel_used: u64,
    pub(crate) duration_ms: f64,
}

#[derive(Debug)]
enum Problem {
    /// A refusal or failure of the service.
    Service(ServiceError),
    /// A route that exists, asked with a method it does not answer.
    MethodNotAllowed { allow: Option<HeaderValue> },
}

/// An error answered with the one error body.
#[derive(Debug)]
pub(crate) struct ApiError {
    problem: Problem,
    execution_id: Option<String>,
    ran: Option<RunStats>,
}

impl ApiError {
    /// A refusal whose attempt was recorded under `execution_id`.
    pub(crate) fn with_execution(error: ServiceError, execution_id: Option<String>) -> ApiError {
        ApiError {
            problem: Problem::Service(error),
            execution_id,
            ran: None,
        }
    }

    /// A call that ran and failed (422 with what it used).
    pub(crate) fn failed(error: ServiceError, ran: RunStats) -> ApiError {
        ApiError {
            problem: Problem::Service(error),
            execution_id: None,
            ran: Some(ran),
        }
    }

    pub(crate) fn method_not_allowed(allow: Option<HeaderValue>) -> ApiError {
        ApiError {
            problem: Problem::MethodNotAllowed { allow },
            execution_id: None,
            ran: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ServiceError::InvalidRequest {
            message: message.into(),
        }
        .into()
    }
}

/// The status for a service error.
pub(crate) fn status(error: &ServiceError) -> StatusCode {
    match error {
        ServiceError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        ServiceError::Forbidden { .. } | ServiceError::Rejected { .. } => StatusCode::FORBIDDEN,
        ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
        ServiceError::NotActive { .. } | ServiceError::Conflict { .. } => StatusCode::CONFLICT,
        ServiceError::InvalidInput { .. } | ServiceError::InvalidRequest { .. } => {
            StatusCode::BAD_REQUEST
        }
        ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::InvalidModule { .. } | ServiceError::Failed { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ServiceError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ServiceError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        ApiError::with_execution(error, None)
    }
}

fn detail(error: &ServiceError) -> ErrorDetail {
    let violations = match error {
        ServiceError::InvalidInput { violations, .. } if !violations.is_empty() => {
            Some(violations.clone())
        }
        _ => None,
    };
    ErrorDetail {
        kind: error.kind().as_str().to_owned(),
        message: error.to_string(),
        violations,
        // The gateway's: not_allowed or denied (403), budget_exhausted (429).
        reason: error.reason(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self.problem {
            Problem::Service(error) => error,
            Problem::MethodNotAllowed { allow } => {
                let body = ErrorBody {
                    error: ErrorDetail {
                        kind: "invalid_request".to_owned(),
                        message: "method not allowed on this route".to_owned(),
                        violations: None,
                        reason: None,
                    },
                    execution_id: None,
                };
                let mut r = (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response();
                if let Some(a) = allow {
                    r.headers_mut().insert(header::ALLOW, a);
                }
                return r;
            }
        };
        let code = status(&error);
        let mut response = match self.ran {
            Some(ran) => {
                let body = InvocationFailure {
                    error: detail(&error),
                    execution_id: ran.execution_id,
                    version: ran.version,
                    fuel_used: ran.fuel_used,
                    duration_ms: ran.duration_ms,
                };
                (code, axum::Json(body)).into_response()
            }
            None => {
                let body = ErrorBody {
                    error: detail(&error),
                    execution_id: self.execution_id,
                };
                (code, axum::Json(body)).into_response()
            }
        };
        match &error {
            ServiceError::RateLimited { retry_after, .. } => {
                let secs = retry_after.as_secs().max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ServiceError::Unauthenticated { .. } => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
