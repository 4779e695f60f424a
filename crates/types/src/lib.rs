//! Shared vocabulary of the aifn pipeline: names and ids, roles, version
//! states, outcome kinds, the injected [`Context`], the one [`Limits`] type and
//! the module inspection report.
//!
//! Every other crate depends on this one and it depends on nothing but serde
//! and `time` (and, with the `rusqlite` or `postgres` feature, that
//! driver's traits for typed columns), so the words used in the registry, the runtime, the audit log,
//! the HTTP API and the CLI are the same words.

mod action;
mod context;
mod database;
mod guard;
mod limits;
mod manifest;
mod names;
mod outcome;
#[cfg(feature = "postgres")]
mod pg;
mod policy;
mod report;
mod role;
mod run;
mod script;
mod source;
#[cfg(feature = "rusqlite")]
mod sql;
mod state;
mod timestamp;

pub use action::{AuditTarget, Refusal, RefusalKind, RegistryAction, RegistryActionKind};
pub use context::{Context, LogLevel, LogLine, LogStream};
pub use database::{DatabaseUrl, DatabaseUrlError};
pub use guard::{Finding, FindingKind, GuardMode, GuardPattern, GuardSettings, TenantSettings};
pub use limits::{LimitError, Limits, LimitsRequest};
pub use manifest::{CapturePolicy, Expectation, Manifest, ManifestTest};
pub use names::{ExecutionId, FunctionName, NameError, Subject, TenantId};
pub use outcome::{OutcomeKind, UnknownKind};
pub use policy::{
    Admission, AgentPolicy, AllowedBy, Budget, FunctionLimits, FunctionPattern, PolicyDecision,
    RejectReason, TenantMode,
};
pub use report::{
    ExportInfo, ImportInfo, InspectionReport, MemoryInfo, ModuleReport, ReportDiff, TableInfo,
    TestResult,
};
pub use role::{Role, UnknownRole};
pub use run::RunKind;
pub use script::{CheckFinding, CheckRule, EngineInfo, ScriptReport};
pub use source::{Source, SourceInfo, SourceLanguage};
pub use state::{UnknownState, VersionState};
pub use timestamp::{Timestamp, TimestampError};
