//! The service: one registry, one audit log, one runtime, and the rules
//! between them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use aifn_audit::{
    AuditLog, AuditPage, AuditQuery, Captured, ExecutionRecord, Pending, SecurityEvent,
    SecurityReason,
};
use aifn_registry::{
    AuthError, FunctionDetail, FunctionSummary, Principal, Registry, Upload, VersionInfo,
    VersionRef,
};
use aifn_runtime::{Invocation, LoadedModule, ModuleError, Runtime, RuntimeConfig};
use aifn_types::{Context, FunctionName, Limits, LogLine, Manifest, OutcomeKind, Role};
use serde::Serialize;
use serde_json::{Value, json};

use crate::admin::DataDir;
use crate::limiter::Limiter;
use crate::sink::RegistryAudit;
use crate::{Metrics, ServiceConfig, ServiceError, Violation, ids};

/// Most schema violations listed in one answer.
const MAX_VIOLATIONS: usize = 20;

/// An upload: the module and what its author declares.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    /// The function name.
    pub name: String,
    /// The manifest.
    pub manifest: Manifest,
    /// The wasm module bytes.
    pub module: Vec<u8>,
}

/// An invocation by an agent.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// The function name.
    pub function: String,
    /// The input document.
    pub input: Value,
    /// The end user the agent acts for, as the agent says.
    pub user_id: String,
}

/// A call that ran: `kind` is `ok` or how it failed or hit a limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// An invocation that ran and whose record is queued: resolves to the
/// answer once the record is durable, or to a refusal (`unavailable`, the
/// output withheld) if the record could not be written. Block on it with
/// [`InvokeTicket::wait`] or `.await` it.
#[must_use = "the answer may be given only once this resolves"]
pub struct InvokeTicket(Ticket);

enum Ticket {
    Done(Option<Result<InvokeOutcome, Refused>>),
    Recording {
        /// `None` in the benchmark baseline (no record).
        pending: Option<Pending>,
        outcome: Option<InvokeOutcome>,
        duration: Duration,
        inner: Arc<Inner>,
    },
}

impl std::fmt::Debug for InvokeTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.0 {
            Ticket::Done(_) => "done",
            Ticket::Recording { .. } => "recording",
        };
        f.debug_tuple("InvokeTicket").field(&state).finish()
    }
}

impl InvokeTicket {
    /// Blocks until the record is durable; then the answer.
    pub fn wait(mut self) -> Result<InvokeOutcome, Refused> {
        let recorded = match &mut self.0 {
            Ticket::Recording { pending, .. } => {
                pending.take().map_or(Ok(()), |p| p.wait().map(drop))
            }
            Ticket::Done(_) => Ok(()),
        };
        self.0.resolve(recorded)
    }
}

impl Ticket {
    /// The answer, once the record's fate (`recorded`) is known.
    fn resolve(
        &mut self,
        recorded: Result<(), aifn_audit::AuditError>,
    ) -> Result<InvokeOutcome, Refused> {
        match self {
            Ticket::Done(answer) => answer.take().unwrap_or_else(|| Err(resolved_twice())),
            Ticket::Recording {
                outcome,
                duration,
                inner,
                ..
            } => finish(inner, outcome.take(), *duration, recorded),
        }
    }
}

impl std::future::Future for InvokeTicket {
    type Output = Result<InvokeOutcome, Refused>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let recorded = match &mut self.0 {
            Ticket::Recording { pending, .. } => {
                match pending.as_mut().map(|p| std::pin::Pin::new(p).poll(cx)) {
                    Some(Poll::Pending) => return Poll::Pending,
                    Some(Poll::Ready(answer)) => {
                        // Resolved once: a later poll answers `resolved_twice`.
                        *pending = None;
                        answer.map(drop)
                    }
                    None => Ok(()),
                }
            }
            Ticket::Done(_) => Ok(()),
        };
        Poll::Ready(self.0.resolve(recorded))
    }
}

/// A ticket polled again after it resolved (a caller bug, not a guest's).
fn resolved_twice() -> Refused {
    Refused {
        error: ServiceError::internal("invocation ticket", &"resolved twice"),
        execution_id: None,
    }
}

/// The answer of a call whose record was durably written, or the refusal
/// that withholds it.
fn finish(
    inner: &Inner,
    outcome: Option<InvokeOutcome>,
    duration: Duration,
    recorded: Result<(), aifn_audit::AuditError>,
) -> Result<InvokeOutcome, Refused> {
    let Some(outcome) = outcome else {
        return Err(resolved_twice());
    };
    match recorded {
        Ok(()) => {
            inner
                .metrics
                .record(outcome.kind, duration, outcome.fuel_used);
            Ok(outcome)
        }
        Err(e) => {
            tracing::error!(execution_id = %outcome.execution_id, error = %e, "audit record failed; withholding the output");
            Err(Refused {
                error: ServiceError::Unavailable {
                    message: "the call's audit record could not be written; its result is withheld"
                        .into(),
                },
                execution_id: Some(outcome.execution_id),
            })
        }
    }
}

/// Tool-definition formats for LLM function calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// `[{"type":"function","function":{"name","description","parameters"}}]`
    OpenAi,
    /// `[{"name","description","input_schema"}]`
    Anthropic,
}

/// An active version, ready to run.
struct Active {
    info: VersionInfo,
    module: LoadedModule,
    input: Arc<jsonschema::Validator>,
    output: Option<Arc<jsonschema::Validator>>,
    limits: Limits,
    checked: Instant,
}

type ActiveKey = (String, String);

struct Inner {
    config: ServiceConfig,
    runtime: Runtime,
    registry: Registry,
    audit: AuditLog,
    limiter: Limiter,
    metrics: Metrics,
    active: RwLock<HashMap<ActiveKey, Arc<Active>>>,
    active_capacity: usize,
    /// Always true, except in the benchmark baseline (feature
    /// `bench-unaudited`), which measures what the invocation records cost.
    record_invocations: bool,
}

/// The aifn service. Cheap to clone; share it across threads.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

fn require(who: &Principal, roles: &[Role], what: &str) -> Result<(), ServiceError> {
    if roles.contains(&who.role) {
        Ok(())
    } else {
        let allowed: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        Err(ServiceError::Forbidden {
            reason: format!(
                "{what} needs the {} role; this key is {}",
                allowed.join(" or "),
                who.role
            ),
        })
    }
}

fn name(s: &str) -> Result<FunctionName, ServiceError> {
    FunctionName::new(s).map_err(|e| ServiceError::InvalidRequest {
        message: e.to_string(),
    })
}

fn compile_schema(what: &str, schema: &Value) -> Result<jsonschema::Validator, ServiceError> {
    jsonschema::validator_for(schema).map_err(|e| ServiceError::InvalidRequest {
        message: format!("{what} is not a valid JSON Schema: {}", e.masked()),
    })
}

fn violations(v: &jsonschema::Validator, instance: &Value) -> Vec<Violation> {
    v.iter_errors(instance)
        .take(MAX_VIOLATIONS)
        .map(|e| Violation {
            path: e.instance_path().to_string(),
            message: e.masked().to_string(),
        })
        .collect()
}

fn module_refusal(e: ModuleError) -> ServiceError {
    match e {
        ModuleError::TooLarge { .. } => ServiceError::PayloadTooLarge {
            message: e.to_string(),
        },
        other => ServiceError::InvalidModule {
            kind: other.kind(),
            message: other.to_string(),
        },
    }
}

impl Service {
    /// Opens the data dir (creating it), the registry, the audit log and
    /// the runtime with its on-disk module cache.
    pub fn open(config: ServiceConfig) -> Result<Service, ServiceError> {
        Service::open_inner(config, true)
    }

    /// FOR BENCHMARKS ONLY: a service that records registry actions but
    /// writes no invocation record at all, so that a benchmark can compare
    /// the same run with and without the audit of every call. Compiled
    /// only with the `bench-unaudited` feature; nothing in the `aifn`
    /// binary calls it.
    #[cfg(feature = "bench-unaudited")]
    pub fn open_unaudited_baseline(config: ServiceConfig) -> Result<Service, ServiceError> {
        Service::open_inner(config, false)
    }

    fn open_inner(
        config: ServiceConfig,
        record_invocations: bool,
    ) -> Result<Service, ServiceError> {
        let mut dir = DataDir::new(&config.data_dir, &config.node);
        if let Some(k) = &config.audit_signing_key {
            dir.signing_key = k.clone();
        }
        dir.create()?;
        let unavailable = |what: &str, e: &dyn std::fmt::Display| ServiceError::Unavailable {
            message: format!("cannot open the {what}: {e}"),
        };
        let registry = Registry::open(&dir.root).map_err(|e| unavailable("registry", &e))?;
        let mut audit_cfg = dir.audit_config();
        audit_cfg.checkpoint_every_records = config.audit_checkpoint_every;
        audit_cfg.checkpoint_interval = Duration::from_secs(config.audit_checkpoint_secs);
        audit_cfg.max_db_bytes = config.audit_max_db_bytes;
        let audit = AuditLog::open(audit_cfg).map_err(|e| unavailable("audit log", &e))?;
        let runtime_config = RuntimeConfig {
            limits: config.limits,
            // Room for every admitted call, so admission, not the pool, decides.
            max_instances: config.max_concurrent.max(1) + 4,
            cache_dir: Some(dir.module_cache()),
            memory_keep_resident: config.memory_keep_resident,
            ..RuntimeConfig::default()
        };
        let active_capacity = runtime_config.memory_cache_entries;
        let runtime = Runtime::new(runtime_config).map_err(|e| unavailable("runtime", &e))?;
        Ok(Service {
            inner: Arc::new(Inner {
                limiter: Limiter::new(config.tenant, config.max_concurrent.max(1)),
                config,
                runtime,
                registry,
                audit,
                metrics: Metrics::default(),
                active: RwLock::new(HashMap::new()),
                active_capacity,
                record_invocations,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// Resolves `Authorization: Bearer KEY` to the key's principal. Every
    /// failure is recorded in the host-level security stream (never the
    /// key itself).
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        route: &str,
        remote: Option<&str>,
    ) -> Result<Principal, ServiceError> {
        let reason = match authorization.map(str::trim) {
            None | Some("") => SecurityReason::MissingKey,
            // The scheme is case-insensitive (RFC 9110 section 11.1).
            Some(h) => match h
                .get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map(|_| h[7..].trim())
            {
                None | Some("") => SecurityReason::MalformedKey,
                Some(token) => match self.inner.registry.authenticate(token) {
                    Ok(p) => return Ok(p),
                    Err(AuthError::Malformed) => SecurityReason::MalformedKey,
                    Err(AuthError::Unknown) => SecurityReason::UnknownKey,
                    Err(AuthError::Revoked) => SecurityReason::RevokedKey,
                    Err(AuthError::Registry(e)) => {
                        return Err(ServiceError::internal("authenticate", &e));
                    }
                    Err(e) => return Err(ServiceError::internal("authenticate", &e)),
                },
            },
        };
        let event = SecurityEvent {
            time: SystemTime::now(),
            route: route.to_owned(),
            reason,
            remote_addr: remote.map(str::to_owned),
            node: String::new(),
        };
        if let Err(e) = self.inner.audit.record_security(event) {
            tracing::error!(error = %e, "could not record an unauthenticated attempt");
        }
        let reason = match reason {
            SecurityReason::MissingKey => "missing key",
            SecurityReason::MalformedKey => "malformed key",
            SecurityReason::UnknownKey => "unknown key",
            SecurityReason::RevokedKey => "revoked key",
        };
        Err(ServiceError::Unauthenticated { reason })
    }

    /// Validates, compiles and stores a new version, `pending`.
    pub fn upload(&self, who: &Principal, req: UploadRequest) -> Result<VersionInfo, ServiceError> {
        require(who, &[Role::Author], "uploading")?;
        let name = name(&req.name)?;
        let m = &req.manifest;
        if m.description.trim().is_empty() || m.description.len() > 4096 {
            return Err(ServiceError::InvalidRequest {
                message: "description must have 1 to 4096 characters".into(),
            });
        }
        compile_schema("input_schema", &m.input_schema)?;
        if let Some(s) = &m.output_schema {
            compile_schema("output_schema", s)?;
        }
        let loaded = self
            .inner
            .runtime
            .load(&req.module)
            .map_err(module_refusal)?;
        let report = loaded.report().clone();
        if let (Some(mem), Some(asked)) = (&report.memory, m.limits.memory_bytes)
            && mem.min_pages.saturating_mul(65536) > asked
        {
            return Err(ServiceError::InvalidRequest {
                message: format!(
                    "limits.memory_bytes = {asked} is below the module's initial memory of {} bytes",
                    mem.min_pages * 65536
                ),
            });
        }
        let upload = Upload {
            name,
            manifest: req.manifest,
            module: &req.module,
            report,
        };
        let info = self.inner.registry.upload(
            who,
            upload,
            self.inner.runtime.limits(),
            &RegistryAudit(&self.inner.audit),
        )?;
        tracing::info!(tenant = %who.tenant, function = %info.name, version = info.version, sha256 = %info.sha256, "uploaded");
        Ok(info)
    }

    /// The caller's tenant's functions.
    pub fn list_functions(&self, who: &Principal) -> Result<Vec<FunctionSummary>, ServiceError> {
        Ok(self.inner.registry.list_functions(&who.tenant)?)
    }

    /// Versions awaiting approval in the caller's tenant.
    pub fn list_pending(&self, who: &Principal) -> Result<Vec<VersionInfo>, ServiceError> {
        Ok(self.inner.registry.list_pending(&who.tenant)?)
    }

    /// One function with all its versions.
    pub fn get_function(
        &self,
        who: &Principal,
        function: &str,
    ) -> Result<FunctionDetail, ServiceError> {
        let n = FunctionName::new(function).map_err(|_| ServiceError::NotFound {
            what: format!("function {function}"),
        })?;
        Ok(self.inner.registry.get_function(&who.tenant, &n)?)
    }

    /// One version: manifest, inspection report, decisions.
    pub fn get_version(
        &self,
        who: &Principal,
        function: &str,
        version: u32,
    ) -> Result<VersionInfo, ServiceError> {
        let n = FunctionName::new(function).map_err(|_| ServiceError::NotFound {
            what: format!("function {function}"),
        })?;
        Ok(self.inner.registry.get_version(&who.tenant, &n, version)?)
    }

    fn target(who: &Principal, function: &str, version: u32) -> Result<VersionRef, ServiceError> {
        Ok(VersionRef {
            tenant: who.tenant.clone(),
            name: name(function)?,
            version,
        })
    }

    fn forget(&self, who: &Principal, function: &str) {
        let mut map = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        map.remove(&(who.tenant.to_string(), function.to_owned()));
    }

    /// Activates a version bound to the sha256 the approver inspected.
    pub fn approve(
        &self,
        who: &Principal,
        function: &str,
        version: u32,
        sha256: &str,
        notes: &str,
    ) -> Result<VersionInfo, ServiceError> {
        require(who, &[Role::Approver], "approving")?;
        let t = Self::target(who, function, version)?;
        let info = self.inner.registry.approve(
            who,
            &t,
            sha256,
            notes,
            &RegistryAudit(&self.inner.audit),
        )?;
        self.forget(who, function);
        Ok(info)
    }

    /// Rejects a pending version.
    pub fn reject(
        &self,
        who: &Principal,
        function: &str,
        version: u32,
        sha256: &str,
        notes: &str,
    ) -> Result<VersionInfo, ServiceError> {
        require(who, &[Role::Approver], "rejecting")?;
        let t = Self::target(who, function, version)?;
        Ok(self
            .inner
            .registry
            .reject(who, &t, sha256, notes, &RegistryAudit(&self.inner.audit))?)
    }

    /// Revokes the active version: the next call gets `not_active`.
    pub fn revoke(
        &self,
        who: &Principal,
        function: &str,
        version: u32,
        notes: &str,
    ) -> Result<VersionInfo, ServiceError> {
        require(who, &[Role::Approver], "revoking")?;
        let t = Self::target(who, function, version)?;
        let info = self
            .inner
            .registry
            .revoke(who, &t, notes, &RegistryAudit(&self.inner.audit))?;
        self.forget(who, function);
        Ok(info)
    }

    /// The tenant's active functions as tool definitions for a model.
    pub fn tools(&self, who: &Principal, format: ToolFormat) -> Result<Value, ServiceError> {
        require(who, &[Role::Agent], "reading the tool catalog")?;
        let tools: Vec<Value> = self
            .inner
            .registry
            .active_versions(&who.tenant)?
            .into_iter()
            .map(|v| match format {
                ToolFormat::OpenAi => json!({
                    "type": "function",
                    "function": {"name": v.name, "description": v.manifest.description, "parameters": v.manifest.input_schema}
                }),
                ToolFormat::Anthropic => json!({
                    "name": v.name, "description": v.manifest.description, "input_schema": v.manifest.input_schema
                }),
            })
            .collect();
        Ok(Value::Array(tools))
    }

    /// The caller's tenant's audit records (admins and approvers).
    pub fn audit(&self, who: &Principal, mut q: AuditQuery) -> Result<AuditPage, ServiceError> {
        require(who, &[Role::Admin, Role::Approver], "reading the audit log")?;
        q.tenant_id = who.tenant.to_string();
        self.inner
            .audit
            .query(&q)
            .map_err(crate::admin::query_error)
    }

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
        let started = Instant::now();
        let now = SystemTime::now();
        let execution_id = ids::execution_id(now);
        let mut ctx = Context {
            tenant_id: who.tenant.to_string(),
            agent_id: who.subject.to_string(),
            user_id: req.user_id,
            function: req.function,
            version: String::new(),
            execution_id: execution_id.clone(),
        };
        if !self.inner.audit.is_healthy() {
            // Nothing runs while the audit log cannot write; recording this
            // refusal is attempted too, and a success reopens the door.
            let err = ServiceError::Unavailable {
                message: "the audit log cannot write; calls are refused".into(),
            };
            return Err(self.refuse(&ctx, now, started, b"", None, err));
        }
        let input = serde_json::to_vec(&req.input).unwrap_or_default();
        if let Err(e) = require(who, &[Role::Agent], "invoking") {
            return Err(self.refuse(&ctx, now, started, &input, None, e));
        }
        let _permit = match self.inner.limiter.admit(&who.tenant) {
            Ok(p) => p,
            Err(busy) => {
                let e = ServiceError::RateLimited {
                    retry_after: busy.retry_after,
                    scope: busy.scope,
                };
                return Err(self.refuse(&ctx, now, started, &input, None, e));
            }
        };
        let active = match self.resolve(who.tenant.as_ref(), &ctx.function) {
            Ok(a) => a,
            Err(e) => return Err(self.refuse(&ctx, now, started, &input, None, e)),
        };
        ctx.version = active.info.version.to_string();
        if input.len() as u64 > active.limits.input_bytes {
            let e = ServiceError::InvalidInput {
                message: format!(
                    "input is {} bytes, over the limit of {} bytes",
                    input.len(),
                    active.limits.input_bytes
                ),
                violations: Vec::new(),
            };
            return Err(self.refuse(&ctx, now, started, &input, Some(&active), e));
        }
        let found = violations(&active.input, &req.input);
        if !found.is_empty() {
            let e = ServiceError::InvalidInput {
                message: format!(
                    "input does not match the schema of {} ({} violations)",
                    ctx.function,
                    found.len()
                ),
                violations: found,
            };
            return Err(self.refuse(&ctx, now, started, &input, Some(&active), e));
        }

        let exec = self.inner.runtime.invoke(
            &active.module,
            &Invocation {
                input: &input,
                context: &ctx,
                limits: active.limits,
                start_time: now,
            },
        );
        let mut kind = exec.kind;
        let mut message = exec.message;
        let mut output = None;
        if let Some(bytes) = &exec.output {
            match serde_json::from_slice::<Value>(bytes) {
                Ok(v) => {
                    let bad = active
                        .output
                        .as_deref()
                        .map(|s| violations(s, &v))
                        .unwrap_or_default();
                    if bad.is_empty() {
                        output = Some(v);
                    } else {
                        kind = OutcomeKind::InvalidOutput;
                        let list: Vec<_> = bad
                            .iter()
                            .map(|b| format!("{}: {}", b.path, b.message))
                            .collect();
                        message = Some(format!(
                            "output does not match the output schema: {}",
                            list.join("; ")
                        ));
                    }
                }
                Err(e) => {
                    kind = OutcomeKind::InvalidOutput;
                    message = Some(format!("output is not JSON: {e}"));
                }
            }
        }
        let duration = started.elapsed();
        let recorded = self.submit_invocation(|| {
            let mut rec = ExecutionRecord::from_context(&ctx, now, kind);
            rec.module_sha256 = Some(active.info.sha256.clone());
            rec.error_message = message.clone();
            rec.fuel_used = exec.fuel_used;
            rec.memory_peak_bytes = exec.memory_peak_bytes;
            rec.set_parsed_input(&input, &req.input);
            rec.set_output(exec.output.as_deref().filter(|_| kind == OutcomeKind::Ok));
            rec.duration_ms = duration.as_secs_f64() * 1000.0;
            let capture = active.info.manifest.capture.map(|c| Captured {
                input: input.clone(),
                output: exec.output.clone(),
                retention_days: c.retention_days,
            });
            (rec, capture)
        });
        let outcome = InvokeOutcome {
            execution_id,
            function: ctx.function,
            version: active.info.version,
            kind,
            output,
            message,
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
        ctx: &Context,
        now: SystemTime,
        started: Instant,
        input: &[u8],
        active: Option<&Active>,
        error: ServiceError,
    ) -> Refused {
        let kind = match error.kind() {
            crate::ErrorKind::Outcome(k) => k,
            // The host cannot serve now (its audit log could not write): a
            // capacity refusal. Recording it also probes whether the log
            // can write again.
            _ => OutcomeKind::RateLimited,
        };
        let recorded = self
            .submit_invocation(|| {
                let mut rec = ExecutionRecord::from_context(ctx, now, kind);
                rec.module_sha256 = active.map(|a| a.info.sha256.clone());
                rec.error_message = Some(error.to_string());
                rec.set_input(input);
                rec.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                (rec, None)
            })
            .map_or(Ok(()), |p| p.wait().map(drop));
        match recorded {
            Ok(_) => {
                self.inner.metrics.record(kind, started.elapsed(), 0);
                Refused {
                    error,
                    execution_id: Some(ctx.execution_id.clone()),
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
    fn resolve(&self, tenant: &str, function: &str) -> Result<Arc<Active>, ServiceError> {
        let key = (tenant.to_owned(), function.to_owned());
        let ttl = self.inner.config.active_cache_ttl();
        let cached = self
            .inner
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(a) = &cached
            && a.checked.elapsed() < ttl
        {
            return Ok(Arc::clone(a));
        }
        let not_found = || ServiceError::NotFound {
            what: format!("function {function}"),
        };
        let tenant_id = aifn_types::TenantId::new(tenant).map_err(|_| not_found())?;
        let n = FunctionName::new(function).map_err(|_| not_found())?;
        let lookup = self.inner.registry.active(&tenant_id, &n);
        let info = match lookup {
            Ok(info) => info,
            Err(e) => {
                self.inner
                    .active
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                return Err(e.into());
            }
        };
        let fresh = match cached {
            // Still the same version: keep its module and schemas.
            Some(a) if a.info.sha256 == info.sha256 && a.info.version == info.version => {
                Arc::new(Active {
                    info,
                    module: a.module.clone(),
                    input: Arc::clone(&a.input),
                    output: a.output.clone(),
                    limits: a.limits,
                    checked: Instant::now(),
                })
            }
            _ => Arc::new(self.prepare(info)?),
        };
        let mut map = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.inner.active_capacity && !map.contains_key(&key) {
            // Bounded like the runtime's module cache, oldest check first.
            if let Some(old) = map
                .iter()
                .min_by_key(|(_, a)| a.checked)
                .map(|(k, _)| k.clone())
            {
                map.remove(&old);
            }
        }
        map.insert(key, Arc::clone(&fresh));
        Ok(fresh)
    }

    fn prepare(&self, info: VersionInfo) -> Result<Active, ServiceError> {
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
            checked: Instant::now(),
        })
    }

    /// Ready to serve: the audit log can write.
    pub fn ready(&self) -> Result<(), String> {
        if self.inner.audit.is_healthy() {
            Ok(())
        } else {
            Err("the audit log cannot write".into())
        }
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let audit = self.inner.audit.stats();
        let cached = self.inner.runtime.stats().cached_modules as u64;
        self.inner.metrics.render(
            self.inner.limiter.running(),
            &[
                (
                    "aifn_audit_records",
                    "Audit records appended by this process.",
                    audit.records,
                ),
                (
                    "aifn_audit_commits",
                    "Audit commits (each one fsync).",
                    audit.commits,
                ),
                (
                    "aifn_audit_healthy",
                    "1 when the audit log can write.",
                    u64::from(self.inner.audit.is_healthy()),
                ),
                (
                    "aifn_cached_modules",
                    "Compiled modules held in memory.",
                    cached,
                ),
            ],
        )
    }

    /// The metrics counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Applies the audit retention setting, if any (the pruning is recorded).
    pub fn apply_retention(&self) -> Result<u64, ServiceError> {
        let Some(days) = self.inner.config.audit_retention_days else {
            return Ok(0);
        };
        let cutoff = SystemTime::now() - Duration::from_secs(u64::from(days) * 86_400);
        let report = self
            .inner
            .audit
            .prune(cutoff, "retention")
            .map_err(|e| ServiceError::internal("audit retention", &e))?;
        Ok(report.pruned)
    }

    /// Flushes the audit log and signs a final checkpoint.
    pub fn close(&self) -> Result<(), ServiceError> {
        self.inner
            .audit
            .close()
            .map_err(|e| ServiceError::internal("audit close", &e))
    }
}
