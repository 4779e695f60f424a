use aifn_types::{
    FunctionName, LimitError, OutcomeKind, RefusalKind, Subject, TenantId, VersionState,
};

use crate::SinkError;
use crate::transition::VersionAction;

/// Why a registry call was refused or failed.
///
/// `Display` never shows SQL or file paths: the variants a client may see
/// carry only names, versions, hashes and reasons.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The tenant has no such function, or no such version of it.
    #[error("{}", not_found(name, *version))]
    NotFound {
        /// The tenant that was searched.
        tenant: TenantId,
        /// The function name.
        name: FunctionName,
        /// The version, when one was asked for.
        version: Option<u32>,
    },
    /// The function exists but no version of it is active.
    #[error("function {name} has no active version")]
    NotActive {
        /// The function name.
        name: FunctionName,
    },
    /// No module is stored under this sha256.
    #[error("no module with sha256 {sha256}")]
    ModuleNotFound {
        /// The sha256 asked for.
        sha256: String,
    },
    /// No API key has this id.
    #[error("no API key {key_id}")]
    KeyNotFound {
        /// The key id.
        key_id: String,
    },
    /// The agent has no policy.
    #[error("agent {subject} has no policy")]
    PolicyNotFound {
        /// The agent.
        subject: Subject,
    },
    /// The API key was revoked already.
    #[error("API key {key_id} is already revoked")]
    KeyAlreadyRevoked {
        /// The key id.
        key_id: String,
    },
    /// The acting key's role or tenant does not allow this, or separation of
    /// duties forbids it.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why, in words fit for the caller.
        reason: String,
    },
    /// The version's state does not allow the action.
    #[error("cannot {action} a version that is {from}")]
    IllegalTransition {
        /// The state the version is in.
        from: VersionState,
        /// The action that was asked for.
        action: VersionAction,
    },
    /// The sha256 the approver inspected is not the stored module's.
    #[error("version {version} has sha256 {stored}, not the inspected {given}")]
    HashMismatch {
        /// The version decided on.
        version: u32,
        /// The sha256 of the stored module.
        stored: String,
        /// The sha256 the approver named.
        given: String,
    },
    /// Manifest tests failed at upload and the approval did not override
    /// them.
    #[error(
        "{} failed at upload ({}); approve only with the override of failing tests and notes that say why",
        tests_word(names.len()),
        names.join(", ")
    )]
    FailingTests {
        /// The failing tests, in manifest order.
        names: Vec<String>,
    },
    /// Another upload of the function took the version number this one's
    /// tests ran as; nothing was stored (try again).
    #[error("version {expected} was taken by another upload; the next version is {next}")]
    VersionRace {
        /// The number the upload was prepared as.
        expected: u32,
        /// The number it would get now.
        next: u32,
    },
    /// The module report handed in at upload does not describe the bytes.
    #[error(
        "module report does not match the module: {field} is {report} in the report, {module} for the bytes"
    )]
    ReportMismatch {
        /// `sha256`, `size_bytes` or `script.engine.sha256`.
        field: &'static str,
        /// The value computed from the uploaded bytes.
        module: String,
        /// The value in the report.
        report: String,
    },
    /// Approve, reject and revoke need non-blank notes.
    #[error("notes are required to {action} a version")]
    NotesRequired {
        /// The action that lacked notes.
        action: VersionAction,
    },
    /// The manifest asks for a limit above the host maximum, or for zero.
    #[error("manifest limits: {0}")]
    Limit(#[from] LimitError),
    /// The manifest is not acceptable for another reason.
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// An agent policy or tenant setting that cannot be stored.
    #[error("{0}")]
    InvalidPolicy(String),
    /// The audit sink refused the record, so the action was rolled back.
    #[error("audit record could not be written, action rolled back")]
    Audit(#[source] SinkError),
    /// The registry database (or its disk, or its size cap) is full; nothing
    /// was written.
    #[error("registry storage is full")]
    DiskFull,
    /// The database was written by a newer aifn.
    #[error("registry schema version {found} is newer than the supported {supported}")]
    SchemaTooNew {
        /// `user_version` found in the database.
        found: u32,
        /// The newest schema this build knows.
        supported: u32,
    },
    /// Stored data that does not decode (corruption or a bug).
    #[error("registry data is corrupt: {0}")]
    Corrupt(String),
    /// The database cannot be reached (PostgreSQL stopped, restarting, or
    /// the network between); nothing was done. Worth retrying.
    #[error("registry database unavailable during {op}")]
    Unavailable {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other storage failure; the source has the details.
    #[error("registry storage failed during {op}")]
    Storage {
        /// What was being done.
        op: &'static str,
        /// The underlying error (SQL details live here, not in `Display`).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn tests_word(n: usize) -> &'static str {
    if n == 1 {
        "a manifest test"
    } else {
        "manifest tests"
    }
}

fn not_found(name: &FunctionName, version: Option<u32>) -> String {
    match version {
        Some(v) => format!("function {name} has no version {v}"),
        None => format!("no function {name}"),
    }
}

impl RegistryError {
    /// The outcome kind for refusals that have one (`not_found`,
    /// `not_active`, `forbidden`); other errors are for the service to map.
    pub fn kind(&self) -> Option<OutcomeKind> {
        match self {
            RegistryError::NotFound { .. }
            | RegistryError::ModuleNotFound { .. }
            | RegistryError::KeyNotFound { .. }
            | RegistryError::PolicyNotFound { .. } => Some(OutcomeKind::NotFound),
            RegistryError::NotActive { .. } => Some(OutcomeKind::NotActive),
            RegistryError::Forbidden { .. } => Some(OutcomeKind::Forbidden),
            _ => None,
        }
    }

    /// The kind of refusal, when the registry refused the action itself
    /// (rather than failing to carry it out); such refusals are recorded.
    pub fn refusal(&self) -> Option<RefusalKind> {
        match self {
            RegistryError::Forbidden { .. } => Some(RefusalKind::Forbidden),
            RegistryError::NotFound { .. }
            | RegistryError::KeyNotFound { .. }
            | RegistryError::PolicyNotFound { .. } => Some(RefusalKind::NotFound),
            RegistryError::IllegalTransition { .. }
            | RegistryError::HashMismatch { .. }
            | RegistryError::KeyAlreadyRevoked { .. }
            | RegistryError::FailingTests { .. }
            | RegistryError::VersionRace { .. } => Some(RefusalKind::Conflict),
            RegistryError::NotesRequired { .. }
            | RegistryError::ReportMismatch { .. }
            | RegistryError::Limit(_)
            | RegistryError::InvalidManifest(_)
            | RegistryError::InvalidPolicy(_) => Some(RefusalKind::InvalidRequest),
            _ => None,
        }
    }

    pub(crate) fn forbidden(reason: impl Into<String>) -> Self {
        RegistryError::Forbidden {
            reason: reason.into(),
        }
    }
}

/// Why an API key was not accepted. The service answers 401 to all three
/// verdicts alike and records the reason in the security audit stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not shaped like an aifn key.
    #[error("malformed API key")]
    Malformed,
    /// No such key, or the secret does not match it.
    #[error("unknown API key")]
    Unknown,
    /// The key existed and was revoked.
    #[error("revoked API key")]
    Revoked,
    /// The key could not be checked (not a verdict on the key).
    #[error("API key could not be checked: {0}")]
    Registry(#[from] RegistryError),
}
