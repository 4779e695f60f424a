use std::time::Duration;

use aifn_types::{OutcomeKind, RejectReason};
use serde::{Deserialize, Serialize};

/// The scopes of a `rate_limited` refusal by a budget.
pub(crate) const BUDGET_SCOPES: [&str; 2] = ["agent budget", "tenant budget"];

/// One way an input breaks the function's JSON Schema, so a model can
/// correct its call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON Pointer into the input (`""` is the whole input).
    pub path: String,
    /// What is wrong, without echoing the value.
    pub message: String,
}

impl Violation {
    /// Where, for a message: the JSON Pointer, or `(root)` for the whole
    /// document (whose pointer is empty).
    pub fn location(&self) -> &str {
        if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        }
    }
}

/// The kind names of API errors: the product's outcome kinds, plus five
/// for requests that are not about a function call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A product outcome kind (`forbidden`, `not_found`, `invalid_module`, ...).
    Outcome(OutcomeKind),
    /// `invalid_request`: a malformed request, manifest, name or notes.
    InvalidRequest,
    /// `conflict`: the request contradicts the current state.
    Conflict,
    /// `payload_too_large`: over a size cap.
    PayloadTooLarge,
    /// `unavailable`: the service cannot serve now (audit log cannot write).
    Unavailable,
    /// `internal`: a fault on the host; details are logged, not returned.
    Internal,
}

impl ErrorKind {
    /// Every kind an error body can carry, in a stable order: the outcome
    /// kinds except `ok` (an error is never ok), then the five request
    /// kinds. The OpenAPI document's `Error.kind` enum is built from it.
    pub const ALL: [ErrorKind; OutcomeKind::ALL.len() + 4] = {
        let mut all = [ErrorKind::Internal; OutcomeKind::ALL.len() + 4];
        let mut i = 0;
        let mut n = 0;
        while i < OutcomeKind::ALL.len() {
            if !matches!(OutcomeKind::ALL[i], OutcomeKind::Ok) {
                all[n] = ErrorKind::Outcome(OutcomeKind::ALL[i]);
                n += 1;
            }
            i += 1;
        }
        let request = [
            ErrorKind::InvalidRequest,
            ErrorKind::Conflict,
            ErrorKind::PayloadTooLarge,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        let mut j = 0;
        while j < request.len() {
            all[n + j] = request[j];
            j += 1;
        }
        all
    };

    /// The name used in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Outcome(k) => k.as_str(),
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Why the service refused or failed a request. Messages are safe to show
/// the caller: internal details go to the log only.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// No valid API key.
    #[error("a valid API key is required ({reason})")]
    Unauthenticated {
        /// `missing key`, `malformed key`, `unknown key` or `revoked key`.
        reason: &'static str,
    },
    /// The key's role does not allow this.
    #[error("{reason}")]
    Forbidden {
        /// Why.
        reason: String,
    },
    /// The gateway rejected the call: the agent's policy (or its absence)
    /// does not allow it (`not_allowed`) or denies it (`denied`). Kind
    /// `forbidden`; [`ServiceError::reason`] names the reason.
    #[error("{message}")]
    Rejected {
        /// `not_allowed` or `denied`.
        reason: RejectReason,
        /// Why, in words fit for the caller.
        message: String,
    },
    /// No such function or version in the caller's tenant.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The function has no active version.
    #[error("function {name} has no active version")]
    NotActive {
        /// The function.
        name: String,
    },
    /// The input is not JSON, too large, or breaks the schema.
    #[error("{message}")]
    InvalidInput {
        /// Summary.
        message: String,
        /// Each schema violation.
        violations: Vec<Violation>,
    },
    /// The function ran and failed or hit a limit (`timeout`, `trap`,
    /// `function_error`, ...).
    #[error("{message}")]
    Failed {
        /// The outcome kind.
        kind: OutcomeKind,
        /// What went wrong.
        message: String,
    },
    /// A rate or concurrency limit was reached.
    #[error("{scope} limit reached; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// When to try again.
        retry_after: Duration,
        /// Which limit.
        scope: &'static str,
    },
    /// The module was refused (`invalid_module`, `forbidden_import`,
    /// `compile_timeout`).
    #[error("{message}")]
    InvalidModule {
        /// The outcome kind.
        kind: OutcomeKind,
        /// What is wrong with it.
        message: String,
    },
    /// Over a size cap.
    #[error("{message}")]
    PayloadTooLarge {
        /// Which cap.
        message: String,
    },
    /// A malformed request, manifest, name or missing notes.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
    },
    /// The request contradicts the current state (an illegal transition,
    /// a hash that is not the version's).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
    },
    /// The service cannot serve now; calls fail closed.
    #[error("{message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// A fault on the host.
    #[error("internal error (see the server log, id {log_id})")]
    Internal {
        /// Correlates with the server log line that has the details.
        log_id: String,
    },
}

impl ServiceError {
    /// The kind name for the error body.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Unauthenticated { .. } => {
                ErrorKind::Outcome(OutcomeKind::Unauthenticated)
            }
            ServiceError::Forbidden { .. } | ServiceError::Rejected { .. } => {
                ErrorKind::Outcome(OutcomeKind::Forbidden)
            }
            ServiceError::NotFound { .. } => ErrorKind::Outcome(OutcomeKind::NotFound),
            ServiceError::NotActive { .. } => ErrorKind::Outcome(OutcomeKind::NotActive),
            ServiceError::InvalidInput { .. } => ErrorKind::Outcome(OutcomeKind::InvalidInput),
            ServiceError::RateLimited { .. } => ErrorKind::Outcome(OutcomeKind::RateLimited),
            ServiceError::InvalidModule { kind, .. } | ServiceError::Failed { kind, .. } => {
                ErrorKind::Outcome(*kind)
            }
            ServiceError::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            ServiceError::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            ServiceError::Conflict { .. } => ErrorKind::Conflict,
            ServiceError::Unavailable { .. } => ErrorKind::Unavailable,
            ServiceError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// The gateway's reason for a rejected call, for the error body's
    /// `reason`: `not_allowed`, `denied`, or `budget_exhausted` for a
    /// `rate_limited` refusal by a budget (not by the rate limiter).
    pub fn reason(&self) -> Option<RejectReason> {
        match self {
            ServiceError::Rejected { reason, .. } => Some(*reason),
            ServiceError::RateLimited { scope, .. } if BUDGET_SCOPES.contains(scope) => {
                Some(RejectReason::BudgetExhausted)
            }
            _ => None,
        }
    }

    /// Logs an internal fault with an id and returns the error to show.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> ServiceError {
        let log_id = crate::ids::execution_id(std::time::SystemTime::now());
        tracing::error!(log_id, context, error = %err, "internal error");
        ServiceError::Internal { log_id }
    }
}

impl From<aifn_registry::RegistryError> for ServiceError {
    fn from(e: aifn_registry::RegistryError) -> ServiceError {
        use aifn_registry::RegistryError as R;
        match e {
            R::NotFound { .. } | R::ModuleNotFound { .. } | R::KeyNotFound { .. } => {
                ServiceError::NotFound {
                    what: not_found_what(&e),
                }
            }
            R::PolicyNotFound { subject } => ServiceError::NotFound {
                what: format!("policy of agent {subject}"),
            },
            R::InvalidPolicy(message) => ServiceError::InvalidRequest { message },
            R::NotActive { name } => ServiceError::NotActive {
                name: name.to_string(),
            },
            R::Forbidden { reason } => ServiceError::Forbidden { reason },
            R::IllegalTransition { .. }
            | R::HashMismatch { .. }
            | R::KeyAlreadyRevoked { .. }
            | R::FailingTests { .. }
            | R::VersionRace { .. } => ServiceError::Conflict {
                message: e.to_string(),
            },
            R::NotesRequired { .. }
            | R::Limit(_)
            | R::InvalidManifest(_)
            | R::ReportMismatch { .. } => ServiceError::InvalidRequest {
                message: e.to_string(),
            },
            R::DiskFull => ServiceError::Unavailable {
                message: "the registry's storage is full".into(),
            },
            R::Audit(_) => ServiceError::Unavailable {
                message: "the audit log cannot record this action".into(),
            },
            R::Unavailable { op, source } => {
                // The cause is the operator's to read, not the caller's.
                tracing::warn!(op, error = %source, "registry database unavailable");
                ServiceError::Unavailable {
                    message: "the registry database is unavailable; retry shortly".into(),
                }
            }
            other => ServiceError::internal("registry", &other),
        }
    }
}

fn not_found_what(e: &aifn_registry::RegistryError) -> String {
    use aifn_registry::RegistryError as R;
    match e {
        R::NotFound {
            name,
            version: Some(v),
            ..
        } => format!("version {name}@{v}"),
        R::NotFound { name, .. } => format!("function {name}"),
        R::KeyNotFound { key_id } => format!("key {key_id}"),
        _ => "module".into(),
    }
}
