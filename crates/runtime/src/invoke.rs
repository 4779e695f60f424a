//! One call: a fresh store with the limits and the context, the instance,
//! and the classification of how it ended.

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use aifn_types::{Context, Limits, LogLine, OutcomeKind};
use wasmtime::{ModuleExport, Store, Trap};

use crate::fair::Share;
use crate::host::{HostState, HostTrap, Limiter, LogBuffer};
use crate::json::one_json_document;
use crate::wasi::WasiState;
use crate::{CancelToken, Loaded, LoadedModule, Runtime};

/// What to run: the input, the context the guest sees, the limits and
/// the start time its clocks read.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The input JSON bytes.
    pub input: &'a [u8],
    /// The injected context.
    pub context: &'a Context,
    /// This call's limits; clamped to the runtime's maxima.
    pub limits: Limits,
    /// What the guest's WASI clocks read. Set it from the audit record to
    /// replay a call.
    pub start_time: SystemTime,
    /// Interrupts the call when cancelled (the client went away); the
    /// outcome is then `timeout` with [`Execution::cancelled`] set.
    pub cancel: Option<CancelToken>,
}

impl<'a> Invocation<'a> {
    /// An invocation starting now.
    pub fn new(input: &'a [u8], context: &'a Context, limits: Limits) -> Invocation<'a> {
        Invocation {
            input,
            context,
            limits,
            start_time: SystemTime::now(),
            cancel: None,
        }
    }
}

/// How one call ended. Exactly one [`OutcomeKind`].
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// The outcome.
    pub kind: OutcomeKind,
    /// The output JSON bytes, when `kind` is `ok`.
    pub output: Option<Vec<u8>>,
    /// What went wrong, when `kind` is not `ok`.
    pub message: Option<String>,
    /// For `trap`: the trap code, e.g. `unreachable`.
    pub trap_code: Option<&'static str>,
    /// Fuel consumed, host calls included.
    pub fuel_used: u64,
    /// Wall-clock time of the call, instantiation included.
    pub duration: Duration,
    /// The largest the linear memory grew to, in bytes.
    pub memory_peak_bytes: u64,
    /// The guest's log lines, bounded.
    pub logs: Vec<LogLine>,
    /// True when the caller cancelled the call and the guest was
    /// interrupted (the kind is then `timeout`).
    pub cancelled: bool,
}

impl Execution {
    /// An execution that ended before any guest code ran.
    pub(crate) fn refused(kind: OutcomeKind, message: String, started: Instant) -> Execution {
        Execution {
            kind,
            output: None,
            message: Some(message),
            trap_code: None,
            fuel_used: 0,
            duration: started.elapsed(),
            memory_peak_bytes: 0,
            logs: Vec::new(),
            cancelled: false,
        }
    }

    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.kind == OutcomeKind::Ok
    }
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn trap_code(t: Trap) -> &'static str {
    match t {
        Trap::StackOverflow => "stack_overflow",
        Trap::MemoryOutOfBounds => "memory_out_of_bounds",
        Trap::HeapMisaligned => "heap_misaligned",
        Trap::TableOutOfBounds => "table_out_of_bounds",
        Trap::IndirectCallToNull => "indirect_call_to_null",
        Trap::BadSignature => "indirect_call_type_mismatch",
        Trap::IntegerOverflow => "integer_overflow",
        Trap::IntegerDivisionByZero => "integer_divide_by_zero",
        Trap::BadConversionToInteger => "bad_conversion_to_integer",
        Trap::UnreachableCodeReached => "unreachable",
        Trap::Interrupt => "interrupt",
        Trap::OutOfFuel => "out_of_fuel",
        Trap::NullReference => "null_reference",
        Trap::AllocationTooLarge => "allocation_too_large",
        _ => "other",
    }
}

/// The guest's verdict, before output checks.
pub(crate) enum Ended {
    Returned(i32),
    Failed(wasmtime::Error),
}

pub(crate) fn invoke(rt: &Runtime, module: &LoadedModule, inv: &Invocation<'_>) -> Execution {
    let started = Instant::now();
    let limits = inv.limits.min(&rt.config.limits);
    if inv.input.len() as u64 > limits.input_bytes {
        return Execution::refused(
            OutcomeKind::InvalidInput,
            format!(
                "input is {} bytes, over the limit of {} bytes",
                inv.input.len(),
                limits.input_bytes
            ),
            started,
        );
    }
    if let Err(e) = one_json_document(inv.input) {
        return Execution::refused(
            OutcomeKind::InvalidInput,
            format!("input is not one JSON document: {e}"),
            started,
        );
    }

    let start_ns = inv
        .start_time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let setup = Setup {
        input: inv.input.to_vec(),
        context: inv.context.to_json_bytes(),
        execution_id: &inv.context.execution_id,
        start_ns,
        started,
        output_limit: to_usize(limits.output_bytes),
        cancel: inv.cancel.clone(),
        script: module.0.script.clone(),
        tenant: Some(&inv.context.tenant_id),
    };
    let m = &module.0;
    let (ended, state, fuel_used) = run_export(rt, m, &m.call_export, &limits, setup);
    classify(ended, state, &limits, fuel_used, started.elapsed(), m.exits)
}

/// What a store starts with, besides the limits.
pub(crate) struct Setup<'a> {
    pub(crate) input: Vec<u8>,
    pub(crate) context: Vec<u8>,
    pub(crate) execution_id: &'a str,
    pub(crate) start_ns: u64,
    pub(crate) started: Instant,
    pub(crate) output_limit: usize,
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) script: Option<std::sync::Arc<[u8]>>,
    /// Whose share of the cores the call's slices come from; `None` for
    /// the host's own runs (compiling a script), which take no slot.
    pub(crate) tenant: Option<&'a str>,
}

/// Runs one export of a fresh instance under `limits`: the verdict, the
/// store's state (logs finished) and the fuel used.
pub(crate) fn run_export(
    rt: &Runtime,
    m: &Loaded,
    export: &ModuleExport,
    limits: &Limits,
    setup: Setup<'_>,
) -> (Ended, HostState, u64) {
    let mut share = setup.tenant.map(|t| rt.fair.enter(t));
    let mut store = new_store(rt, limits, setup);
    let ended = run(m, export, &mut store, share.as_mut());
    drop(share);
    let (state, fuel_used) = finish(store, limits);
    (ended, state, fuel_used)
}

/// A store for one call: its state, limiter, fuel and deadline.
pub(crate) fn new_store(rt: &Runtime, limits: &Limits, setup: Setup<'_>) -> Store<HostState> {
    let timeout = Duration::from_millis(limits.timeout_ms);
    let state = HostState {
        input: setup.input,
        context: setup.context,
        output: None,
        output_limit: setup.output_limit,
        logs: LogBuffer::new(to_usize(limits.log_bytes)),
        limiter: Limiter {
            memory_bytes: to_usize(limits.memory_bytes),
            table_elements: to_usize(limits.table_elements),
            peak_memory: 0,
            memory_refused: false,
            table_refused: false,
        },
        deadline: setup.started + timeout,
        cancel: setup.cancel,
        memory: None,
        wasi: WasiState::new(setup.start_ns, setup.execution_id),
        script: setup.script,
    };
    let mut store = Store::new(&rt.engine, state);
    store.limiter(|s| &mut s.limiter);
    // Fuel is always enabled on this engine, so neither can fail.
    let _ = store.set_fuel(limits.fuel);
    let _ = store.fuel_async_yield_interval(Some(YIELD_FUEL));
    store
}

/// Fuel per slice: about 7 µs of a tight loop or 40 µs of call-heavy code
/// between two looks at the deadline (benchmark 3), a few milliseconds at
/// worst for code that misses the cache on every load. A look costs about
/// 150 ns, so slices this long make it 2% of a tight loop.
pub(crate) const YIELD_FUEL: u64 = 100_000;

/// Runs `call` (wasm on `store`'s fiber) to its end on this thread. After
/// each fuel slice it comes back here: past `deadline`, or cancelled, the
/// call is dropped at that point (wasmtime unwinds the fiber) and the
/// result is an interrupt, as a deadline trap would be. With a `share`,
/// each slice first waits for a CPU slot (the same stops apply).
pub(crate) fn until<T>(
    call: impl Future<Output = wasmtime::Result<T>>,
    deadline: Instant,
    cancel: Option<&CancelToken>,
    mut share: Option<&mut Share<'_>>,
) -> wasmtime::Result<T> {
    let mut call = pin!(call);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Some(share) = share.as_deref_mut()
            && share.slice(deadline, cancel).is_err()
        {
            return Err(Trap::Interrupt.into());
        }
        // Nothing a guest can reach waits on the outside world, so a
        // pending poll is always the end of a fuel slice.
        if let Poll::Ready(done) = call.as_mut().poll(&mut cx) {
            return done;
        }
        if Instant::now() >= deadline || cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(Trap::Interrupt.into());
        }
    }
}

/// The store's state, logs finished, and the fuel it used.
pub(crate) fn finish(store: Store<HostState>, limits: &Limits) -> (HostState, u64) {
    let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let mut state = store.into_data();
    state.logs.finish();
    (state, fuel_used)
}

fn run(
    m: &Loaded,
    export: &ModuleExport,
    store: &mut Store<HostState>,
    share: Option<&mut Share<'_>>,
) -> Ended {
    let deadline = store.data().deadline;
    let cancel = store.data().cancel.clone();
    let call = async {
        let instance = m.pre.instantiate_async(&mut *store).await?;
        let memory = instance
            .get_module_export(&mut *store, &m.memory_export)
            .and_then(|e| e.into_memory());
        store.data_mut().memory = memory;
        if let (Some(heap), Some(memory)) = (&m.heap, memory) {
            heap.apply(&mut *store, memory)?;
        }
        if let Some(init) = &m.init_export
            && let Some(f) = instance
                .get_module_export(&mut *store, init)
                .and_then(|e| e.into_func())
        {
            f.typed::<(), ()>(&*store)?
                .call_async(&mut *store, ())
                .await?;
        }
        let call = instance
            .get_module_export(&mut *store, export)
            .and_then(|e| e.into_func())
            .ok_or_else(|| wasmtime::Error::msg("the export to call vanished"))?;
        call.typed::<(), i32>(&*store)?
            .call_async(&mut *store, ())
            .await
    };
    match until(call, deadline, cancel.as_ref(), share) {
        Ok(code) => Ended::Returned(code),
        Err(e) => match e.downcast_ref::<HostTrap>() {
            Some(HostTrap::Exit(code)) => Ended::Returned(*code),
            _ => Ended::Failed(e),
        },
    }
}

/// How a module's non-zero `aifn_call` results read: ABI v1 (every one a
/// `function_error`) or the JavaScript engine's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exits {
    Abi,
    Engine,
}

fn classify(
    ended: Ended,
    state: HostState,
    limits: &Limits,
    fuel_used: u64,
    duration: Duration,
    exits: Exits,
) -> Execution {
    let mut exec = Execution {
        kind: OutcomeKind::Ok,
        output: None,
        message: None,
        trap_code: None,
        fuel_used,
        duration,
        memory_peak_bytes: state.limiter.peak_memory as u64,
        logs: Vec::new(),
        cancelled: false,
    };
    let cancelled = state.cancel.as_ref().is_some_and(CancelToken::is_cancelled);
    let fail = |exec: &mut Execution, kind, msg: String| {
        exec.kind = kind;
        exec.message = Some(msg);
    };
    match ended {
        Ended::Returned(0) => match state.output {
            None => fail(
                &mut exec,
                OutcomeKind::InvalidOutput,
                "the function returned 0 but wrote no output".into(),
            ),
            Some(out) => match one_json_document(&out) {
                Ok(_) => exec.output = Some(out),
                Err(e) => fail(
                    &mut exec,
                    OutcomeKind::InvalidOutput,
                    format!("output is not one JSON document: {e}"),
                ),
            },
        },
        Ended::Returned(code) => {
            let msg = match state.output {
                Some(out) if !out.is_empty() => String::from_utf8_lossy(&out).into_owned(),
                _ => format!("the function returned error code {code}"),
            };
            let kind = match exits {
                Exits::Abi => OutcomeKind::FunctionError,
                Exits::Engine => crate::js::exit_kind(code),
            };
            let msg = match kind {
                OutcomeKind::MemoryLimit => format!(
                    "the JavaScript engine ran out of memory (limit {} bytes): {msg}",
                    limits.memory_bytes
                ),
                OutcomeKind::StackOverflow => format!("JavaScript stack exhausted: {msg}"),
                _ => msg,
            };
            fail(&mut exec, kind, msg);
        }
        Ended::Failed(err) => {
            let limiter = &state.limiter;
            if let Some(h) = err.downcast_ref::<HostTrap>() {
                let kind = match h {
                    HostTrap::OutOfFuel { .. } => OutcomeKind::FuelExhausted,
                    HostTrap::OutputTooLarge { .. } => OutcomeKind::OutputTooLarge,
                    HostTrap::OutOfBounds { .. }
                    | HostTrap::NoMemory { .. }
                    | HostTrap::Exit(_) => {
                        exec.trap_code = Some("host_out_of_bounds");
                        OutcomeKind::Trap
                    }
                };
                fail(&mut exec, kind, h.to_string());
            } else if let Some(&t) = err.downcast_ref::<Trap>() {
                match t {
                    Trap::OutOfFuel => fail(
                        &mut exec,
                        OutcomeKind::FuelExhausted,
                        format!("all fuel consumed (limit {})", limits.fuel),
                    ),
                    Trap::Interrupt if cancelled => {
                        exec.cancelled = true;
                        fail(
                            &mut exec,
                            OutcomeKind::Timeout,
                            "interrupted: the caller cancelled the call".into(),
                        );
                    }
                    Trap::Interrupt => fail(
                        &mut exec,
                        OutcomeKind::Timeout,
                        format!("deadline of {} ms exceeded", limits.timeout_ms),
                    ),
                    Trap::StackOverflow => fail(
                        &mut exec,
                        OutcomeKind::StackOverflow,
                        format!("wasm stack limit of {} bytes exhausted", limits.stack_bytes),
                    ),
                    _ if limiter.memory_refused || limiter.table_refused => {
                        exec.trap_code = Some(trap_code(t));
                        fail(
                            &mut exec,
                            OutcomeKind::MemoryLimit,
                            limit_message(limiter, limits, Some(t)),
                        );
                    }
                    _ => {
                        exec.trap_code = Some(trap_code(t));
                        let mut msg = format!("{}: {t}", trap_code(t));
                        if let Some(last) = state.logs.last_error() {
                            msg.push_str("; guest: ");
                            msg.push_str(last);
                        }
                        fail(&mut exec, OutcomeKind::Trap, msg);
                    }
                }
            } else if limiter.memory_refused || limiter.table_refused {
                // Instantiation refused by the limiter (initial sizes).
                fail(
                    &mut exec,
                    OutcomeKind::MemoryLimit,
                    limit_message(limiter, limits, None),
                );
            } else if err
                .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some()
            {
                fail(
                    &mut exec,
                    OutcomeKind::RateLimited,
                    "the host is running as many instances as it allows".into(),
                );
            } else {
                exec.trap_code = Some("instantiation");
                fail(
                    &mut exec,
                    OutcomeKind::Trap,
                    format!("instantiation failed: {err}"),
                );
            }
        }
    }
    exec.logs = state.logs.lines;
    exec
}

fn limit_message(l: &Limiter, limits: &Limits, trap: Option<Trap>) -> String {
    let what = if l.memory_refused {
        format!("memory limit of {} bytes reached", limits.memory_bytes)
    } else {
        format!("table limit of {} elements reached", limits.table_elements)
    };
    match trap {
        Some(t) => format!("{what} (then the guest trapped: {t})"),
        None => what,
    }
}

#[cfg(test)]
mod tests;
