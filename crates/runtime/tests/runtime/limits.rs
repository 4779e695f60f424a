//! Every limit as a pair: a guest just inside it, and one over it.

use crate::*;

fn looping(iterations: &str) -> String {
    module(
        "",
        &format!(
            "             (loop $l
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const {iterations}))))
             (i32.const 0)"
        ),
    )
}

const SPIN: &str = "(loop $l (br $l)) (i32.const 0)";

#[test]
fn fuel_inside_and_over_the_budget() {
    let rt = runtime();
    let limits = Limits {
        fuel: 100_000,
        ..Limits::default()
    };
    let e = run_with(&rt, &looping("1000"), "{}", limits);
    assert_kind(&e, OutcomeKind::Ok);
    assert!(
        e.fuel_used > 1000 && e.fuel_used < 100_000,
        "{}",
        e.fuel_used
    );
    let e = run_with(&rt, &looping("1000000"), "{}", limits);
    assert_kind(&e, OutcomeKind::FuelExhausted);
    assert_eq!(e.fuel_used, 100_000);
    assert_eq!(
        e.message.as_deref(),
        Some("all fuel consumed (limit 100000)")
    );
}

#[test]
fn a_function_may_lower_fuel_but_never_raise_it_above_the_host_maximum() {
    let rt = runtime_with(Limits {
        fuel: 50_000,
        ..Limits::default()
    });
    // The caller asks for more than the host allows: the host maximum holds.
    let e = run_with(
        &rt,
        &looping("1000000"),
        "{}",
        Limits {
            fuel: u64::MAX,
            ..Limits::default()
        },
    );
    assert_kind(&e, OutcomeKind::FuelExhausted);
    assert_eq!(e.fuel_used, 50_000);
}

/// Limits that let only the deadline stop a guest.
fn deadline(ms: u64) -> Limits {
    Limits {
        fuel: u64::MAX / 2,
        timeout_ms: ms,
        ..Limits::default()
    }
}

/// A runtime whose fuel maximum is high enough that only deadlines stop
/// guests.
fn deadline_runtime() -> Runtime {
    runtime_with(Limits {
        fuel: u64::MAX / 2,
        ..Limits::default()
    })
}

#[test]
fn timeout_inside_and_over_the_deadline() {
    let rt = deadline_runtime();
    let e = run_with(&rt, &looping("100000"), "{}", deadline(1_000));
    assert_kind(&e, OutcomeKind::Ok);
    let e = run_with(&rt, &module("", SPIN), "{}", deadline(50));
    assert_kind(&e, OutcomeKind::Timeout);
    assert_eq!(e.message.as_deref(), Some("deadline of 50 ms exceeded"));
}

#[test]
fn a_loop_in_the_start_function_times_out() {
    let rt = deadline_runtime();
    let wat = module(
        "(func $start (loop $l (br $l))) (start $start)",
        "(i32.const 0)",
    );
    let e = run_with(&rt, &wat, "{}", deadline(50));
    assert_kind(&e, OutcomeKind::Timeout);
}

#[test]
fn a_loop_in_initialize_times_out() {
    let rt = deadline_runtime();
    let wat = module(
        r#"(func (export "_initialize") (loop $l (br $l)))"#,
        "(i32.const 0)",
    );
    let e = run_with(&rt, &wat, "{}", deadline(50));
    assert_kind(&e, OutcomeKind::Timeout);
}

#[test]
fn huge_memory_copies_in_a_loop_time_out() {
    let rt = deadline_runtime();
    // 64 MiB of memory, copying 32 MiB per iteration.
    let wat = format!(
        r#"(module {IMPORTS}
          (memory (export "memory") 1024)
          (func (export "aifn_call") (result i32)
            (loop $l
              (memory.copy (i32.const 0) (i32.const 33554432) (i32.const 33554432))
              (br $l))
            (i32.const 0)))"#
    );
    let e = run_with(&rt, &wat, "{}", deadline(100));
    assert_kind(&e, OutcomeKind::Timeout);
}

#[test]
fn memory_grow_inside_and_over_the_limit() {
    let rt = runtime();
    let limits = Limits {
        memory_bytes: 4 * 65536,
        ..Limits::default()
    };
    // From 1 page to 4: allowed.
    let grow = |pages: u32| {
        module(
            "",
            &format!(
                "(if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1)) (then unreachable)) (i32.const 0)"
            ),
        )
    };
    let e = run_with(&rt, &grow(3), "{}", limits);
    assert_kind(&e, OutcomeKind::Ok);
    assert_eq!(e.memory_peak_bytes, 4 * 65536);
    // To 5 pages: refused; the guest's allocator then traps: memory_limit.
    let e = run_with(&rt, &grow(4), "{}", limits);
    assert_kind(&e, OutcomeKind::MemoryLimit);
    assert_eq!(e.trap_code, Some("unreachable"));
    assert_eq!(e.memory_peak_bytes, 65536);
    assert!(
        e.message
            .as_deref()
            .is_some_and(|m| m.starts_with("memory limit of 262144 bytes reached")),
        "{e:?}"
    );
}

#[test]
fn a_refused_grow_that_the_guest_handles_is_not_an_error() {
    let rt = runtime();
    let limits = Limits {
        memory_bytes: 2 * 65536,
        ..Limits::default()
    };
    let wat = module("", "(drop (memory.grow (i32.const 100))) (i32.const 0)");
    assert_kind(&run_with(&rt, &wat, "{}", limits), OutcomeKind::Ok);
}

#[test]
fn initial_memory_over_a_functions_lower_limit_is_a_memory_limit() {
    let rt = runtime();
    let wat = format!(
        r#"(module {IMPORTS} (memory (export "memory") 16)
          (func (export "aifn_call") (result i32) (i32.const 0)))"#
    );
    let e = run_with(
        &rt,
        &wat,
        "{}",
        Limits {
            memory_bytes: 16 * 65536,
            ..Limits::default()
        },
    );
    assert_kind(&e, OutcomeKind::InvalidOutput);
    let e = run_with(
        &rt,
        &wat,
        "{}",
        Limits {
            memory_bytes: 15 * 65536,
            ..Limits::default()
        },
    );
    assert_kind(&e, OutcomeKind::MemoryLimit);
}

#[test]
fn a_memory_grow_bomb_to_the_host_maximum_is_stopped() {
    let rt = runtime();
    // Grows one page at a time until refused, touching each page.
    let wat = module(
        "",
        "         (loop $l
           (local.set $p (memory.grow (i32.const 1)))
           (if (i32.eq (local.get $p) (i32.const -1)) (then unreachable))
           (i32.store (i32.mul (local.get $p) (i32.const 65536)) (i32.const 1))
           (br $l))
         (i32.const 0)",
    );
    let e = run(&rt, &wat, "{}");
    assert_kind(&e, OutcomeKind::MemoryLimit);
    assert_eq!(e.memory_peak_bytes, Limits::default().memory_bytes);
}

#[test]
fn table_grow_inside_and_over_the_limit() {
    let rt = runtime();
    let limits = Limits {
        table_elements: 100,
        ..Limits::default()
    };
    let grow = |n: u32| {
        module(
            "(table 10 funcref)",
            &format!(
                "(if (i32.eq (table.grow (ref.null func) (i32.const {n})) (i32.const -1)) (then unreachable)) (i32.const 0)"
            ),
        )
    };
    assert_kind(&run_with(&rt, &grow(90), "{}", limits), OutcomeKind::Ok);
    let e = run_with(&rt, &grow(91), "{}", limits);
    assert_kind(&e, OutcomeKind::MemoryLimit);
    assert!(
        e.message
            .as_deref()
            .is_some_and(|m| m.starts_with("table limit of 100 elements reached")),
        "{e:?}"
    );
}

fn recursion(depth: &str) -> String {
    module(
        "(func $down (param $n i32) (result i32)
           (if (result i32) (i32.eqz (local.get $n))
             (then (i32.const 0))
             (else (i32.add (i32.const 1) (call $down (i32.sub (local.get $n) (i32.const 1)))))))",
        &format!("(drop (call $down (i32.const {depth}))) (i32.const 0)"),
    )
}

#[test]
fn stack_inside_and_over_the_limit() {
    let rt = runtime();
    assert_kind(&run(&rt, &recursion("1000"), "{}"), OutcomeKind::Ok);
    let e = run(&rt, &recursion("100000000"), "{}");
    assert_kind(&e, OutcomeKind::StackOverflow);
    assert_eq!(
        e.message.as_deref(),
        Some("wasm stack limit of 524288 bytes exhausted")
    );
}

fn writes(len: u32) -> String {
    module(
        "",
        &format!("(call $output_write (i32.const 0) (i32.const {len})) (i32.const 1)"),
    )
}

#[test]
fn output_inside_and_over_the_limit() {
    let rt = runtime();
    let limits = Limits {
        output_bytes: 1000,
        ..Limits::default()
    };
    let e = run_with(&rt, &writes(1000), "{}", limits);
    assert_kind(&e, OutcomeKind::FunctionError);
    let e = run_with(&rt, &writes(1001), "{}", limits);
    assert_kind(&e, OutcomeKind::OutputTooLarge);
    assert_eq!(
        e.message.as_deref(),
        Some("output of 1001 bytes is over the limit of 1000 bytes")
    );
}

#[test]
fn every_trap_code_is_classified() {
    let rt = runtime();
    let cases = [
        ("unreachable", "unreachable"),
        (
            "integer_divide_by_zero",
            "(drop (i32.div_u (i32.const 1) (i32.const 0))) (i32.const 0)",
        ),
        (
            "integer_overflow",
            "(drop (i32.div_s (i32.const -2147483648) (i32.const -1))) (i32.const 0)",
        ),
        (
            "bad_conversion_to_integer",
            "(drop (i32.trunc_f32_s (f32.const nan))) (i32.const 0)",
        ),
        ("memory_out_of_bounds", "(i32.load (i32.const 65536))"),
        (
            "table_out_of_bounds",
            "(call_indirect (type $t) (i32.const 5))",
        ),
        (
            "indirect_call_to_null",
            "(call_indirect (type $t) (i32.const 1))",
        ),
        (
            "indirect_call_type_mismatch",
            "(call_indirect (type $t) (i32.const 0))",
        ),
    ];
    let extra = r#"(type $t (func (result i32)))
                   (table 2 funcref) (elem (i32.const 0) $other)
                   (func $other (param i32))"#;
    for (code, body) in cases {
        let e = run(&rt, &module(extra, body), "{}");
        assert_kind(&e, OutcomeKind::Trap);
        assert_eq!(e.trap_code, Some(code), "{body}");
        assert!(
            e.message.as_deref().is_some_and(|m| m.starts_with(code)),
            "{e:?}"
        );
    }
    // The same operations just inside their domain do not trap.
    for body in [
        "(i32.div_u (i32.const 1) (i32.const 1))",
        "(i32.div_s (i32.const -2147483648) (i32.const 1))",
        "(i32.trunc_f32_s (f32.const 1.5))",
        "(i32.load (i32.const 65532))",
    ] {
        let e = run(
            &rt,
            &module("", &format!("(drop {body}) (i32.const 0)")),
            "{}",
        );
        assert_kind(&e, OutcomeKind::Ok);
    }
}

#[test]
fn memory_grow_to_the_declared_maximum_and_past_it() {
    let rt = runtime();
    let grow = |pages: u32| {
        format!(
            r#"(module {IMPORTS}
          (memory (export "memory") 1 3)
          (data (i32.const 0) "{{\"ok\":true}}")
          (func (export "aifn_call") (result i32)
            (if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1)) (then unreachable))
            (call $output_write (i32.const 0) (i32.const 11))
            (i32.const 0)))"#
        )
    };
    // Inside: up to the module's own maximum of 3 pages.
    let e = run(&rt, &grow(2), "{}");
    assert_kind(&e, OutcomeKind::Ok);
    assert_eq!(e.memory_peak_bytes, 3 * 65536);
    // Over it, though far below the host's limit: refused, memory_limit.
    let e = run(&rt, &grow(3), "{}");
    assert_kind(&e, OutcomeKind::MemoryLimit);
    assert_eq!(e.memory_peak_bytes, 65536);
}

#[test]
fn table_grow_to_the_declared_maximum_and_past_it() {
    let rt = runtime();
    let grow = |n: u32| {
        module(
            "(table 10 20 funcref)",
            &format!(
                "(if (i32.eq (table.grow (ref.null func) (i32.const {n})) (i32.const -1)) (then unreachable)) (i32.const 0)"
            ),
        )
    };
    assert_kind(&run(&rt, &grow(10), "{}"), OutcomeKind::Ok);
    let e = run(&rt, &grow(11), "{}");
    assert_kind(&e, OutcomeKind::MemoryLimit);
    assert_eq!(e.trap_code, Some("unreachable"));
}

#[test]
fn a_long_call_inside_its_deadline_is_not_interrupted() {
    let rt = deadline_runtime();
    // Many epoch ticks pass while this runs; none of them may end it.
    let e = run_with(&rt, &looping("20000000"), "{}", deadline(10_000));
    assert_kind(&e, OutcomeKind::Ok);
    assert!(e.is_ok());
    assert!(e.duration.as_millis() >= 2, "{:?}", e.duration);
    let e = run_with(&rt, &module("", SPIN), "{}", deadline(20));
    assert!(!e.is_ok());
}
