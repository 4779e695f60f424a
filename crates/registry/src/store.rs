//! The storage boundary: plain Rust types only, so no backend's types
//! leak into the registry's rules. The registry's rules (roles, separation of duties,
//! the state machine, hashes, audit) live in `Registry`; a backend only
//! stores rows and runs write transactions serialized against each other.
//! SQLite is the one backend today; a PostgreSQL backend serving several
//! nodes implements the same two traits (`SERIALIZABLE` or row locks in
//! place of `BEGIN IMMEDIATE`).

use aifn_types::{FunctionName, ModuleReport, Subject, TenantId, Timestamp, VersionState};

use crate::{
    Decision, FunctionDetail, FunctionSummary, KeyInfo, RegistryError, VersionInfo, VersionRef,
};

pub(crate) type Result<T> = std::result::Result<T, RegistryError>;

/// The facts a decision re-reads inside its write transaction.
#[derive(Debug, Clone)]
pub(crate) struct VersionHead {
    pub(crate) id: i64,
    pub(crate) function_id: i64,
    pub(crate) version: u32,
    pub(crate) state: VersionState,
    pub(crate) sha256: String,
    pub(crate) author: Subject,
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
}

/// A registry backend.
pub(crate) trait RegistryStore: Send + Sync {
    /// Runs `body` in one write transaction, serialized with every other
    /// write; commits if it returns `Ok`, rolls back otherwise.
    fn write(&self, body: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()>;
    fn list_functions(&self, tenant: &TenantId) -> Result<Vec<FunctionSummary>>;
    fn function(&self, tenant: &TenantId, name: &FunctionName) -> Result<Option<FunctionDetail>>;
    fn version(&self, target: &VersionRef) -> Result<Option<VersionInfo>>;
    /// A tenant's versions in one state, by name then version.
    fn versions_in_state(&self, tenant: &TenantId, state: VersionState)
    -> Result<Vec<VersionInfo>>;
    fn active(&self, tenant: &TenantId, name: &FunctionName) -> Result<ActiveLookup>;
    fn module(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
    fn key(&self, key_id: &str) -> Result<Option<StoredKey>>;
    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>>;
}
