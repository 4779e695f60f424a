//! Shared pieces of aifn's benchmarks: the guest modules and the bare
//! wasmtime floor they are compared against.
//!
//! Every benchmark measures aifn beside its floor in the same run, so the
//! ratio holds even on a noisy machine.

use wasmtime::{Caller, Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig, Store};

/// An ABI v1 echo guest in WAT.
pub const ECHO_WAT: &str = r#"(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 0))
    (call $output_write (i32.const 0) (local.get $n))
    (i32.const 0)))"#;

/// A ~50-byte JSON input.
pub const ECHO_INPUT: &[u8] = br#"{"employee":"e-1042","from":"2026-03-02","days":3}"#;

/// Compiles WAT to wasm bytes.
pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap_or_else(|e| panic!("benchmark WAT is invalid: {e}"))
}

/// Host state of the floor: just the input and output buffers.
pub struct FloorState {
    input: Vec<u8>,
    output: Vec<u8>,
}

/// Bare wasmtime: pooling allocator, `InstancePre`, a fresh store per call,
/// host functions that copy bytes and nothing else (no fuel, no epoch, no
/// limits, no JSON checks, no context).
pub struct Floor {
    engine: Engine,
    pre: InstancePre<FloorState>,
}

impl Floor {
    /// Builds the floor for an ABI v1 module.
    pub fn new(wasm: &[u8]) -> wasmtime::Result<Floor> {
        let mut config = Config::new();
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(16).total_memories(16).total_tables(16).max_memory_size(64 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        linker.func_wrap("aifn", "input_len", |c: Caller<'_, FloorState>| c.data().input.len() as i32)?;
        linker.func_wrap("aifn", "input_read", |mut c: Caller<'_, FloorState>, dst: i32| {
            let mem = c.get_export("memory").and_then(|e| e.into_memory()).ok_or_else(|| wasmtime::format_err!("no memory"))?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let dst = dst as u32 as usize;
            let n = state.input.len();
            data.get_mut(dst..dst + n).ok_or_else(|| wasmtime::format_err!("oob"))?.copy_from_slice(&state.input);
            Ok(())
        })?;
        linker.func_wrap("aifn", "output_write", |mut c: Caller<'_, FloorState>, src: i32, len: i32| {
            let mem = c.get_export("memory").and_then(|e| e.into_memory()).ok_or_else(|| wasmtime::format_err!("no memory"))?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let (src, len) = (src as u32 as usize, len as u32 as usize);
            state.output = data.get(src..src + len).ok_or_else(|| wasmtime::format_err!("oob"))?.to_vec();
            Ok(())
        })?;
        let module = Module::new(&engine, wasm)?;
        let pre = linker.instantiate_pre(&module)?;
        Ok(Floor { engine, pre })
    }

    /// One call: instantiate and call `aifn_call`, return the output.
    pub fn call(&self, input: &[u8]) -> wasmtime::Result<Vec<u8>> {
        let mut store = Store::new(&self.engine, FloorState { input: input.to_vec(), output: Vec::new() });
        let instance = self.pre.instantiate(&mut store)?;
        let f = instance.get_typed_func::<(), i32>(&mut store, "aifn_call")?;
        f.call(&mut store, ())?;
        Ok(store.into_data().output)
    }
}
