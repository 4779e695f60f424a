//! Invocation: admission (audit health, role, the gateway's policy and
//! budgets, rate), the active version, the input checks, the run (under
//! the policy's lowered limits), the output checks and the output guard,
//! and the record of every attempt, refusals included, before the caller
//! gets an answer.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aifn_audit::{Captured, ExecutionRecord, Pending};
use aifn_registry::Principal;
use aifn_runtime::{Execution, Invocation};
use aifn_types::{
    Admission, Context, Finding, FunctionName, GuardMode, Limits, LogLine, OutcomeKind, Role,
    TenantId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::active_cache::{Active, Lookup};
use crate::auth::require;
use crate::gateway::{TenantView, lowered, traceparent};
use crate::guard::effective_mode;
use crate::schema::{compile_schema, violations};
use crate::ticket::{InvokeTicket, Ticket};
use crate::{ErrorKind, Service, ServiceError, ids};

/// An invocation by an agent.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// The function name, as the caller gave it.
    pub function: String,
    /// The input document.
    pub input: Value,
    /// The end user the agent acts for, as the agent says.
    pub user_id: String,
    /// The caller's W3C `traceparent`, stored in the record.
    pub traceparent: Option<String>,
    /// Cancelled when the client goes away: the guest is interrupted and
    /// the record says so.
    pub cancel: Option<aifn_runtime::CancelToken>,
}

/// A call that ran: `kind` is `ok` or how it failed or hit a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeOutcome {
    /// The execution id (also in the audit record).
    pub execution_id: String,
    /// The function.
    pub function: String,
    /// The version that ran.
    pub version: u32,
    /// How it ended.
    pub kind: OutcomeKind,
    /// The output, when `kind` is `ok`.
    pub output: Option<Value>,
    /// What went wrong, otherwise.
    pub message: Option<String>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time in milliseconds, admission to record.
    pub duration_ms: f64,
    /// Peak linear memory in bytes.
    pub memory_peak_bytes: u64,
    /// The guest's log lines.
    pub logs: Vec<LogLine>,
}

/// A call refused before it ran (or whose record could not be written).
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// Why.
    pub error: ServiceError,
    /// The execution id of the audit record of this refusal, if any.
    pub execution_id: Option<String>,
}

/// One attempt in progress: what its record needs whatever happens.
struct Attempt {
    ctx: Context,
    now: SystemTime,
    started: Instant,
    /// The gateway's decision, once made.
    admission: Option<Admission>,
    /// The caller's `traceparent`, when well-formed.
    traceparent: Option<String>,
}

impl Attempt {
    /// What every record of the attempt carries beyond its context.
    fn stamp(&self, rec: &mut ExecutionRecord) {
        rec.admission = self.admission;
        rec.traceparent.clone_from(&self.traceparent);
    }
}

impl Service {
    /// Runs an active function for an agent. Every attempt is recorded
    /// before this returns; if the record cannot be written, the output is
    /// withheld and the call fails closed.
    pub fn invoke(&self, who: &Principal, req: InvokeRequest) -> Result<InvokeOutcome, Refused> {
        self.start_invoke(who, req).wait()
    }

    /// [`Service::invoke`] in two steps, for async callers: runs the call
    /// and queues its record on this (blocking) thread, and returns a
    /// ticket that resolves to the same answer once the record is durable.
    /// Block on it ([`InvokeTicket::wait`]) or `.await` it; no thread is
    /// held while the record's commit is fsynced.
    pub fn start_invoke(&self, who: &Principal, req: InvokeRequest) -> InvokeTicket {
        match self.run_invocation(who, req) {
            Ok(ticket) => ticket,
            Err(refused) => InvokeTicket(Ticket::Done(Some(Err(refused)))),
        }
    }

    fn run_invocation(&self, who: &Principal, req: InvokeRequest) -> Result<InvokeTicket, Refused> {
        let now = SystemTime::now();
        let execution_id = ids::execution_id(now);
        let mut at = Attempt {
            ctx: Context {
                tenant_id: who.tenant.to_string(),
                agent_id: who.subject.to_string(),
                user_id: req.user_id,
                function: req.function,
                version: String::new(),
                execution_id: execution_id.clone(),
            },
            now,
            started: Instant::now(),
            admission: None,
            traceparent: traceparent(req.traceparent),
        };
        if !self.inner.audit.is_healthy() {
            // Nothing runs while the audit log cannot write; recording this
            // refusal is attempted too, and a success reopens the door.
            let err = ServiceError::Unavailable {
                message: "the audit log cannot write; calls are refused".into(),
            };
            return Err(self.refuse(&at, b"", None, err));
        }
        // Serializing a `Value` cannot fail (its keys are strings).
        let input = serde_json::to_vec(&req.input).unwrap_or_default();
        if let Err(e) = require(who, &[Role::Agent], "invoking") {
            return Err(self.refuse(&at, &input, None, e));
        }
        // The gateway decides before any other work.
        let admitted = match self.admit(who, &at.ctx.function) {
            Ok(a) => a,
            Err(turned) => {
                at.admission = turned.admission;
                return Err(self.refuse(&at, &input, None, turned.error));
            }
        };
        at.admission = Some(admitted.admission);
        let _permit = match self.inner.limiter.admit(&who.tenant) {
            Ok(p) => p,
            Err(busy) => {
                let e = ServiceError::RateLimited {
                    retry_after: busy.retry_after,
                    scope: busy.scope,
                };
                return Err(self.refuse(&at, &input, None, e));
            }
        };
        let active = match self.resolve(&who.tenant, &at.ctx.function) {
            Ok(a) => a,
            Err(e) => return Err(self.refuse(&at, &input, None, e)),
        };
        at.ctx.version = active.info.version.to_string();
        if let Err(e) = check_input(&active, &at.ctx.function, &input, &req.input) {
            return Err(self.refuse(&at, &input, Some(&active), e));
        }

        let limits = lowered(active.limits, admitted.limits.as_ref());
        let exec = self.inner.runtime.invoke(
            &active.module,
            &Invocation {
                input: &input,
                context: &at.ctx,
                limits,
                start_time: now,
                cancel: req.cancel,
            },
        );
        let gate = &self.inner.gateway;
        gate.budgets.add_fuel(
            &who.tenant,
            &who.subject,
            charged_fuel(&exec, &limits),
            gate.clock.now(),
        );
        let mut checked = check_output(&active, &exec);
        guard_output(&admitted.tenant, &active, &mut checked);
        let duration = at.started.elapsed();
        let recorded = self.submit_invocation(|| {
            let mut rec = ExecutionRecord::from_context(&at.ctx, now, checked.kind);
            at.stamp(&mut rec);
            rec.module_sha256 = Some(active.info.sha256.clone());
            rec.error_message = checked.message.clone();
            rec.findings = checked.findings.clone();
            rec.cancelled = exec.cancelled;
            rec.fuel_used = exec.fuel_used;
            rec.memory_peak_bytes = exec.memory_peak_bytes;
            rec.set_parsed_input(&input, &req.input);
            rec.set_output(
                exec.output
                    .as_deref()
                    .filter(|_| checked.kind == OutcomeKind::Ok),
            );
            rec.duration_ms = duration.as_secs_f64() * 1000.0;
            let capture = active.info.manifest.capture.map(|c| Captured {
                input: input.clone(),
                // A blocked output is kept nowhere, captures included.
                output: exec
                    .output
                    .clone()
                    .filter(|_| checked.kind != OutcomeKind::OutputBlocked),
                retention_days: c.retention_days,
            });
            (rec, capture)
        });
        let outcome = InvokeOutcome {
            execution_id,
            function: at.ctx.function,
            version: active.info.version,
            kind: checked.kind,
            output: checked.output,
            message: checked.message,
            fuel_used: exec.fuel_used,
            duration_ms: duration.as_secs_f64() * 1000.0,
            memory_peak_bytes: exec.memory_peak_bytes,
            logs: exec.logs,
        };
        Ok(InvokeTicket(Ticket::Recording {
            pending: recorded,
            outcome: Some(outcome),
            duration,
            inner: Arc::clone(&self.inner),
        }))
    }

    /// Records a refusal and returns it.
    fn refuse(
        &self,
        at: &Attempt,
        input: &[u8],
        active: Option<&Active>,
        error: ServiceError,
    ) -> Refused {
        let kind = match error.kind() {
            ErrorKind::Outcome(k) => k,
            // The host cannot serve now (its audit log could not write): a
            // capacity refusal. Recording it also probes whether the log
            // can write again.
            _ => OutcomeKind::RateLimited,
        };
        let recorded = self
            .submit_invocation(|| {
                let mut rec = ExecutionRecord::from_context(&at.ctx, at.now, kind);
                at.stamp(&mut rec);
                rec.module_sha256 = active.map(|a| a.info.sha256.clone());
                rec.error_message = Some(error.to_string());
                rec.set_input(input);
                rec.duration_ms = at.started.elapsed().as_secs_f64() * 1000.0;
                (rec, None)
            })
            .map_or(Ok(()), |p| p.wait().map(drop));
        match recorded {
            Ok(()) => {
                self.inner.metrics.record(kind, at.started.elapsed(), 0);
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

    /// Builds the record of one invocation attempt and queues it; `None`
    /// only in the benchmark baseline, which records no invocations.
    fn submit_invocation(
        &self,
        build: impl FnOnce() -> (ExecutionRecord, Option<Captured>),
    ) -> Option<Pending> {
        if !self.inner.record_invocations {
            return None;
        }
        let (rec, capture) = build();
        Some(self.inner.audit.submit_execution(rec, capture))
    }

    /// The active version of a function, from the cache while it is fresh.
    fn resolve(&self, tenant: &TenantId, function: &str) -> Result<Arc<Active>, ServiceError> {
        let not_found = || ServiceError::NotFound {
            what: format!("function {function}"),
        };
        let name = FunctionName::new(function).map_err(|_| not_found())?;
        let cache = &self.inner.active;
        let stale = match cache.get(tenant, &name) {
            Lookup::Fresh(a) => return Ok(a),
            Lookup::Stale(a) => Some(a),
            Lookup::Missing => None,
        };
        let info = match self.inner.registry.active(tenant, &name) {
            Ok(info) => info,
            Err(e) => {
                cache.forget(tenant, &name);
                return Err(e.into());
            }
        };
        let fresh = match stale {
            // Still the same version: keep its module and schemas.
            Some(a) if a.is(&info) => a,
            _ => Arc::new(self.prepare(info)?),
        };
        cache.insert(tenant, &name, Arc::clone(&fresh));
        Ok(fresh)
    }

    fn prepare(&self, info: aifn_registry::VersionInfo) -> Result<Active, ServiceError> {
        let bytes = self.inner.registry.module_bytes(&info.sha256)?;
        let module = self.inner.runtime.load(&bytes).map_err(|e| {
            // It passed validation at upload: the host's caps changed since.
            ServiceError::Unavailable {
                message: format!("the active version no longer loads on this host: {e}"),
            }
        })?;
        let input = Arc::new(compile_schema("input_schema", &info.manifest.input_schema)?);
        let output = info
            .manifest
            .output_schema
            .as_ref()
            .map(|s| compile_schema("output_schema", s).map(Arc::new))
            .transpose()?;
        let limits = self
            .inner
            .runtime
            .limits()
            .min(&info.report.effective_limits);
        Ok(Active {
            info,
            module,
            input,
            output,
            limits,
        })
    }
}

/// The input's size and schema, before anything runs.
fn check_input(
    active: &Active,
    function: &str,
    bytes: &[u8],
    input: &Value,
) -> Result<(), ServiceError> {
    if bytes.len() as u64 > active.limits.input_bytes {
        return Err(ServiceError::InvalidInput {
            message: format!(
                "input is {} bytes, over the limit of {} bytes",
                bytes.len(),
                active.limits.input_bytes
            ),
            violations: Vec::new(),
        });
    }
    let found = violations(&active.input, input);
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

/// How a call ended once its output was checked.
struct Checked {
    kind: OutcomeKind,
    output: Option<Value>,
    message: Option<String>,
    /// What the output guard found (kinds and paths, never values).
    findings: Vec<Finding>,
}

/// An `ok` run whose output is not JSON, or breaks the output schema, is
/// `invalid_output`; the output is then withheld.
fn check_output(active: &Active, exec: &Execution) -> Checked {
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
        Ok(v) => {
            let bad = active
                .output
                .as_deref()
                .map(|s| violations(s, &v))
                .unwrap_or_default();
            if bad.is_empty() {
                checked.output = Some(v);
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
fn guard_output(tenant: &TenantView, active: &Active, checked: &mut Checked) {
    let Some(output) = checked.output.as_ref() else {
        return;
    };
    let mode = effective_mode(tenant.guard.mode(), active.info.manifest.output_guard);
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

/// The fuel a call costs its budgets. wasmtime flushes its fuel counter at
/// calls and returns but not at an epoch interrupt, so an interrupted call
/// (timeout or cancel) reports a lower bound only: a guest spinning in a
/// call-free loop would look free. Such a call is charged its whole limit.
fn charged_fuel(exec: &Execution, limits: &Limits) -> u64 {
    if exec.kind == OutcomeKind::Timeout {
        exec.fuel_used.max(limits.fuel)
    } else {
        exec.fuel_used
    }
}
