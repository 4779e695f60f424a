//! The storage boundary: plain Rust types only, so no backend's types
//! leak into the registry's rules. The registry's rules (roles, separation of duties,
//! the state machine, hashes, audit) live in `Registry`; a backend only
//! stores rows and runs write transactions serialized against each other.
//! Two backends implement them: SQLite (one node, `BEGIN IMMEDIATE`) and
//! PostgreSQL (several nodes, one advisory lock per write transaction).

use aifn_types::{
    FunctionName, ModuleReport, Source, SourceLanguage, Subject, TenantId, Timestamp, VersionState,
};

use crate::{
    AgentInfo, Decision, FunctionDetail, FunctionSummary, KeyInfo, PolicyInfo, RegistryError,
    TenantInfo, VersionInfo, VersionRef,
};

pub(crate) type Result<T> = std::result::Result<T, RegistryError>;

/// A stored JSON column, decoded; one that does not decode is corruption.
pub(crate) fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| RegistryError::Corrupt(format!("{what}: {e}")))
}

/// A stored source language, read like every other column: validated.
pub(crate) fn language(text: &str) -> Result<SourceLanguage> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| RegistryError::Corrupt(format!("source language: {e}")))
}

/// The facts a decision re-reads inside its write transaction.
#[derive(Debug, Clone)]
pub(crate) struct VersionHead {
    pub(crate) id: i64,
    pub(crate) function_id: i64,
    pub(crate) version: u32,
    pub(crate) state: VersionState,
    pub(crate) sha256: String,
    pub(crate) author: Subject,
    /// The manifest tests that failed at upload, from the stored report.
    pub(crate) failing_tests: Vec<String>,
}

/// A version row to insert; always `pending`.
pub(crate) struct NewVersionRow<'a> {
    pub(crate) function_id: i64,
    pub(crate) version: u32,
    pub(crate) sha256: &'a str,
    pub(crate) author: &'a Subject,
    pub(crate) uploaded_at: Timestamp,
    pub(crate) description: &'a str,
    pub(crate) manifest_json: &'a str,
    pub(crate) report_json: &'a str,
    /// The source and the sha256 of its text, for a source upload.
    pub(crate) source: Option<(&'a Source, &'a str)>,
}

/// A key as stored: its info and the sha256 of its secret.
pub(crate) struct StoredKey {
    pub(crate) info: KeyInfo,
    pub(crate) secret_sha256: Vec<u8>,
}

/// What `active` finds for a name, in one query.
pub(crate) enum ActiveLookup {
    NoFunction,
    NoActive,
    Active(Box<VersionInfo>),
}

/// Operations inside one write transaction. Everything done through it
/// commits together or not at all.
pub(crate) trait WriteTx {
    fn function_id(&mut self, tenant: &TenantId, name: &FunctionName) -> Result<Option<i64>>;
    fn insert_function(
        &mut self,
        tenant: &TenantId,
        name: &FunctionName,
        created_at: Timestamp,
    ) -> Result<i64>;
    /// The newest version number of a function and its module report.
    fn latest_report(&mut self, function_id: i64) -> Result<Option<(u32, ModuleReport)>>;
    /// Stores module bytes under their sha256 unless already there.
    fn put_module(&mut self, sha256: &str, bytes: &[u8]) -> Result<()>;
    fn insert_version(&mut self, row: &NewVersionRow<'_>) -> Result<()>;
    fn version_head(&mut self, target: &VersionRef) -> Result<Option<VersionHead>>;
    fn active_head(&mut self, function_id: i64) -> Result<Option<VersionHead>>;
    /// Moves a version from `from` to `to`; fails if it is no longer in `from`.
    fn set_state(&mut self, version_id: i64, from: VersionState, to: VersionState) -> Result<()>;
    fn insert_decision(&mut self, version_id: i64, decision: &Decision) -> Result<()>;
    fn version(&mut self, target: &VersionRef) -> Result<Option<VersionInfo>>;
    fn insert_key(&mut self, key: &StoredKey) -> Result<()>;
    fn key(&mut self, key_id: &str) -> Result<Option<KeyInfo>>;
    fn revoke_key(&mut self, key_id: &str, at: Timestamp, by: &Subject) -> Result<()>;
    /// The agent's current policy.
    fn policy(&mut self, tenant: &TenantId, subject: &Subject) -> Result<Option<PolicyInfo>>;
    /// The highest policy version ever set for the agent (0 for none),
    /// deleted ones included.
    fn last_policy_version(&mut self, tenant: &TenantId, subject: &Subject) -> Result<u64>;
    /// Appends `info` to the agent's policy history and makes it current;
    /// fails if its version is taken.
    fn put_policy(&mut self, tenant: &TenantId, info: &PolicyInfo) -> Result<()>;
    /// Removes the agent's current policy (its history stays).
    fn delete_policy(&mut self, tenant: &TenantId, subject: &Subject) -> Result<()>;
    fn tenant_settings(&mut self, tenant: &TenantId) -> Result<TenantInfo>;
    /// Stores `info`, whose version must be one more than the stored one.
    fn put_tenant_settings(&mut self, info: &TenantInfo) -> Result<()>;
}

fn no_counters() -> RegistryError {
    RegistryError::Storage {
        op: "count budgets",
        source: "this database keeps no budget counters (SQLite: the node counts)".into(),
    }
}

/// A registry backend.
pub(crate) trait RegistryStore: Send + Sync {
    /// Calls `on_change` whenever another process may have changed the
    /// registry (PostgreSQL: another node's commit). SQLite has one writer
    /// process per data dir that matters, and this service invalidates
    /// its own caches itself: nothing to watch.
    fn watch(&self, on_change: std::sync::Arc<dyn Fn() + Send + Sync>) -> Result<()> {
        let _ = on_change;
        Ok(())
    }

    /// Whether the budget counters below are kept (shared by a fleet).
    fn counts_budgets(&self) -> bool {
        false
    }

    /// See [`crate::Registry::budget_admit`].
    fn budget_admit(
        &self,
        w: crate::BudgetWindow<'_>,
        agent: &aifn_types::Budget,
        tenant: &aifn_types::Budget,
    ) -> Result<crate::BudgetVerdict> {
        let _ = (w, agent, tenant);
        Err(no_counters())
    }

    /// See [`crate::Registry::budget_add_fuel`].
    fn budget_add_fuel(&self, w: crate::BudgetWindow<'_>, fuel: u64) -> Result<()> {
        let _ = (w, fuel);
        Err(no_counters())
    }

    /// See [`crate::Registry::budget_counts`].
    fn budget_counts(
        &self,
        w: crate::BudgetWindow<'_>,
    ) -> Result<(crate::WindowCounts, crate::WindowCounts)> {
        let _ = w;
        Err(no_counters())
    }

    /// Runs `body` in one write transaction, serialized with every other
    /// write; commits if it returns `Ok`, rolls back otherwise.
    fn write(&self, body: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()>;
    fn list_functions(&self, tenant: &TenantId) -> Result<Vec<FunctionSummary>>;
    fn function(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<FunctionDetail>>;
    fn version(&self, target: &VersionRef) -> Result<Option<VersionInfo>>;
    /// The newest version number of a function, `None` without one.
    fn latest_version(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<u32>>;
    /// A version's source: `None` without such a version, `Some(None)`
    /// when it was not uploaded from source.
    fn source(&self, target: &VersionRef) -> Result<Option<Option<Source>>>;
    /// A tenant's versions in one state, by name then version.
    fn versions_in_state(&self, tenant: &TenantId, state: VersionState)
    -> Result<Vec<VersionInfo>>;
    fn active(&self, tenant: &TenantId, name: &FunctionName) -> Result<ActiveLookup>;
    fn module(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    fn key(&self, key_id: &str) -> Result<Option<StoredKey>>;
    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>>;
    /// The tenant's current policies, by subject.
    fn policies(&self, tenant: &TenantId) -> Result<Vec<PolicyInfo>>;
    fn policy(&self, tenant: &TenantId, subject: &Subject) -> Result<Option<PolicyInfo>>;
    /// The tenant's settings (the defaults, version 0, if never set).
    fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantInfo>;
    /// The tenant's agents, by subject.
    fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentInfo>>;
    /// The tenants whose stored mode is `open`, by id.
    fn open_tenants(&self) -> Result<Vec<TenantId>>;
}
