//! Test runs: an approver, or the version's own author, runs an input on
//! any version of the tenant (pending included; no active version
//! needed). The answer has the shape of an invocation's. Every attempt,
//! refusals included, is recorded as a test run with who ran it; test
//! runs per tenant and hour are capped (`test_runs_per_hour`).

use aifn_registry::Principal;
use aifn_types::{Context, FunctionName, Role, RunKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::active_cache::Active;
use crate::auth::require;
use crate::invoke::{InvokeOutcome, Refused};
use crate::run::{Attempt, Finished, RunSpec};
use crate::{Service, ServiceError, ids};

/// A test run: an input, and the end user the run acts for (the caller
/// when not given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRunRequest {
    /// The input document.
    pub input: Value,
    /// The user id the guest sees; default the caller's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Service {
    /// Runs `req.input` on `function@version` for `who`: an approver, or
    /// the author of that version. The version may be in any state. The
    /// run is recorded (before this returns) as a test run, with `who` as
    /// agent; it is not an agent's execution (no policy, budget or
    /// invocation limit; not counted in `aifn_invocations_total`).
    pub fn test_run(
        &self,
        who: &Principal,
        (function, version): (&str, u32),
        req: TestRunRequest,
    ) -> Result<InvokeOutcome, Refused> {
        let now = crate::run::start_time();
        let ctx = Context {
            tenant_id: who.tenant.to_string(),
            agent_id: who.subject.to_string(),
            user_id: req.user_id.unwrap_or_else(|| who.subject.to_string()),
            function: function.to_owned(),
            version: version.to_string(),
            execution_id: ids::execution_id(now),
        };
        let at = Attempt::new(ctx, now, RunKind::TestRun);
        if !self.inner.audit.is_healthy() {
            let err = ServiceError::Unavailable {
                message: "the audit log cannot write; test runs are refused".into(),
            };
            return Err(self.refuse(&at, b"", None, err));
        }
        // Serializing a `Value` cannot fail (its keys are strings).
        let input = serde_json::to_vec(&req.input).unwrap_or_default();
        let admitted = self
            .admit_test_run(who, function, version)
            .and_then(|active| Ok((self.tenant_view(&who.tenant)?, active)));
        let (tenant, active) = match admitted {
            Ok(a) => a,
            Err(e) => return Err(self.refuse(&at, &input, None, e)),
        };
        let spec = RunSpec {
            version: &active.runnable(),
            tenant: &tenant,
            guest: &at.ctx,
            start_time: now,
            input: &input,
        };
        let execution_id = at.ctx.execution_id.clone();
        match self.run_recorded(&at, &spec) {
            Ok(Finished {
                outcome: Ok(ran),
                duration,
                ..
            }) => Ok(ran.outcome(execution_id, function.to_owned(), version, duration)),
            Ok(Finished {
                outcome: Err(e), ..
            }) => Err(Refused {
                error: e,
                execution_id: Some(execution_id),
            }),
            Err(e) => Err(Refused {
                error: e,
                execution_id: None,
            }),
        }
    }

    /// The role, the version, the author rule, then the hourly cap; the
    /// version ready to run.
    fn admit_test_run(
        &self,
        who: &Principal,
        function: &str,
        version: u32,
    ) -> Result<Active, ServiceError> {
        require(who, &[Role::Approver, Role::Author], "a test run")?;
        let name = FunctionName::new(function).map_err(|_| ServiceError::NotFound {
            what: format!("function {function}"),
        })?;
        let info = self
            .inner
            .registry
            .get_version(&who.tenant, &name, version)?;
        if who.role == Role::Author && info.author != who.subject {
            return Err(ServiceError::Forbidden {
                reason: format!(
                    "an author may test-run only their own versions; {name}@{version} is {}'s",
                    info.author
                ),
            });
        }
        let now = self.inner.gateway.clock.now();
        self.inner
            .test_runs
            .admit(&who.tenant, now)
            .map_err(|retry_after| ServiceError::RateLimited {
                retry_after,
                scope: "test_runs",
            })?;
        self.prepare(info)
    }
}
