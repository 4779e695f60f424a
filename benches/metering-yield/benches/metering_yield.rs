//! Benchmark 3, continued: can both guarantees (a deterministic fuel budget
//! and a wall-clock deadline) cost less than fuel plus epoch interruption?
//!
//! Epoch interruption adds its own check at every function entry and loop
//! header, beside fuel's. With `fuel_async_yield_interval`, wasmtime hands
//! the guest its fuel in slices of N units and returns to the host (a
//! fiber switch) after each slice; the host checks the deadline there and
//! drops the call when it has passed. Fuel's own instrumentation is the
//! only one compiled in. The same guests as `benches/metering.rs`
//! (recursive `fib(25)`, sieve below 100,000), on the same bare-wasmtime
//! floor (pooling allocator, `InstancePre`, fresh store per call), in one
//! run: no metering, fuel + epoch (aifn's configuration), fuel + yield.
//!
//! Before measuring, it checks that fuel + yield keeps both guarantees: an
//! infinite loop under a 100 ms deadline stops at the deadline, and a
//! small fuel budget ends in `OutOfFuel`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use wasmtime::{
    Caller, Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../src/guests.rs"]
mod guests;

/// Fuel units per slice: about 10 us of guest work between deadline checks.
const YIELD_INTERVAL: u64 = 10_000;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    None,
    FuelEpoch,
    FuelYield,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::None => "wasmtime_none",
            Mode::FuelEpoch => "wasmtime_fuel+epoch",
            Mode::FuelYield => "wasmtime_fuel+yield",
        }
    }
}

struct State {
    memory: Option<wasmtime::Memory>,
    output: Vec<u8>,
    deadline: Instant,
}

struct Floor {
    engine: Engine,
    pre: InstancePre<State>,
    mode: Mode,
    stop: Arc<AtomicBool>,
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

#[derive(Debug)]
enum End {
    Ok(Vec<u8>),
    OutOfFuel,
    Deadline,
}

impl Floor {
    fn new(wat: &str, mode: Mode) -> Floor {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(16)
            .total_memories(16)
            .total_tables(16)
            .total_stacks(16)
            .max_memory_size(64 << 20)
            .linear_memory_keep_resident(128 * 1024)
            .table_keep_resident(64 * 1024);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .consume_fuel(mode != Mode::None)
            .epoch_interruption(mode == Mode::FuelEpoch);
        let engine = Engine::new(&config).expect("engine");
        let mut linker: Linker<State> = Linker::new(&engine);
        linker
            .func_wrap("aifn", "output_write", |mut c: Caller<'_, State>, src: i32, len: i32| {
                let mem = c.data().memory.ok_or_else(|| wasmtime::format_err!("no memory"))?;
                let (data, state) = mem.data_and_store_mut(&mut c);
                let (src, len) = (src as u32 as usize, len as u32 as usize);
                state.output = data.get(src..src + len).ok_or_else(|| wasmtime::format_err!("oob"))?.to_vec();
                Ok(())
            })
            .expect("output_write");
        let module = Module::new(&engine, wat::parse_str(wat).expect("wat")).expect("module");
        let pre = linker.instantiate_pre(&module).expect("pre");
        let stop = Arc::new(AtomicBool::new(false));
        if mode == Mode::FuelEpoch {
            // The 1 ms ticker aifn runs.
            let (weak, stop) = (engine.weak(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                    match weak.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            });
        }
        Floor { engine, pre, mode, stop }
    }

    fn call(&self, fuel: u64, timeout: Duration) -> End {
        let state = State { memory: None, output: Vec::new(), deadline: Instant::now() + timeout };
        let mut store = Store::new(&self.engine, state);
        if self.mode != Mode::None {
            store.set_fuel(fuel).expect("fuel");
        }
        let result = match self.mode {
            Mode::FuelYield => {
                store.fuel_async_yield_interval(Some(YIELD_INTERVAL)).expect("yield interval");
                let deadline = store.data().deadline;
                let run = async {
                    let instance = self.pre.instantiate_async(&mut store).await?;
                    let f = instance.get_typed_func::<(), i32>(&mut store, "aifn_call")?;
                    if let Some(Extern::Memory(m)) = instance.get_export(&mut store, "memory") {
                        store.data_mut().memory = Some(m);
                    }
                    f.call_async(&mut store, ()).await
                };
                match until(run, deadline) {
                    Some(r) => r,
                    None => return End::Deadline,
                }
            }
            _ => {
                if self.mode == Mode::FuelEpoch {
                    store.set_epoch_deadline(1);
                    store.epoch_deadline_callback(|ctx| {
                        if Instant::now() >= ctx.data().deadline {
                            Ok(UpdateDeadline::Interrupt)
                        } else {
                            Ok(UpdateDeadline::Continue(1))
                        }
                    });
                }
                (|| {
                    let instance = self.pre.instantiate(&mut store)?;
                    let f = instance.get_typed_func::<(), i32>(&mut store, "aifn_call")?;
                    if let Some(Extern::Memory(m)) = instance.get_export(&mut store, "memory") {
                        store.data_mut().memory = Some(m);
                    }
                    f.call(&mut store, ())
                })()
            }
        };
        match result {
            Ok(_) => End::Ok(std::mem::take(&mut store.data_mut().output)),
            Err(e) => match e.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => End::OutOfFuel,
                Some(Trap::Interrupt) => End::Deadline,
                _ => panic!("unexpected error: {e:?}"),
            },
        }
    }
}

/// Polls `fut` to completion on this thread; between polls (each fuel
/// slice) checks the deadline. `None`: the deadline passed and the call was
/// dropped, which wasmtime supports at any yield point.
fn until<T>(fut: impl Future<Output = T>, deadline: Instant) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

const SPIN: &str = r#"(module (import "aifn" "output_write" (func (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

fn guarantees() {
    for mode in [Mode::FuelEpoch, Mode::FuelYield] {
        let spin = Floor::new(SPIN, mode);
        let mut stops = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let end = spin.call(u64::MAX / 2, Duration::from_millis(100));
            stops.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(matches!(end, End::Deadline), "{mode:?}: {end:?}");
        }
        let end = spin.call(1_000_000, Duration::from_secs(10));
        assert!(matches!(end, End::OutOfFuel), "{mode:?}: {end:?}");
        let max = stops.iter().cloned().fold(0.0, f64::max);
        eprintln!("{}: infinite loop under a 100 ms deadline stopped after at most {max:.1} ms (5 calls); 1,000,000 fuel ends in OutOfFuel", mode.name());
    }
}

fn workload(c: &mut Criterion, group: &str, wat: &str, expected: &[u8]) {
    let mut g = c.benchmark_group(group);
    for mode in [Mode::None, Mode::FuelEpoch, Mode::FuelYield] {
        let floor = Floor::new(wat, mode);
        match floor.call(100_000_000, Duration::from_secs(1)) {
            End::Ok(out) => assert_eq!(out, expected, "{mode:?}"),
            other => panic!("{mode:?}: {other:?}"),
        }
        g.bench_function(mode.name(), |b| b.iter(|| floor.call(100_000_000, Duration::from_secs(1))));
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    guarantees();
    workload(c, "metering_yield_fib", &guests::fib_wat(25), b"75025");
    workload(c, "metering_yield_sieve", &guests::sieve_wat(100_000), b"9592");
}

criterion_group!(benches, bench);
criterion_main!(benches);
