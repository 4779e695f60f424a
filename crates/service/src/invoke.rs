//! Invocation: admission (audit health, role, the gateway's policy and
//! budgets, rate), the active version, the input checks, the run (under
//! the policy's lowered limits), the output checks and the output guard,
//! and the record of every attempt, refusals included, before the caller
//! gets an answer.

use std::sync::Arc;

use aifn_audit::Captured;
use aifn_registry::Principal;
use aifn_runtime::{Invocation, LoadedModule, ModuleError};
use aifn_types::{Context, FunctionName, LogLine, OutcomeKind, Role, RunKind, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::active_cache::{Active, Lookup};
use crate::auth::require;
use crate::gateway::{lowered, traceparent};
use crate::run::{Attempt, check_input};
use crate::schema::compile_schema;
use crate::ticket::{InvokeTicket, Ticket};
use crate::{Service, ServiceError, ids};

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
    /// Block on it ([`InvokeTicket::wait`]) or `.await` it. Only a call
    /// that finds nobody committing commits its own batch on this thread
    /// (no hand-off when calls come one at a time); the others' records
    /// join a batch in flight and no thread waits for their fsync.
    pub fn start_invoke(&self, who: &Principal, req: InvokeRequest) -> InvokeTicket {
        match self.run_invocation(who, req) {
            Ok(ticket) => ticket,
            Err(refused) => InvokeTicket(Ticket::Done(Some(Err(refused)))),
        }
    }

    fn run_invocation(&self, who: &Principal, req: InvokeRequest) -> Result<InvokeTicket, Refused> {
        let now = crate::run::start_time();
        let execution_id = ids::execution_id(now);
        let ctx = Context {
            tenant_id: who.tenant.to_string(),
            agent_id: who.subject.to_string(),
            user_id: req.user_id,
            function: req.function,
            version: String::new(),
            execution_id: execution_id.clone(),
        };
        let mut at = Attempt::new(ctx, now, RunKind::Invocation);
        at.traceparent = traceparent(req.traceparent);
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
        let budgeted = admitted.budgeted;
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
        let version = active.runnable();
        if let Err(e) = check_input(&version, &at.ctx.function, &input, &req.input) {
            return Err(self.refuse(&at, &input, Some(version.sha256), e));
        }

        let limits = lowered(active.limits, admitted.limits.as_ref());
        let ran = self.execute(
            &version,
            &admitted.tenant,
            &Invocation {
                input: &input,
                context: &at.ctx,
                limits,
                start_time: now,
                cancel: req.cancel,
            },
        );
        let gate = &self.inner.gateway;
        if let Err(e) = gate.budgets.add_fuel(
            &self.inner.registry,
            (&who.tenant, &who.subject),
            // Exact for every outcome, timeouts and cancels included.
            ran.exec.fuel_used,
            budgeted,
            gate.clock.now(),
        ) {
            // The call ran and is recorded below; its fuel is not counted.
            tracing::warn!(error = %e, "could not count a call's fuel in the budget");
        }
        let duration = at.started.elapsed();
        let recorded = self.submit_record(RunKind::Invocation, || {
            let mut rec = at.record(ran.checked.kind);
            ran.fill(&mut rec, version.sha256, &input, &req.input, duration);
            let capture = active.info.manifest.capture.map(|c| Captured {
                input: input.clone(),
                // A blocked output is kept nowhere, captures included.
                output: ran
                    .exec
                    .output
                    .clone()
                    .filter(|_| ran.checked.kind != OutcomeKind::OutputBlocked),
                retention_days: c.retention_days,
            });
            (rec, capture)
        });
        let outcome = ran.outcome(execution_id, at.ctx.function, active.info.version, duration);
        Ok(InvokeTicket(Ticket::Recording {
            pending: recorded,
            outcome: Some(outcome),
            duration,
            inner: Arc::clone(&self.inner),
        }))
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

    /// Loads a stored version's module. A JavaScript version on an engine
    /// this release does not embed runs on that engine as the registry
    /// kept it at upload (by sha256, checked again when supplied).
    fn load_stored(
        &self,
        info: &aifn_registry::VersionInfo,
        bytes: &[u8],
    ) -> Result<LoadedModule, ServiceError> {
        let runtime = &self.inner.runtime;
        // It passed validation at upload: the host's caps changed since,
        // or its engine is gone.
        let unavailable = |e: &dyn std::fmt::Display| ServiceError::Unavailable {
            message: format!(
                "version {}@{} no longer loads on this host: {e}",
                info.name, info.version
            ),
        };
        match runtime.load(bytes) {
            Err(ModuleError::UnknownEngine { sha256 }) => {
                let engine = info
                    .report
                    .module
                    .script
                    .as_ref()
                    .map(|s| s.engine.clone())
                    .filter(|e| e.sha256 == sha256)
                    .ok_or_else(|| unavailable(&"its report names another engine"))?;
                let wasm = self.inner.registry.module_bytes(&sha256)?;
                runtime
                    .supply_js_engine(engine, &wasm)
                    .map_err(|e| unavailable(&e))?;
                runtime.load(bytes).map_err(|e| unavailable(&e))
            }
            loaded => loaded.map_err(|e| unavailable(&e)),
        }
    }

    /// A version ready to run: its module loaded, its schemas compiled,
    /// its effective limits within the host's.
    pub(crate) fn prepare(&self, info: aifn_registry::VersionInfo) -> Result<Active, ServiceError> {
        let bytes = self.inner.registry.module_bytes(&info.sha256)?;
        let module = self.load_stored(&info, &bytes)?;
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
