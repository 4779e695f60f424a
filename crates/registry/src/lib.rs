//! The function registry: where a validated module waits for review and
//! from where only an approved one runs.
//!
//! Pipeline: upload → validate (runtime) → **registry** (`pending`) →
//! approve (`active`) → invoke. A module never runs until an approver of
//! its tenant, who is not its author, has inspected it and activated that
//! exact version, bound to its sha256.
//!
//! - Every query is scoped by tenant; names are unique within a tenant.
//! - Versions move through an explicit state machine ([`transition`]); the
//!   same table is enforced again by the database schema.
//! - Mutating calls take the acting [`Principal`] and check its role and
//!   tenant themselves, run in one serialized write transaction that
//!   re-reads what it decides on, and hand an [`aifn_types::RegistryAction`]
//!   to the [`AuditSink`] given at open, before commit: no action without
//!   its record. An action the registry refuses is recorded too, as
//!   refused, after its transaction rolled back.
//! - API keys are stored as the sha256 of their secret only.
//! - Agent policies and tenant settings are versioned; each change is a
//!   registry action with its before and after.
//!
//! Storage is one SQLite file (WAL, `synchronous=FULL`) by default, or a
//! PostgreSQL database that several nodes share
//! ([`Registry::open_postgres`]), behind an internal backend trait whose
//! signatures carry only the shared types; both enforce the same rules in
//! their schema.

mod audit;
mod budget;
mod decide;
mod error;
mod keys;
mod model;
mod policy;
mod postgres;
mod registry;
mod secret;
mod sqlite;
mod store;
mod transition;
mod upload;

pub use audit::{AuditSink, SinkError};
pub use budget::{BudgetVerdict, BudgetWindow, WindowCounts};
pub use error::{AuthError, RegistryError};
pub use model::{
    AgentInfo, Decision, FunctionDetail, FunctionSummary, KeyInfo, NewKey, PolicyInfo, Principal,
    StateCounts, TenantInfo, Upload, VersionInfo, VersionRef,
};
pub use registry::{DATABASE_FILE, Registry, RegistryOptions};
pub use transition::{VersionAction, transition};
pub use upload::check_manifest;
