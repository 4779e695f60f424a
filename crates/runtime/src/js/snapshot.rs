//! Pre-initialization of the engine: its start-up (runtime, context,
//! intrinsics) runs once per host and is snapshotted with wasmtime-wizer
//! into a module whose calls start from that state.

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

use wasmtime::{Instance, Store, Val};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

use crate::host::{HostState, Limiter, LogBuffer};
use crate::invoke::{YIELD_FUEL, until};
use crate::wasi::WasiState;
use crate::{ModuleError, Runtime};

const INIT: &str = "aifn_js_init";

fn engine_error(what: &str, e: impl std::fmt::Display) -> ModuleError {
    ModuleError::Engine {
        reason: format!("{what}: {e}"),
    }
}

/// The engine module with its start-up done.
pub(crate) fn preinitialize(rt: &Runtime, engine: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let mut wizer = Wizer::new();
    wizer.init_func(INIT);
    let (cx, instrumented) = wizer
        .instrument(engine)
        .map_err(|e| engine_error("instrumenting the engine", e))?;
    let (module, _) = rt.compile_engine(&instrumented)?;
    let limits = rt.limits();
    let state = HostState {
        input: Vec::new(),
        context: Vec::new(),
        output: None,
        output_limit: 0,
        logs: LogBuffer::new(0),
        limiter: Limiter {
            memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            table_elements: usize::try_from(limits.table_elements).unwrap_or(usize::MAX),
            peak_memory: 0,
            memory_refused: false,
            table_refused: false,
        },
        // Start-up is the engine's own code; the deadline still bounds it.
        deadline: Instant::now() + std::time::Duration::from_secs(10),
        cancel: None,
        memory: None,
        // The snapshot's clock and random state are the epoch's and a fixed
        // stream's; every call re-seeds from its own.
        wasi: WasiState::new(0, "aifn js engine snapshot"),
        script: None,
    };
    let mut store = Store::new(rt.wasm_engine(), state);
    store.limiter(|s| &mut s.limiter);
    let _ = store.set_fuel(limits.fuel);
    let _ = store.fuel_async_yield_interval(Some(YIELD_FUEL));
    let deadline = store.data().deadline;
    let stage =
        |what: &'static str| move |e: wasmtime::Error| wasmtime::Error::msg(format!("{what}: {e}"));
    let starting = async {
        let instance = rt
            .linker()
            .instantiate_async(&mut store, &module)
            .await
            .map_err(stage("instantiating the engine"))?;
        let init = instance
            .get_typed_func::<(), ()>(&mut store, INIT)
            .map_err(stage("the engine's init export"))?;
        init.call_async(&mut store, ())
            .await
            .map_err(stage("starting the engine"))?;
        wasmtime::Result::Ok(instance)
    };
    let instance =
        until(starting, deadline, None, None).map_err(|e| engine_error("starting", e))?;
    let mut state = Snapshotting {
        store: &mut store,
        instance,
    };
    block_on(wizer.snapshot(&cx, &mut state))
        .map_err(|e| engine_error("snapshotting the engine", e))
}

struct Snapshotting<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
}

impl InstanceState for Snapshotting<'_> {
    fn global_get(&mut self, name: &str, _: ValType) -> impl Future<Output = SnapshotVal> + Send {
        let value = self
            .instance
            .get_global(&mut *self.store, name)
            .map(|g| g.get(&mut *self.store));
        // Wizer asks only for the globals it exported when instrumenting.
        std::future::ready(match value {
            Some(Val::I64(v)) => SnapshotVal::I64(v),
            Some(Val::F32(v)) => SnapshotVal::F32(v),
            Some(Val::F64(v)) => SnapshotVal::F64(v),
            Some(Val::V128(v)) => SnapshotVal::V128(v.as_u128()),
            Some(Val::I32(v)) => SnapshotVal::I32(v),
            _ => SnapshotVal::I32(0),
        })
    }

    fn memory_contents(
        &mut self,
        name: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(m) => contents(m.data(&*self.store)),
            None => contents(&[]),
        }
        std::future::ready(())
    }
}

/// Polls a future that never waits (every await above is ready).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
