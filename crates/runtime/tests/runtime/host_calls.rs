//! What every host call costs and checks: the 100-fuel base cost and the
//! per-byte cost pinned exactly, the exact fuel boundary of a host call,
//! bounds checked before anything is paid or copied, and the guest memory
//! found by name while the start function and `_initialize` run.

use crate::*;

/// Fuel of a guest that writes `{"ok":true}` and returns 0: 1 for
/// entering `aifn_call`, 3 instructions, `output_write` (100, and 3 for
/// 11 bytes at 4 a fuel, rounded up), then 1 instruction.
const OK_MODULE_FUEL: u64 = 1 + 3 + 100 + 3 + 1;

fn with_input_len_calls(n: usize) -> String {
    module(
        "",
        &format!("{} (i32.const 0)", "(drop (call $input_len))".repeat(n)),
    )
}

#[test]
fn every_host_call_costs_100_fuel_before_its_bytes() {
    let rt = runtime();
    let e = run(&rt, &with_input_len_calls(0), "{}");
    assert_kind(&e, OutcomeKind::Ok);
    assert_eq!(e.fuel_used, OK_MODULE_FUEL);
    // Each `(drop (call $input_len))`: the call instruction, then 100.
    for n in [1, 2, 10] {
        let e = run(&rt, &with_input_len_calls(n), "{}");
        assert_kind(&e, OutcomeKind::Ok);
        assert_eq!(e.fuel_used, OK_MODULE_FUEL + 101 * n as u64, "{n} calls");
    }
}

#[test]
fn copied_bytes_cost_one_fuel_per_four_rounded_up() {
    let rt = runtime();
    // echo: entry and 11 instructions, 3 host calls (300), input_read and
    // output_write each pay for the input's bytes.
    let fuel = |input: &str| {
        let e = run(&rt, &echo_with(""), input);
        assert_kind(&e, OutcomeKind::Ok);
        e.fuel_used
    };
    assert_eq!(fuel("12"), 309 + 2);
    assert_eq!(fuel("1234"), 309 + 2);
    assert_eq!(fuel("12345"), 309 + 2 * 2);
    assert_eq!(fuel("12345678"), 309 + 2 * 2);
    assert_eq!(fuel("123456789"), 309 + 2 * 3);
}

const WASI_EXIT: &str = r#"(import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))"#;

/// A guest whose last fuel is spent by a host call: it writes its output,
/// then ends with `proc_exit(0)`, so nothing runs after the call.
fn exits_after_output() -> String {
    format!(
        r#"(module {IMPORTS} {WASI_EXIT}
  (memory (export "memory") 1)
  (data (i32.const 0) "{{\"ok\":true}}")
  (func (export "aifn_call") (result i32)
    (call $output_write (i32.const 0) (i32.const 11))
    (call $proc_exit (i32.const 0))
    unreachable))"#
    )
}

fn with_fuel(fuel: u64) -> Limits {
    Limits {
        fuel,
        ..Limits::default()
    }
}

#[test]
fn a_host_call_given_exactly_its_fuel_succeeds_and_one_less_fails() {
    let rt = runtime();
    let wat = exits_after_output();
    // Entry and 106 for the output, then 2 instructions and proc_exit's 100.
    let exact = 1 + 106 + 2 + 100;
    let e = run_with(&rt, &wat, "{}", with_fuel(exact));
    assert_eq!(output(&e), serde_json::json!({"ok": true}));
    assert_eq!(e.fuel_used, exact);
    let e = run_with(&rt, &wat, "{}", with_fuel(exact - 1));
    assert_kind(&e, OutcomeKind::FuelExhausted);
    assert_eq!(
        e.message.as_deref(),
        Some("all fuel consumed by a host call (proc_exit)")
    );
    assert_eq!(e.fuel_used, exact - 1);
}

fn random_get(ptr: u32, len: u32) -> String {
    format!(
        r#"(module {IMPORTS} {WASI_EXIT}
  (memory (export "memory") 1)
  (data (i32.const 0) "{{\"ok\":true}}")
  (func (export "aifn_call") (result i32)
    (drop (call $random_get (i32.const {ptr}) (i32.const {len})))
    (call $output_write (i32.const 0) (i32.const 11))
    (i32.const 0)))"#
    )
}

#[test]
fn random_get_pays_for_its_bytes_and_checks_bounds_before_paying() {
    let rt = runtime();
    // 3 instructions and 100 + len / 4, then the ok module's fuel (the
    // random bytes land at 100, after the output).
    for len in [0, 16, 17] {
        let e = run(&rt, &random_get(100, len), "{}");
        assert_kind(&e, OutcomeKind::Ok);
        let bytes = u64::from(len).div_ceil(4);
        assert_eq!(e.fuel_used, 3 + 100 + bytes + OK_MODULE_FUEL, "{len}");
    }
    // Inside: the whole memory. Over: a range past it, with too little fuel
    // to pay for it: the bounds are checked first, so it traps.
    let e = run_with(&rt, &random_get(11, 65536 - 11), "{}", with_fuel(20_000));
    assert_kind(&e, OutcomeKind::Ok);
    let e = run_with(&rt, &random_get(0, 0x7fff_ffff), "{}", with_fuel(20_000));
    assert_kind(&e, OutcomeKind::Trap);
    assert_eq!(e.trap_code, Some("host_out_of_bounds"));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "out of bounds host call: random_get was given 0x0+2147483647 but memory is 65536 bytes"
        )
    );
}

fn logs(len: u32) -> String {
    module(
        "",
        &format!("(call $log (i32.const 2) (i32.const 0) (i32.const {len})) (i32.const 0)"),
    )
}

#[test]
fn a_log_range_is_checked_whole_though_only_the_budget_is_copied() {
    let rt = runtime();
    // Inside: the whole page; 16 KiB kept, then the marker.
    let e = run(&rt, &logs(65536), "{}");
    assert_kind(&e, OutcomeKind::Ok);
    let kept: Vec<_> = e.logs.iter().map(|l| l.message.len()).collect();
    assert_eq!(kept, [16 * 1024, "[log truncated]".len()]);
    // Only the kept bytes and one more are paid for: 4 instructions, 100
    // and (16 KiB + 1) / 4 rounded up.
    assert_eq!(e.fuel_used, 4 + 100 + 4097 + OK_MODULE_FUEL);
    // Over: one byte past the page traps, though the budget would never
    // have copied it.
    let e = run(&rt, &logs(65537), "{}");
    assert_kind(&e, OutcomeKind::Trap);
    assert_eq!(e.trap_code, Some("host_out_of_bounds"));
    assert_eq!(
        e.message.as_deref(),
        Some("out of bounds host call: log was given 0x0+65537 but memory is 65536 bytes")
    );
}

/// A guest whose `hook` (the start function or `_initialize`) writes the
/// output, so the host finds the memory by its export name.
fn writes_output_in(hook: &str, export_memory: bool) -> String {
    let memory = if export_memory {
        r#"(memory (export "memory") 1)"#
    } else {
        "(memory 1)"
    };
    let hook = match hook {
        "start" => "(func $hook (call $output_write (i32.const 0) (i32.const 11))) (start $hook)",
        _ => r#"(func (export "_initialize") (call $output_write (i32.const 0) (i32.const 11)))"#,
    };
    format!(
        r#"(module {IMPORTS}
  {memory}
  (data (i32.const 0) "{{\"ok\":true}}")
  {hook}
  (func (export "aifn_call") (result i32) (i32.const 0)))"#
    )
}

#[test]
fn host_calls_before_aifn_call_find_the_exported_memory() {
    let rt = runtime();
    for hook in ["start", "_initialize"] {
        let e = run(&rt, &writes_output_in(hook, true), "{}");
        assert_eq!(output(&e), serde_json::json!({"ok": true}), "{hook}");
        assert_eq!(e.memory_peak_bytes, 65536);
        // Without the export there is no memory to find: refused at load.
        let bytes = wat::parse_str(writes_output_in(hook, false)).expect("wat");
        let err = rt.load(&bytes).expect_err("no memory export");
        assert_eq!(
            err.to_string(),
            "missing export `memory` (the module's linear memory)"
        );
        assert_eq!(err.kind(), OutcomeKind::InvalidModule);
    }
}
