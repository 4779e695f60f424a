//! Unit tests of the call machinery itself: trap names, and the fuel a
//! call is charged when the host stops it between slices.

use std::time::{Duration, Instant};

use wasmtime::{Instance, Module, Store};

use super::{Trap, YIELD_FUEL, trap_code, until};
use crate::{CancelToken, RuntimeConfig};

/// Some of these never reach a report (fuel, deadline and stack are
/// outcomes of their own; the others need refused proposals), but the
/// names are the contract should one ever surface.
#[test]
fn every_trap_has_its_own_code() {
    let codes = [
        (Trap::StackOverflow, "stack_overflow"),
        (Trap::MemoryOutOfBounds, "memory_out_of_bounds"),
        (Trap::HeapMisaligned, "heap_misaligned"),
        (Trap::TableOutOfBounds, "table_out_of_bounds"),
        (Trap::IndirectCallToNull, "indirect_call_to_null"),
        (Trap::BadSignature, "indirect_call_type_mismatch"),
        (Trap::IntegerOverflow, "integer_overflow"),
        (Trap::IntegerDivisionByZero, "integer_divide_by_zero"),
        (Trap::BadConversionToInteger, "bad_conversion_to_integer"),
        (Trap::UnreachableCodeReached, "unreachable"),
        (Trap::Interrupt, "interrupt"),
        (Trap::OutOfFuel, "out_of_fuel"),
        (Trap::NullReference, "null_reference"),
        (Trap::AllocationTooLarge, "allocation_too_large"),
        (Trap::ArrayOutOfBounds, "other"),
    ];
    for (trap, code) in codes {
        assert_eq!(trap_code(trap), code, "{trap:?}");
    }
}

/// Counts loop iterations in an exported global, so the work done is
/// known even when the call never returns.
const COUNTER: &str = r#"(module
  (global $n (export "n") (mut i64) (i64.const 0))
  (func (export "spin") (param $max i64)
    (loop $l
      (global.set $n (i64.add (global.get $n) (i64.const 1)))
      (br_if $l (i64.ne (global.get $n) (local.get $max))))))"#;

const FUEL: u64 = u64::MAX / 4;

struct Counter {
    store: Store<()>,
    instance: Instance,
}

impl Counter {
    fn new(module: &Module) -> Counter {
        let mut store = Store::new(module.engine(), ());
        store.set_fuel(FUEL).expect("fuel is on");
        store
            .fuel_async_yield_interval(Some(YIELD_FUEL))
            .expect("yielding is on");
        let instance = until(
            Instance::new_async(&mut store, module, &[]),
            far(),
            None,
            None,
        )
        .expect("instantiates");
        Counter { store, instance }
    }

    /// Runs the loop up to `max` (`-1`: forever) and returns how it ended.
    fn spin(&mut self, max: i64, deadline: Instant, cancel: Option<&CancelToken>) -> Option<Trap> {
        let f = self
            .instance
            .get_typed_func::<i64, ()>(&mut self.store, "spin")
            .expect("export");
        let call = f.call_async(&mut self.store, max);
        until(call, deadline, cancel, None)
            .err()
            .map(|e| *e.downcast_ref::<Trap>().expect("a trap"))
    }

    fn fuel_used(&self) -> u64 {
        FUEL - self.store.get_fuel().expect("fuel is on")
    }

    fn count(&mut self) -> u64 {
        let n = self.instance.get_global(&mut self.store, "n").expect("n");
        u64::try_from(n.get(&mut self.store).unwrap_i64()).expect("positive")
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// The fuel a call of `n` iterations is charged, `a + b·n`, from two calls
/// that return.
fn cost_line(module: &Module) -> (u64, u64) {
    let mut fuel = [0; 2];
    for (i, n) in [1_000, 2_000].into_iter().enumerate() {
        let mut c = Counter::new(module);
        assert_eq!(c.spin(n, far(), None), None);
        assert_eq!(c.count(), n as u64);
        fuel[i] = c.fuel_used();
    }
    let per = (fuel[1] - fuel[0]) / 1_000;
    assert!(per > 0, "each iteration costs fuel");
    (fuel[0] - 1_000 * per, per)
}

/// A stopped call is charged what it ran: within one iteration of the
/// line the returning calls draw, never its whole limit and never less.
fn assert_exact(c: &mut Counter, (base, per): (u64, u64)) {
    let n = c.count();
    assert!(n > 0, "the loop ran before it was stopped");
    let expected = base + per * n;
    let used = c.fuel_used();
    assert!(
        used.abs_diff(expected) <= per,
        "{n} iterations cost {expected} fuel; charged {used}"
    );
}

fn counter_module() -> Module {
    let engine = crate::engine::build(&RuntimeConfig::default()).expect("engine");
    Module::new(&engine, COUNTER).expect("compiles")
}

#[test]
fn fuel_is_exact_for_a_call_that_returns_and_one_stopped_at_its_deadline() {
    let module = counter_module();
    let line = cost_line(&module);
    let mut c = Counter::new(&module);
    let deadline = Instant::now() + Duration::from_millis(20);
    assert_eq!(c.spin(-1, deadline, None), Some(Trap::Interrupt));
    assert!(Instant::now() >= deadline);
    assert_exact(&mut c, line);
}

#[test]
fn fuel_is_exact_for_a_cancelled_call() {
    let module = counter_module();
    let line = cost_line(&module);
    let mut c = Counter::new(&module);
    let token = CancelToken::new();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            token.cancel();
        })
    };
    assert_eq!(c.spin(-1, far(), Some(&token)), Some(Trap::Interrupt));
    canceller.join().expect("canceller");
    assert_exact(&mut c, line);
}

#[test]
fn a_call_inside_its_fuel_limit_is_not_stopped_by_its_slices() {
    let module = counter_module();
    let mut c = Counter::new(&module);
    // Twenty slices' worth of work or more (each iteration costs several
    // units), well inside the deadline: it returns.
    let n = i64::try_from(YIELD_FUEL * 20).expect("fits");
    assert_eq!(c.spin(n, far(), None), None);
    assert_eq!(c.count(), n as u64);
}
