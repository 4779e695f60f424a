use std::fmt;

use aifn_types::VersionState;
use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// Something that changes a version's state. Each one that happens is kept
/// as a [`Decision`](crate::Decision) on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionAction {
    /// An approver activates a pending version.
    Approve,
    /// An approver refuses a pending version.
    Reject,
    /// An approver withdraws the active version.
    Revoke,
    /// The registry retires the active version because another version of
    /// the same function was approved. Never asked for directly.
    Supersede,
}

impl VersionAction {
    /// Every action, in a stable order.
    pub const ALL: [VersionAction; 4] = [
        VersionAction::Approve,
        VersionAction::Reject,
        VersionAction::Revoke,
        VersionAction::Supersede,
    ];

    /// The product name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionAction::Approve => "approve",
            VersionAction::Reject => "reject",
            VersionAction::Revoke => "revoke",
            VersionAction::Supersede => "supersede",
        }
    }
}

impl fmt::Display for VersionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version state machine, whole: the state `action` leads to from
/// `from`, or `IllegalTransition`.
///
/// ```text
/// pending --approve--> active --revoke----> revoked
///    |                   '----supersede--> superseded
///    '-----reject----> rejected
/// ```
///
/// `rejected`, `revoked` and `superseded` are final. The schema enforces the
/// same table with a trigger, so a bug elsewhere cannot bypass it.
pub fn transition(
    from: VersionState,
    action: VersionAction,
) -> Result<VersionState, RegistryError> {
    use VersionAction as A;
    use VersionState as S;
    match (from, action) {
        (S::Pending, A::Approve) => Ok(S::Active),
        (S::Pending, A::Reject) => Ok(S::Rejected),
        (S::Active, A::Revoke) => Ok(S::Revoked),
        (S::Active, A::Supersede) => Ok(S::Superseded),
        (from, action) => Err(RegistryError::IllegalTransition { from, action }),
    }
}
