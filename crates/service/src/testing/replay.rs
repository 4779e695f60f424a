//! Replay, a forensic tool: an execution whose input was captured (the
//! manifest's `capture`) runs again, in the recorded version, with the
//! recorded input, context (its original execution id included, the seed
//! of the guest's randomness) and start time (kept to the millisecond, as
//! every run starts), under the version's limits: a policy that lowered
//! an agent's limits is not applied again. The verdict says whether it
//! reproduced the recorded output. The replay is recorded as its own run,
//! under a new execution id, naming the one it re-ran and who ran it; so
//! is a refused replay of an execution that exists.

use aifn_audit::{AuditRecord, ExecutionRecord};
use aifn_registry::Principal;
use aifn_types::{Context, FunctionName, OutcomeKind, Role, RunKind, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::require;
use crate::run::{Attempt, RunSpec};
use crate::{Service, ServiceError, ids};

/// Whether a replay gave what was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayVerdict {
    /// The same outcome kind and output sha256, from the recorded input.
    Reproduced,
    /// Another outcome or output, or a capture that is not the recorded
    /// input.
    Diverged,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The execution replayed.
    pub execution_id: String,
    /// The replay's own execution id (in its audit record).
    pub replay_execution_id: String,
    /// The function.
    pub function: String,
    /// The version that ran (the recorded one).
    pub version: u32,
    /// Reproduced or diverged.
    pub verdict: ReplayVerdict,
    /// How the recorded execution ended.
    pub recorded_kind: OutcomeKind,
    /// How the replay ended.
    pub replayed_kind: OutcomeKind,
    /// The recorded output's sha256.
    pub recorded_output_sha256: Option<String>,
    /// The replay's output sha256.
    pub replayed_output_sha256: Option<String>,
    /// Whether the captured input hashes to the record's `input_sha256`.
    pub input_matches_record: bool,
    /// Why it diverged; `None` when reproduced.
    pub message: Option<String>,
}

impl Service {
    /// Replays the caller's tenant's execution `execution_id` (approvers
    /// and admins). `not_found` without such an execution in the tenant;
    /// `conflict` when its input was not captured (or the capture
    /// expired). A capture that is not the recorded input still runs, and
    /// diverges.
    pub fn replay(
        &self,
        who: &Principal,
        execution_id: &str,
    ) -> Result<ReplayReport, ServiceError> {
        require(
            who,
            &[Role::Approver, Role::Admin],
            "replaying an execution",
        )?;
        if !self.inner.audit.is_healthy() {
            return Err(ServiceError::Unavailable {
                message: "the audit log cannot write; replays are refused".into(),
            });
        }
        let audit_error = |e| ServiceError::internal("audit lookup", &e);
        let not_found = || ServiceError::NotFound {
            what: format!("execution {execution_id}"),
        };
        let entry = self
            .inner
            .audit
            .execution(&who.tenant, execution_id)
            .map_err(audit_error)?
            .ok_or_else(not_found)?;
        let AuditRecord::Execution(recorded) = entry.record else {
            return Err(not_found());
        };
        let now = crate::run::start_time();
        let replay_id = ids::execution_id(now);
        let ctx = Context {
            tenant_id: recorded.tenant_id.clone(),
            agent_id: who.subject.to_string(),
            user_id: recorded.user_id.clone(),
            function: recorded.function.clone(),
            version: recorded.version.map(|v| v.to_string()).unwrap_or_default(),
            execution_id: replay_id.clone(),
        };
        let mut at = Attempt::new(ctx, now, RunKind::Replay);
        at.replay_of = Some(recorded.execution_id.clone());
        // From here on a refusal is recorded, as a replay of this execution.
        // Replays count against the tenant's hourly test runs.
        let capped = self
            .inner
            .test_runs
            .admit(&who.tenant, self.inner.gateway.clock.now())
            .map_err(|retry_after| ServiceError::RateLimited {
                retry_after,
                scope: "test_runs",
            });
        let prepared = capped
            .and_then(|()| self.captured_input(who, &recorded))
            .and_then(|capture| {
                let (version, active) = self.recorded_version(&who.tenant, &recorded)?;
                Ok((capture, version, active, self.tenant_view(&who.tenant)?))
            });
        let (capture, version, active, tenant) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let sha256 = recorded.module_sha256.as_deref();
                return Err(self.refuse(&at, b"", sha256, e).error);
            }
        };
        // The guest sees the recorded context, the original execution id
        // included, as it did then.
        let guest = Context {
            agent_id: recorded.agent_id.clone(),
            execution_id: recorded.execution_id.clone(),
            ..at.ctx.clone()
        };
        let spec = RunSpec {
            version: &active.runnable(),
            tenant: &tenant,
            guest: &guest,
            start_time: recorded.time.into(),
            input: &capture.input,
        };
        let finished = self.run_recorded(&at, &spec)?;
        if let Some(refused) = finished.no_capacity() {
            return Err(refused);
        }
        let input_matches_record =
            hex::encode(Sha256::digest(&capture.input)) == recorded.input_sha256;
        let replayed_kind = finished.kind();
        let message = if !input_matches_record {
            Some(
                "the captured input does not hash to the record's input_sha256: the capture \
                 was altered"
                    .to_owned(),
            )
        } else if replayed_kind != recorded.outcome {
            Some(format!(
                "the replay ended in {replayed_kind}, the recorded execution in {}",
                recorded.outcome
            ))
        } else if finished.output_sha256 != recorded.output_sha256 {
            Some("the replay's output is not the recorded output".to_owned())
        } else {
            None
        };
        tracing::info!(tenant = %who.tenant, execution_id, replay_execution_id = %replay_id, reproduced = message.is_none(), "replayed");
        Ok(ReplayReport {
            execution_id: recorded.execution_id,
            replay_execution_id: replay_id,
            function: recorded.function,
            version,
            verdict: if message.is_none() {
                ReplayVerdict::Reproduced
            } else {
                ReplayVerdict::Diverged
            },
            recorded_kind: recorded.outcome,
            replayed_kind,
            recorded_output_sha256: recorded.output_sha256,
            replayed_output_sha256: finished.output_sha256,
            input_matches_record,
            message,
        })
    }

    /// The input captured for `recorded`: `conflict` without one.
    fn captured_input(
        &self,
        who: &Principal,
        recorded: &ExecutionRecord,
    ) -> Result<aifn_audit::StoredCapture, ServiceError> {
        let id = &recorded.execution_id;
        self.inner
            .audit
            .captured(who.tenant.as_str(), id)
            .map_err(|e| ServiceError::internal("audit lookup", &e))?
            .ok_or_else(|| ServiceError::Conflict {
                message: format!(
                    "execution {id} has no captured input to replay: its version's manifest \
                     has no capture, or the capture expired; a manifest with [capture] \
                     (retention_days) makes the executions of its version replayable"
                ),
            })
    }

    /// The version an execution ran, ready to run again: its module is
    /// the recorded one.
    fn recorded_version(
        &self,
        tenant: &TenantId,
        recorded: &ExecutionRecord,
    ) -> Result<(u32, crate::active_cache::Active), ServiceError> {
        let did_not_run = || ServiceError::Conflict {
            message: format!(
                "execution {} ran no version: there is nothing to replay",
                recorded.execution_id
            ),
        };
        let (Some(version), Some(sha256)) = (recorded.version, recorded.module_sha256.as_deref())
        else {
            return Err(did_not_run());
        };
        let name = FunctionName::new(&recorded.function).map_err(|_| did_not_run())?;
        let info = self.inner.registry.get_version(tenant, &name, version)?;
        if !info.sha256.eq_ignore_ascii_case(sha256) {
            return Err(ServiceError::Conflict {
                message: format!(
                    "{name}@{version} has module {}, not the recorded {sha256}",
                    info.sha256
                ),
            });
        }
        Ok((version, self.prepare(info)?))
    }
}
