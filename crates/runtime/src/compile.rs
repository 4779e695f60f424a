//! Bounded compilation: on its own thread, with a deadline, and at most
//! `max_concurrent_compiles` compilations alive at once (abandoned ones
//! included), so a compile bomb cannot take every core.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Module};

use crate::{Cause, ModuleError};

/// Counts live compile threads.
pub(crate) struct CompileGate {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
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
    pub(crate) fn new(max: usize) -> Arc<CompileGate> {
        Arc::new(CompileGate {
            running: Mutex::new(0),
            freed: Condvar::new(),
            max: max.max(1),
        })
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
    thread::Builder::new()
        .name("aifn-compile".into())
        // Cranelift recurses on deeply nested code; give it room.
        .stack_size(16 << 20)
        .spawn(move || {
            let result =
                Module::new(&engine, &bytes).map_err(|e| ModuleError::Compile(Cause::new(e)));
            drop(slot);
            let _ = tx.send(result);
        })
        .map_err(|e| ModuleError::CompileThread(Cause::new(e)))?;
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(result) => result,
        // The thread finishes in the background and frees its slot then.
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ModuleError::CompileTimeout { limit_ms }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ModuleError::CompileThreadDied),
    }
}
