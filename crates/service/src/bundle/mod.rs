//! Evidence bundles: one file that shows an auditor what ran and who
//! decided it could, checkable offline without any database.
//!
//! A bundle holds, for one execution or for a function (one version or
//! all) in a time window: each version's registry info (manifest,
//! inspection report, sha256, decisions with actors and notes),
//! optionally its module bytes, the tenant's audit records (execution
//! records and the versions' registry records, refused ones too), and the
//! [`Evidence`] tying every record to a signed checkpoint of the audit
//! chain. [`verify_bundle`] checks all of it with no database: every hash
//! link, every checkpoint signature, each module's sha256, each decision
//! against its chained registry record, each version's upload record.
//!
//! Privacy: a bundle carries records of the caller's tenant only. Other
//! tenants' records (and host-level ones) that lie between a record and
//! its checkpoint appear as links only: `seq`, `prev_hash`, `hash` and
//! `body_sha256`, never their body, tenant, stream or time (chain format 2
//! is what makes that possible). A segment that would cross another
//! tenant's record from before chain format 2 cannot be shown, and the
//! bundle is refused (`conflict`).
//!
//! Limits of what it proves: the records and decisions are proven by the
//! chain; the manifest and report are as the registry holds them, tied to
//! the chain through the module sha256 of the upload record. A bundle is
//! not signed itself, so it proves that what it holds is in the log, not
//! that nothing was left out; verify against the trusted public key of
//! the audit log (`--public-key`), or a re-signed copy passes as
//! consistent only.

mod build;
mod request;
mod verify;

use aifn_audit::Evidence;
use aifn_registry::{Principal, VersionInfo};
use aifn_types::{Role, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::require;
use crate::{Service, ServiceError};

pub(crate) use build::build;
pub use request::BundleRequest;
pub use verify::{BundleError, BundleReport, verify_bundle};

/// The `format` of the bundles this build writes and verifies.
pub const BUNDLE_FORMAT: &str = "aifn-evidence-bundle/1";

/// The most audit records one bundle holds.
pub const MAX_BUNDLE_RECORDS: usize = 10_000;

/// What `how_to_verify` says.
const HOW_TO_VERIFY: &str = "\
Verify offline: aifn audit verify-bundle FILE --public-key HEX, with the public key of the \
audit log's signing key obtained out of band (without it the bundle is only checked for \
consistency with the key its checkpoints name). By hand: (1) for each evidence record, \
hash = sha256(prev_hash || seq as 8 bytes big-endian || sha256(body)) when seq >= \
chain_format_2_from, else sha256(prev_hash || seq || body), hashes as raw 32 bytes; for each \
link, hash = sha256(prev_hash || seq || body_sha256). (2) In each run of consecutive seqs, \
each prev_hash equals the hash before it, and the run starts with a record. (3) Each run ends \
at a checkpoint with that seq and hash; its Ed25519 signature (hex) verifies with public_key \
over the bytes \"aifn-audit-checkpoint-v1\\n\" followed by the JSON object {\"hash\",\"node\",\
\"seq\",\"time\"} with keys sorted and no whitespace. (4) Each record body has this bundle's \
tenant_id. (5) module_base64, when present, decodes to bytes whose sha256 is the version's \
sha256. (6) Each version's upload and each of its decisions (action, actor, sha256, notes) \
matches a registry record among the evidence records, and each execution record's \
module_sha256 is one of the bundled versions'.";

/// One file of evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// The tenant every record belongs to.
    pub tenant_id: TenantId,
    /// How to verify it, by tool and by hand.
    pub how_to_verify: String,
    /// What was asked for.
    pub request: BundleRequest,
    /// The versions involved, by version number.
    pub versions: Vec<BundledVersion>,
    /// The records, their links to checkpoints, and the checkpoints.
    pub evidence: Evidence,
}

/// A version in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundledVersion {
    /// Manifest, report, sha256, author, decisions with actors and notes.
    pub info: VersionInfo,
    /// The module bytes (standard base64), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_base64: Option<String>,
}

impl Service {
    /// An evidence bundle of the caller's tenant (approvers and admins):
    /// see [`BundleRequest`]. More than [`MAX_BUNDLE_RECORDS`] records is
    /// `invalid_request` (narrow the window); nothing to bundle is
    /// `not_found`. Signs a checkpoint first when none covers the newest
    /// record yet.
    pub fn bundle(&self, who: &Principal, req: BundleRequest) -> Result<Bundle, ServiceError> {
        require(who, &[Role::Admin, Role::Approver], "an evidence bundle")?;
        build(&self.inner.audit, &self.inner.registry, &who.tenant, req)
    }
}

impl Bundle {
    pub(crate) fn new(
        tenant_id: TenantId,
        request: BundleRequest,
        versions: Vec<BundledVersion>,
        evidence: Evidence,
    ) -> Bundle {
        Bundle {
            format: BUNDLE_FORMAT.to_owned(),
            created_at: Timestamp::now(),
            tenant_id,
            how_to_verify: HOW_TO_VERIFY.to_owned(),
            request,
            versions,
            evidence,
        }
    }
}
