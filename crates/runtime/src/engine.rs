//! The one wasmtime `Engine`.
//!
//! Metering is fuel alone, handed out in slices (`invoke::YIELD_FUEL`):
//! a call runs on a wasmtime fiber and comes back to its thread after each
//! slice, where the deadline and the cancel token are checked. No epoch
//! instrumentation is compiled in, so a tight loop pays one check on its
//! back edge, not two, and fuel is exact whenever a call stops (wasmtime
//! saves a function's fuel before it yields; an epoch interrupt lost it).

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::validate::allowed_features;
use crate::{RuntimeConfig, RuntimeError};

/// Room on a call's fiber stack for the host's own frames (host functions,
/// wasmtime's entry and exit), above the guest's `stack_bytes`.
const HOST_STACK_BYTES: usize = 256 * 1024;

pub(crate) fn build(cfg: &RuntimeConfig) -> Result<Engine, RuntimeError> {
    Engine::new(&config(cfg)?).map_err(RuntimeError::Engine)
}

/// The engine's configuration, checked against the limits.
pub(crate) fn config(cfg: &RuntimeConfig) -> Result<Config, RuntimeError> {
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
    // A call's fiber holds the guest's stack and the host functions' frames.
    let fiber_stack = stack_bytes + HOST_STACK_BYTES;

    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(cfg.max_instances)
        .total_memories(cfg.max_instances)
        .total_tables(cfg.max_instances)
        .total_component_instances(0)
        .total_stacks(cfg.max_instances)
        // Host frames reuse warm pages; the guest's part is reset per call.
        .async_stack_keep_resident(HOST_STACK_BYTES)
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
        .max_wasm_stack(stack_bytes)
        .async_stack_size(fiber_stack)
        // Same input and context, same output bytes: no host-dependent NaNs.
        .cranelift_nan_canonicalization(true)
        // Traps are classified by type; backtraces would only cost time.
        .wasm_backtrace_max_frames(None)
        .wasm_features(wasmparser::WasmFeatures::all(), false)
        .wasm_features(allowed_features(), true);
    Ok(c)
}
