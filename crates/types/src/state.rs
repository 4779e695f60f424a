use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a function version is in its life. Only `active` versions run.
/// The registry owns the transitions between these states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Uploaded, awaiting an approver. Cannot run.
    Pending,
    /// Approved; the one version that runs.
    Active,
    /// Refused by an approver. Final.
    Rejected,
    /// Was active, withdrawn by an approver. Final.
    Revoked,
    /// Was active, replaced by a newer approved version. Final.
    Superseded,
}

impl VersionState {
    /// Every state, in a stable order.
    pub const ALL: [VersionState; 5] = [
        VersionState::Pending,
        VersionState::Active,
        VersionState::Rejected,
        VersionState::Revoked,
        VersionState::Superseded,
    ];

    /// The product name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Pending => "pending",
            VersionState::Active => "active",
            VersionState::Rejected => "rejected",
            VersionState::Revoked => "revoked",
            VersionState::Superseded => "superseded",
        }
    }
}

/// A state name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl fmt::Display for UnknownState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown version state {:?}", self.0)
    }
}

impl std::error::Error for UnknownState {}

impl std::str::FromStr for VersionState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        VersionState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
