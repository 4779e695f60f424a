//! One run of a version, as invocations, test runs and replays share it:
//! the input checks (size, schema), the run in the sandbox, the output
//! checks and the output guard, and the record of the attempt. Only the
//! invoke path adds admission (gateway, budgets, rate) and queues its
//! record without waiting; test runs and replays wait for theirs here.

use std::time::{Duration, Instant, SystemTime};

use aifn_audit::{Captured, ExecutionRecord, Pending};
use aifn_runtime::{Execution, Invocation, LoadedModule};
use aifn_types::{Admission, Context, Finding, GuardMode, Limits, OutcomeKind, RunKind};
use serde_json::Value;

use crate::active_cache::Active;
use crate::gateway::TenantView;
use crate::guard::effective_mode;
use crate::invoke::{InvokeOutcome, Refused};
use crate::schema::violations;
use crate::{ErrorKind, Service, ServiceError};

/// What a run of one version needs of it: its module, its compiled
/// schemas, its limits and its manifest's output guard setting.
pub(crate) struct Runnable<'a> {
    pub(crate) module: &'a LoadedModule,
    pub(crate) sha256: &'a str,
    pub(crate) input: &'a jsonschema::Validator,
    pub(crate) output: Option<&'a jsonschema::Validator>,
    pub(crate) limits: Limits,
    pub(crate) output_guard: Option<GuardMode>,
}

impl Active {
    /// This prepared version, to run.
    pub(crate) fn runnable(&self) -> Runnable<'_> {
        Runnable {
            module: &self.module,
            sha256: &self.info.sha256,
            input: &self.input,
            output: self.output.as_deref(),
            limits: self.limits,
            output_guard: self.info.manifest.output_guard,
        }
    }
}

/// One attempt in progress: what its record needs whatever happens.
pub(crate) struct Attempt {
    /// The record's context (for a replay, not the one the guest sees).
    pub(crate) ctx: Context,
    pub(crate) now: SystemTime,
    pub(crate) started: Instant,
    /// The gateway's decision, once made (invocations only).
    pub(crate) admission: Option<Admission>,
    /// The caller's `traceparent`, when well-formed.
    pub(crate) traceparent: Option<String>,
    /// Why the version runs.
    pub(crate) run: RunKind,
    /// The manifest test, for a test run of one.
    pub(crate) test_name: Option<String>,
    /// The execution re-run, for a replay.
    pub(crate) replay_of: Option<String>,
}

impl Attempt {
    /// An attempt starting now, with nothing decided yet.
    pub(crate) fn new(ctx: Context, now: SystemTime, run: RunKind) -> Attempt {
        Attempt {
            ctx,
            now,
            started: Instant::now(),
            admission: None,
            traceparent: None,
            run,
            test_name: None,
            replay_of: None,
        }
    }

    /// A record of the attempt ending in `kind`, with no input or output.
    pub(crate) fn record(&self, kind: OutcomeKind) -> ExecutionRecord {
        let mut rec = ExecutionRecord::from_context(&self.ctx, self.now, kind);
        rec.admission = self.admission;
        rec.traceparent.clone_from(&self.traceparent);
        rec.run = self.run;
        rec.test_name.clone_from(&self.test_name);
        rec.replay_of.clone_from(&self.replay_of);
        rec
    }

    /// The record of the attempt refused with `error` (before it ran).
    fn refusal(&self, input: &[u8], sha256: Option<&str>, error: &ServiceError) -> ExecutionRecord {
        let mut rec = self.record(refusal_kind(error));
        rec.module_sha256 = sha256.map(str::to_owned);
        rec.error_message = Some(error.to_string());
        rec.set_input(input);
        rec.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        rec
    }
}

/// The outcome kind a refusal is recorded as.
fn refusal_kind(error: &ServiceError) -> OutcomeKind {
    match error.kind() {
        ErrorKind::Outcome(k) => k,
        // Only a replay conflicts (no captured input, no module that ran
        // or another module behind the version): what it needs is not
        // there.
        ErrorKind::Conflict => OutcomeKind::NotFound,
        // The host cannot serve now (its audit log could not write): a
        // capacity refusal. Recording it also probes whether the log can
        // write again.
        _ => OutcomeKind::RateLimited,
    }
}

/// How a call ended once its output was checked.
pub(crate) struct Checked {
    pub(crate) kind: OutcomeKind,
    pub(crate) output: Option<Value>,
    pub(crate) message: Option<String>,
    /// What the output guard found (kinds and paths, never values).
    pub(crate) findings: Vec<Finding>,
}

/// A run and how its output checked out.
pub(crate) struct Ran {
    pub(crate) exec: Execution,
    pub(crate) checked: Checked,
}

impl Ran {
    /// The output bytes the record hashes: those of an `ok` run only.
    pub(crate) fn recorded_output(&self) -> Option<&[u8]> {
        self.exec
            .output
            .as_deref()
            .filter(|_| self.checked.kind == OutcomeKind::Ok)
    }

    /// Fills the run's facts into its record.
    pub(crate) fn fill(
        &self,
        rec: &mut ExecutionRecord,
        sha256: &str,
        input: &[u8],
        parsed: &Value,
        duration: Duration,
    ) {
        rec.module_sha256 = Some(sha256.to_owned());
        rec.error_message.clone_from(&self.checked.message);
        rec.findings.clone_from(&self.checked.findings);
        rec.cancelled = self.exec.cancelled;
        rec.fuel_used = self.exec.fuel_used;
        rec.memory_peak_bytes = self.exec.memory_peak_bytes;
        rec.set_parsed_input(input, parsed);
        rec.set_output(self.recorded_output());
        rec.duration_ms = duration.as_secs_f64() * 1000.0;
    }

    /// The answer, in the shape of an invocation's.
    pub(crate) fn outcome(
        self,
        execution_id: String,
        function: String,
        version: u32,
        duration: Duration,
    ) -> InvokeOutcome {
        InvokeOutcome {
            execution_id,
            function,
            version,
            kind: self.checked.kind,
            output: self.checked.output,
            message: self.checked.message,
            fuel_used: self.exec.fuel_used,
            duration_ms: duration.as_secs_f64() * 1000.0,
            memory_peak_bytes: self.exec.memory_peak_bytes,
            logs: self.exec.logs,
        }
    }
}

/// A run that is not an agent's invocation: what the guest sees, and on
/// what it runs.
pub(crate) struct RunSpec<'a> {
    pub(crate) version: &'a Runnable<'a>,
    pub(crate) tenant: &'a TenantView,
    /// The guest's context (for a replay, the recorded one).
    pub(crate) guest: &'a Context,
    /// What the guest's clocks read.
    pub(crate) start_time: SystemTime,
    /// The raw input bytes.
    pub(crate) input: &'a [u8],
}

/// A recorded run that is not an invocation: it ran, or its input was
/// refused.
pub(crate) struct Finished {
    pub(crate) outcome: Result<Ran, ServiceError>,
    /// The record's output sha256.
    pub(crate) output_sha256: Option<String>,
    pub(crate) duration: Duration,
}

impl Finished {
    /// How it ended: the run's outcome kind, or the refusal's.
    pub(crate) fn kind(&self) -> OutcomeKind {
        match &self.outcome {
            Ok(ran) => ran.checked.kind,
            Err(e) => refusal_kind(e),
        }
    }

    /// The refusal, when the run had no slot or token: that says nothing
    /// of the version, so it is no test result and no replay verdict.
    pub(crate) fn no_capacity(&self) -> Option<ServiceError> {
        match &self.outcome {
            Err(ServiceError::RateLimited { retry_after, scope }) => {
                Some(ServiceError::RateLimited {
                    retry_after: *retry_after,
                    scope,
                })
            }
            _ => None,
        }
    }
}

impl Service {
    /// Runs `v` on an input that passed the input checks, under `limits`,
    /// then checks the output and applies the output guard.
    pub(crate) fn execute(
        &self,
        v: &Runnable<'_>,
        tenant: &TenantView,
        invocation: &Invocation<'_>,
    ) -> Ran {
        let exec = self.inner.runtime.invoke(v.module, invocation);
        let mut checked = check_output(v, &exec);
        guard_output(tenant, v, &mut checked);
        Ran { exec, checked }
    }

    /// Admits the run (host and tenant concurrency and rate, as for an
    /// invocation), checks the input, runs, and records the attempt
    /// (refusal or run) with `at`'s run kind, waiting until the record is
    /// durable. `Err`
    /// only when the record could not be written: then nothing may be
    /// answered but `unavailable`.
    pub(crate) fn run_recorded(
        &self,
        at: &Attempt,
        spec: &RunSpec<'_>,
    ) -> Result<Finished, ServiceError> {
        let v = spec.version;
        // Test runs and replays share the host's and the tenant's
        // concurrency and rate with invocations: the same cores run them.
        let checked_input = self
            .inner
            .limiter
            .admit(&spec.tenant.info.tenant_id)
            .map_err(|busy| ServiceError::RateLimited {
                retry_after: busy.retry_after,
                scope: busy.scope,
            })
            .and_then(|permit| {
                let parsed = serde_json::from_slice::<Value>(spec.input).map_err(|e| {
                    ServiceError::InvalidInput {
                        message: format!("input is not JSON: {e}"),
                        violations: Vec::new(),
                    }
                })?;
                check_input(v, &spec.guest.function, spec.input, &parsed)?;
                Ok((permit, parsed))
            });
        let (rec, finished) = match checked_input {
            Err(e) => {
                let rec = at.refusal(spec.input, Some(v.sha256), &e);
                let finished = Finished {
                    outcome: Err(e),
                    output_sha256: None,
                    duration: at.started.elapsed(),
                };
                (rec, finished)
            }
            Ok((_permit, parsed)) => {
                let ran = self.execute(
                    v,
                    spec.tenant,
                    &Invocation {
                        input: spec.input,
                        context: spec.guest,
                        limits: v.limits,
                        start_time: spec.start_time,
                        cancel: None,
                    },
                );
                let duration = at.started.elapsed();
                let mut rec = at.record(ran.checked.kind);
                ran.fill(&mut rec, v.sha256, spec.input, &parsed, duration);
                let finished = Finished {
                    output_sha256: rec.output_sha256.clone(),
                    outcome: Ok(ran),
                    duration,
                };
                (rec, finished)
            }
        };
        let fuel = finished.outcome.as_ref().map_or(0, |r| r.exec.fuel_used);
        if let Err(e) = self.inner.audit.submit_execution(rec, None).wait() {
            tracing::error!(error = %e, run = at.run.as_str(), "audit record of a run failed");
            return Err(record_failed());
        }
        self.inner
            .metrics
            .record_run(at.run, finished.kind(), finished.duration, fuel);
        Ok(finished)
    }

    /// Records a refusal and returns it.
    pub(crate) fn refuse(
        &self,
        at: &Attempt,
        input: &[u8],
        sha256: Option<&str>,
        error: ServiceError,
    ) -> Refused {
        let kind = refusal_kind(&error);
        let recorded = self
            .submit_record(at.run, || (at.refusal(input, sha256, &error), None))
            .map_or(Ok(()), |p| p.wait().map(drop));
        match recorded {
            Ok(()) => {
                self.inner
                    .metrics
                    .record_run(at.run, kind, at.started.elapsed(), 0);
                Refused {
                    error,
                    execution_id: Some(at.ctx.execution_id.clone()),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit record of a refusal failed");
                Refused {
                    error: ServiceError::Unavailable {
                        message: "the audit log cannot write; calls are refused".into(),
                    },
                    execution_id: None,
                }
            }
        }
    }

    /// Builds the record of one attempt and queues it; `None` only for an
    /// invocation in the benchmark baseline, which records no invocations.
    pub(crate) fn submit_record(
        &self,
        run: RunKind,
        build: impl FnOnce() -> (ExecutionRecord, Option<Captured>),
    ) -> Option<Pending> {
        if !self.inner.record_invocations && run.is_invocation() {
            return None;
        }
        let (rec, capture) = build();
        Some(self.inner.audit.submit_execution(rec, capture))
    }
}

/// The refusal of a run whose record could not be written.
/// The start time of a run: now, to the millisecond. The guest's clocks
/// read it and the audit record keeps exactly it, so a replay can give
/// the guest the very time it read.
pub(crate) fn start_time() -> SystemTime {
    aifn_types::Timestamp::now().into()
}

pub(crate) fn record_failed() -> ServiceError {
    ServiceError::Unavailable {
        message: "the run's audit record could not be written; its result is withheld".into(),
    }
}

/// The input's size and schema, before anything runs.
pub(crate) fn check_input(
    v: &Runnable<'_>,
    function: &str,
    bytes: &[u8],
    input: &Value,
) -> Result<(), ServiceError> {
    if bytes.len() as u64 > v.limits.input_bytes {
        return Err(ServiceError::InvalidInput {
            message: format!(
                "input is {} bytes, over the limit of {} bytes",
                bytes.len(),
                v.limits.input_bytes
            ),
            violations: Vec::new(),
        });
    }
    let found = violations(v.input, input);
    if found.is_empty() {
        return Ok(());
    }
    Err(ServiceError::InvalidInput {
        message: format!(
            "input does not match the schema of {function} ({})",
            crate::schema::count(found.len())
        ),
        violations: found,
    })
}

/// An `ok` run whose output is not JSON, or breaks the output schema, is
/// `invalid_output`; the output is then withheld.
fn check_output(v: &Runnable<'_>, exec: &Execution) -> Checked {
    let mut checked = Checked {
        kind: exec.kind,
        output: None,
        message: exec.message.clone(),
        findings: Vec::new(),
    };
    let Some(bytes) = &exec.output else {
        return checked;
    };
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => {
            let bad = v.output.map(|s| violations(s, &value)).unwrap_or_default();
            if bad.is_empty() {
                checked.output = Some(value);
            } else {
                let list: Vec<_> = bad
                    .iter()
                    .map(|b| format!("{}: {}", b.location(), b.message))
                    .collect();
                checked.kind = OutcomeKind::InvalidOutput;
                checked.message = Some(format!(
                    "output does not match the output schema ({}): {}",
                    crate::schema::count(bad.len()),
                    list.join("; ")
                ));
            }
        }
        Err(e) => {
            checked.kind = OutcomeKind::InvalidOutput;
            checked.message = Some(format!("output is not JSON: {e}"));
        }
    }
    checked
}

/// Scans an accepted output: `flag` keeps the answer and lists the
/// findings, `block` withholds it (`output_blocked`). The message names
/// the kinds found, never the values.
fn guard_output(tenant: &TenantView, v: &Runnable<'_>, checked: &mut Checked) {
    let Some(output) = checked.output.as_ref() else {
        return;
    };
    let mode = effective_mode(tenant.guard.mode(), v.output_guard);
    if mode == GuardMode::Off {
        return;
    }
    let findings = tenant.guard.scan(output);
    if findings.is_empty() {
        return;
    }
    if mode == GuardMode::Block {
        let mut kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
        kinds.dedup();
        checked.kind = OutcomeKind::OutputBlocked;
        checked.output = None;
        checked.message = Some(format!(
            "the output guard withheld the output: it holds {}",
            kinds.join(", ")
        ));
    }
    checked.findings = findings;
}
