//! Running a version for people rather than agents: the manifest's tests
//! at upload, test runs by approvers and authors (any state, pending
//! included), and replays of captured executions. None of them is an
//! agent's execution: no gateway policy, budget or invocation limiter
//! applies, they are not counted as invocations, and each is recorded as
//! its own run kind with who ran it.

mod cap;
mod replay;
mod test_run;
mod upload_tests;

pub(crate) use cap::HourlyCap;
pub use replay::{ReplayReport, ReplayVerdict};
pub use test_run::TestRunRequest;
