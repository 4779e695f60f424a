//! Bounded compilation: on a pool of low-priority threads, with a
//! deadline, and at most `max_concurrent_compiles` compilations alive at
//! once (abandoned ones included).
//!
//! Cranelift compiles a module's functions in parallel over the pool, so an
//! upload on an idle host uses every core; the pool's threads run at nice
//! [`COMPILE_NICE`], so while calls are running the scheduler gives the
//! cores to them and a compile bomb takes only what they leave.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Module};

use crate::{Cause, ModuleError, RuntimeError};

/// The compile threads' nice value: against a call thread at nice 0 one
/// gets about a tenth of a core (CFS weights 110 and 1024).
pub(crate) const COMPILE_NICE: i32 = 10;

/// The compile threads' names, `aifn-compile-N`.
pub(crate) const COMPILE_THREAD: &str = "aifn-compile";

/// Counts live compilations and holds the threads they run on.
pub(crate) struct CompileGate {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
    pool: rayon::ThreadPool,
}

struct Slot(Arc<CompileGate>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl CompileGate {
    pub(crate) fn new(max: usize, threads: usize) -> Result<Arc<CompileGate>, RuntimeError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("{COMPILE_THREAD}-{i}"))
            // Cranelift recurses on deeply nested code; give it room.
            .stack_size(16 << 20)
            .start_handler(|_| {
                let me = rustix::thread::gettid();
                if let Err(e) = rustix::process::setpriority_process(Some(me), COMPILE_NICE) {
                    tracing::warn!(error = %e, "compile thread keeps its priority");
                }
            })
            .build()
            .map_err(RuntimeError::CompilePool)?;
        Ok(Arc::new(CompileGate {
            running: Mutex::new(0),
            freed: Condvar::new(),
            max: max.max(1),
            pool,
        }))
    }

    /// Compilations running now, abandoned ones still finishing included.
    pub(crate) fn running(&self) -> usize {
        *self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acquire(self: &Arc<Self>, deadline: Instant) -> Option<Slot> {
        let mut n = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= self.max {
            let left = deadline.checked_duration_since(Instant::now())?;
            n = self
                .freed
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *n += 1;
        Some(Slot(Arc::clone(self)))
    }
}

/// Compiles `bytes` within `timeout`, or refuses with `compile_timeout`.
pub(crate) fn compile(
    engine: &Engine,
    gate: &Arc<CompileGate>,
    bytes: &[u8],
    timeout: Duration,
) -> Result<Module, ModuleError> {
    let limit_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let deadline = Instant::now() + timeout;
    let slot = gate
        .acquire(deadline)
        .ok_or(ModuleError::CompileTimeout { limit_ms })?;
    let (tx, rx) = mpsc::sync_channel(1);
    let engine = engine.clone();
    let bytes = bytes.to_vec();
    // Inside the pool, wasmtime's parallel compile uses the same threads.
    gate.pool.spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(|| Module::new(&engine, &bytes)));
        drop(slot);
        // A panic drops the sender: the caller sees the thread die.
        if let Ok(result) = result {
            let _ = tx.send(result.map_err(|e| ModuleError::Compile(Cause::new(e))));
        }
    });
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(result) => result,
        // The compile finishes in the background and frees its slot then.
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ModuleError::CompileTimeout { limit_ms }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ModuleError::CompileThreadDied),
    }
}
