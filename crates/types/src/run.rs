use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a version ran: an agent's invocation, or a run by a person that is
/// never an agent's execution (not charged to budgets, not counted as an
/// invocation, recorded with who ran it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    rename_all = "snake_case",
    expecting = "invocation, test_run or replay"
)]
pub enum RunKind {
    /// An agent called an active version.
    #[default]
    Invocation,
    /// An approver or the author ran a test input (any state), or the host
    /// ran a manifest test at upload.
    TestRun,
    /// An approver or admin re-ran a recorded execution from its capture.
    Replay,
}

impl RunKind {
    /// The product name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Invocation => "invocation",
            RunKind::TestRun => "test_run",
            RunKind::Replay => "replay",
        }
    }

    /// True for an agent's invocation (the default, left out of records).
    pub fn is_invocation(&self) -> bool {
        *self == RunKind::Invocation
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
