//! The one wasmtime `Engine` and its epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::validate::allowed_features;
use crate::{RuntimeConfig, RuntimeError};

pub(crate) fn build(cfg: &RuntimeConfig) -> Result<Engine, RuntimeError> {
    let l = &cfg.limits;
    let bad = |what: &str| RuntimeError::Config(what.to_owned());
    let memory_bytes =
        usize::try_from(l.memory_bytes).map_err(|_| bad("limits.memory_bytes too large"))?;
    let table_elements =
        usize::try_from(l.table_elements).map_err(|_| bad("limits.table_elements too large"))?;
    let stack_bytes =
        usize::try_from(l.stack_bytes).map_err(|_| bad("limits.stack_bytes too large"))?;
    if cfg.max_instances == 0 {
        return Err(bad("max_instances must be at least 1"));
    }
    if stack_bytes < 16 * 1024 {
        return Err(bad("limits.stack_bytes must be at least 16 KiB"));
    }

    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(cfg.max_instances)
        .total_memories(cfg.max_instances)
        .total_tables(cfg.max_instances)
        .total_component_instances(0)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(memory_bytes)
        .table_elements(table_elements)
        .linear_memory_keep_resident(cfg.memory_keep_resident)
        .table_keep_resident(64 * 1024)
        // Linux 6.7+: reset only the pages a call dirtied, not the whole
        // kept-resident region; off elsewhere.
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(stack_bytes)
        // Same input and context, same output bytes: no host-dependent NaNs.
        .cranelift_nan_canonicalization(true)
        // Traps are classified by type; backtraces would only cost time.
        .wasm_backtrace_max_frames(None)
        .wasm_features(wasmparser::WasmFeatures::all(), false)
        .wasm_features(allowed_features(), true);
    Engine::new(&c).map_err(RuntimeError::Engine)
}

/// Advances the engine's epoch while calls are in flight, so deadlines are
/// checked; parks while the runtime is idle.
pub(crate) struct Ticker {
    inner: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickerShared {
    in_flight: AtomicUsize,
    stop: AtomicBool,
}

/// Held for the length of one call.
pub(crate) struct InFlight<'a> {
    ticker: &'a Ticker,
}

impl Ticker {
    pub(crate) fn start(
        engine: &Engine,
        tick: std::time::Duration,
    ) -> Result<Ticker, RuntimeError> {
        let inner = Arc::new(TickerShared {
            in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&inner);
        let weak = engine.weak();
        let thread = thread::Builder::new()
            .name("aifn-epoch".into())
            .spawn(move || {
                while !shared.stop.load(Ordering::Acquire) {
                    if shared.in_flight.load(Ordering::Acquire) == 0 {
                        // An unpark between the load and here is not lost.
                        thread::park();
                        continue;
                    }
                    thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(RuntimeError::Ticker)?;
        Ok(Ticker {
            inner,
            thread: Some(thread),
        })
    }

    pub(crate) fn enter(&self) -> InFlight<'_> {
        if self.inner.in_flight.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(t) = &self.thread
        {
            t.thread().unpark();
        }
        InFlight { ticker: self }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.ticker.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
