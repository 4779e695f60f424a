//! The one place where service errors become HTTP responses.

use aifn_service::{ServiceError, Violation};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered with the one error body.
#[derive(Debug)]
pub struct ApiError {
    error: ServiceError,
    execution_id: Option<String>,
    extra: Option<serde_json::Value>,
}

impl ApiError {
    /// Attaches the execution id of the attempt's audit record.
    pub fn with_execution(error: ServiceError, execution_id: Option<String>) -> ApiError {
        ApiError {
            error,
            execution_id,
            extra: None,
        }
    }

    /// Adds fields beside `error` (fuel, duration of a failed call).
    pub(crate) fn with_extra(mut self, extra: serde_json::Value) -> ApiError {
        self.extra = Some(extra);
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ServiceError::InvalidRequest {
            message: message.into(),
        }
        .into()
    }

    /// The status for a service error.
    pub fn status(error: &ServiceError) -> StatusCode {
        match error {
            ServiceError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden { .. } => StatusCode::FORBIDDEN,
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
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        ApiError {
            error,
            execution_id: None,
            extra: None,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    kind: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    violations: Option<&'a [Violation]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = ApiError::status(&self.error);
        let violations = match &self.error {
            ServiceError::InvalidInput { violations, .. } if !violations.is_empty() => {
                Some(violations.as_slice())
            }
            _ => None,
        };
        let mut body = serde_json::json!({
            "error": Body { kind: self.error.kind().as_str(), message: self.error.to_string(), violations }
        });
        if let Some(id) = &self.execution_id {
            body["execution_id"] = serde_json::Value::String(id.clone());
        }
        if let Some(serde_json::Value::Object(extra)) = self.extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let mut response = (status, axum::Json(body)).into_response();
        match &self.error {
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
