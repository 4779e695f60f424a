//! The use cases of aifn, with no HTTP in sight: authenticate a key,
//! upload a module (validate and compile it in the runtime, store it
//! pending in the registry), approve/reject/revoke, invoke an active
//! function, publish the tool catalog, query the audit log.
//!
//! Pipeline: upload → validate (runtime) → registry (pending) → approve →
//! active → **invoke (here)** → runtime → audit. This crate is where the
//! rules that span crates live: the tenant always comes from the key; a
//! call is checked (role, the gateway's policy and budgets, rate,
//! schema) before it runs; every attempt,
//! refusals included, is recorded in the audit log before the caller gets
//! an answer, and nothing runs while the audit log cannot write.
//!
//! Every method is synchronous and may block (SQLite, fsync, the guest):
//! async callers run them on a blocking thread.

mod active_cache;
mod admin;
mod auth;
mod budget;
mod bundle;
mod catalog;
mod clock;
mod config;
mod diff;
mod error;
mod functions;
mod gateway;
mod guard;
mod ids;
mod invoke;
mod limiter;
mod metrics;
mod policy;
mod run;
mod schema;
mod service;
mod sink;
mod testing;
mod ticket;
mod versions;
mod wire;

pub use admin::{DataDir, LocalAdmin, migrate as migrate_database, verify as verify_audit};
pub use admin::{DataDirError, DataDirLock};
pub use aifn_audit::{
    AuditEntry, AuditPage, AuditQuery, AuditRecord, DEFAULT_PAGE as AUDIT_DEFAULT_PAGE,
    MAX_PAGE as AUDIT_MAX_PAGE, SecurityQuery, Stream as AuditStream, VerifyReport,
};
pub use aifn_audit::{Evidence, EvidenceError, EvidenceLink, EvidenceRecord, KeySource};
pub use aifn_registry::{FunctionDetail, FunctionSummary, KeyInfo, NewKey, Principal, VersionInfo};
pub use aifn_runtime::CancelToken;
pub use auth::{Credential, Origin};
pub use budget::{Usage, WindowUsage};
pub use bundle::{
    BUNDLE_FORMAT, Bundle, BundleError, BundleReport, BundleRequest, BundledVersion,
    MAX_BUNDLE_RECORDS, verify_bundle,
};
pub use catalog::{AnthropicTool, OpenAiFunction, OpenAiTool, ToolDefinition, ToolFormat};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AuditSettings, ServiceConfig, TenantLimits};
pub use diff::{
    Change, DiffRelation, DiffReport, FieldChange, JsonChange, JsonChangeKind, SourceDiff,
    TestChange, TestChangeKind, VersionDiff, json_diff, line_diff,
};
pub use error::{ErrorKind, ServiceError, Violation};
pub use functions::{Decision, UploadRequest};
pub use guard::{GuardError, OutputGuard};
pub use invoke::{InvokeOutcome, InvokeRequest, Refused};
pub use metrics::Metrics;
pub use policy::{AgentInfo, PolicyInfo, TenantInfo};
pub use service::Service;
pub use testing::{ReplayReport, ReplayVerdict, TestRunRequest};
pub use ticket::InvokeTicket;
pub use wire::{
    AgentList, ErrorBody, ErrorDetail, FunctionList, InvocationFailure, InvokeReply, Readiness,
    Status, TenantModeBody, ToolList, VersionList,
};
