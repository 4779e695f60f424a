use std::fmt;

use aifn_types::{
    AgentPolicy, FunctionName, InspectionReport, Manifest, ModuleReport, Role, Source, SourceInfo,
    Subject, TenantId, TenantSettings, TestResult, Timestamp, VersionState,
};
use serde::{Deserialize, Serialize};

use crate::VersionAction;

/// Who is acting: the API key that authenticated, and what it speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The key's id (public; never the secret).
    pub key_id: String,
    /// The one tenant the key belongs to.
    pub tenant: TenantId,
    /// What the key may do in that tenant.
    pub role: Role,
    /// The person or service account the key speaks for.
    pub subject: Subject,
}

/// A freshly created API key. The secret is shown once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The key's id, also embedded in the secret.
    pub key_id: String,
    /// The whole secret to hand to the key's holder.
    pub secret: String,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What is known about an API key, without its secret or the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's id.
    pub key_id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its role.
    pub role: Role,
    /// The subject it speaks for.
    pub subject: Subject,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: Subject,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Who revoked it, if anyone did.
    pub revoked_by: Option<Subject>,
}

/// One state change of a version: who, when, why, and the module hash it
/// was bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What was done.
    pub action: VersionAction,
    /// Who did it (for `supersede`, the approver of the newer version).
    pub actor: Subject,
    /// When.
    pub at: Timestamp,
    /// The notes given (for `supersede`, the version that replaced it).
    pub notes: String,
    /// The module sha256 the decision was bound to.
    pub sha256: String,
    /// An approval taken although manifest tests failed at upload, with
    /// the approver's explicit override (the notes say why). Absent when
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub override_failing_tests: bool,
}

/// Everything about one version except its module bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The tenant the function belongs to.
    pub tenant: TenantId,
    /// The function name.
    pub name: FunctionName,
    /// The version number, from 1.
    pub version: u32,
    /// Lowercase hex sha256 of the module.
    pub sha256: String,
    /// Who uploaded it.
    pub author: Subject,
    /// When.
    pub uploaded_at: Timestamp,
    /// Where it is in its life.
    pub state: VersionState,
    /// The manifest uploaded with it.
    pub manifest: Manifest,
    /// What approvers inspect.
    pub report: InspectionReport,
    /// Its decisions, oldest first.
    pub decisions: Vec<Decision>,
    /// The source the module was built from, for a source upload (the
    /// text itself through [`Registry::source`](crate::Registry::source)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
}

/// How many versions of a function are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// Awaiting an approver.
    pub pending: u32,
    /// Running (0 or 1).
    pub active: u32,
    /// Refused.
    pub rejected: u32,
    /// Withdrawn.
    pub revoked: u32,
    /// Replaced by a newer approved version.
    pub superseded: u32,
}

impl StateCounts {
    /// The count for one state.
    pub fn get(&self, state: VersionState) -> u32 {
        match state {
            VersionState::Pending => self.pending,
            VersionState::Active => self.active,
            VersionState::Rejected => self.rejected,
            VersionState::Revoked => self.revoked,
            VersionState::Superseded => self.superseded,
        }
    }
}

/// One function of a tenant, at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSummary {
    /// The function name.
    pub name: FunctionName,
    /// The description in the active version's manifest: what agents see.
    /// `None` when no version is active.
    pub description: Option<String>,
    /// The version that runs, if any.
    pub active_version: Option<u32>,
    /// The newest version number.
    pub latest_version: u32,
    /// The newest version's state.
    pub latest_state: VersionState,
    /// Versions per state.
    pub counts: StateCounts,
}

/// A function with all its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDetail {
    /// The summary.
    pub summary: FunctionSummary,
    /// Every version, newest first.
    pub versions: Vec<VersionInfo>,
}

/// Names one version of one tenant's function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionRef {
    /// The tenant the function belongs to.
    pub tenant: TenantId,
    /// The function name.
    pub name: FunctionName,
    /// The version number.
    pub version: u32,
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// A validated module to store as a new pending version. The tenant and
/// author come from the acting [`Principal`].
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The function it is a version of (created on first upload).
    pub name: FunctionName,
    /// The author's manifest.
    pub manifest: Manifest,
    /// The module bytes.
    pub module: &'a [u8],
    /// The runtime's report on exactly these bytes.
    pub report: ModuleReport,
    /// The manifest's tests as the service ran them on these bytes, in
    /// manifest order; stored in the inspection report.
    pub tests: Vec<TestResult>,
    /// The source the module was built from, for a source upload.
    pub source: Option<Source>,
    /// The module this one runs inside, for a JavaScript version: its
    /// engine, stored by sha256 beside it (once for all versions on it), so
    /// a later aifn release that no longer embeds that engine still runs
    /// exactly what was approved. Required when the report has a script,
    /// and must be the engine it names.
    pub runs_on: Option<&'a [u8]>,
    /// The version number the tests ran as: when the next number is
    /// another (a racing upload took it), the upload is refused with
    /// [`RegistryError::VersionRace`](crate::RegistryError::VersionRace)
    /// and stores nothing. `None`: whatever number is next.
    pub expected_version: Option<u32>,
}

/// An agent's policy as stored, with its version (per tenant and agent:
/// 1 for the first set, one more for each set after, deletes included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// The agent (the subject of its keys).
    pub subject: Subject,
    /// The version of this policy.
    pub version: u64,
    /// The policy.
    pub policy: AgentPolicy,
    /// When it was set.
    pub updated_at: Timestamp,
    /// The admin who set it.
    pub updated_by: Subject,
}

/// An agent of a tenant: a subject with agent keys, a policy, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent.
    pub subject: Subject,
    /// Its agent keys that are not revoked.
    pub active_keys: u32,
    /// The version of its policy; `None` without one (it invokes nothing
    /// unless the tenant is `open`).
    pub policy_version: Option<u64>,
}

/// A tenant's settings and their version (0 while none were ever set:
/// then they are the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its settings.
    pub settings: TenantSettings,
    /// Their version: one more for each change.
    pub version: u64,
    /// When they were last changed.
    pub updated_at: Option<Timestamp>,
    /// The admin who last changed them.
    pub updated_by: Option<Subject>,
}

impl TenantInfo {
    /// The defaults of a tenant that never changed its settings.
    pub fn defaults(tenant_id: TenantId) -> TenantInfo {
        TenantInfo {
            tenant_id,
            settings: TenantSettings::default(),
            version: 0,
            updated_at: None,
            updated_by: None,
        }
    }
}
