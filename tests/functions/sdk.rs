//! SDK behaviours, through the test-only probe: input and context, logs,
//! function errors, panics, allocation failure and fuel.

use aifn_types::{Context, Limits, LogLevel, LogStream, OutcomeKind};
use serde_json::{Value, json};

use crate::{call, call_with, function_error, ok};

pub(crate) const PROBE: &str = "sdk_probe";

#[test]
fn sdk_passes_input_and_typed_context() {
    assert_eq!(
        ok(PROBE, r#"{"action":"echo","message":"hi","count":3}"#),
        json!({"message":"hi","count":3})
    );
    let ctx = Context {
        tenant_id: "acme".into(),
        agent_id: "hr-bot".into(),
        user_id: "u-42".into(),
        function: "sdk_probe".into(),
        version: "3".into(),
        execution_id: "0193c9a4e1f27c3a9d1e5b0c7f00a1b2".into(),
    };
    let e = call_with(PROBE, r#"{"action":"context"}"#, &ctx, Limits::default());
    assert_eq!(e.kind, OutcomeKind::Ok, "{:?}", e.message);
    let out: Value = serde_json::from_slice(&e.output.expect("output")).expect("json");
    assert_eq!(out, serde_json::to_value(&ctx).expect("context json"));
}

#[test]
fn sdk_logs_at_each_level() {
    let e = call(PROBE, r#"{"action":"log","message":"hello"}"#);
    assert_eq!(e.kind, OutcomeKind::Ok, "{:?}", e.message);
    let logs: Vec<(LogLevel, LogStream, &str)> = e
        .logs
        .iter()
        .map(|l| (l.level, l.stream, l.message.as_str()))
        .collect();
    assert_eq!(
        logs,
        [
            (LogLevel::Trace, LogStream::Log, "hello"),
            (LogLevel::Debug, LogStream::Log, "hello (debug)"),
            (LogLevel::Info, LogStream::Log, "hello (info)"),
            (LogLevel::Warn, LogStream::Log, "hello (warn)"),
            (LogLevel::Error, LogStream::Log, "hello (error)"),
        ]
    );
}

#[test]
fn sdk_function_errors_and_invalid_input() {
    assert_eq!(
        function_error(PROBE, r#"{"action":"fail","message":"no such employee"}"#),
        "no such employee"
    );
    assert_eq!(
        function_error(PROBE, r#"{"action":"echo","count":"three"}"#),
        r#"invalid input at .count: invalid type: string "three", expected u32"#
    );
    assert_eq!(
        function_error(PROBE, r#"{"action":"echo","count":-1}"#),
        "invalid input at .count: invalid value: integer `-1`, expected u32"
    );
    assert_eq!(
        function_error(PROBE, r#"{"action":"nope"}"#),
        "invalid input at .action: unknown variant `nope`, expected one of `echo`, `context`, `log`, `fail`, \
         `panic`, `log_then_panic`, `alloc`"
    );
    assert_eq!(
        function_error(PROBE, "42"),
        "invalid input: invalid type: integer `42`, expected struct Probe"
    );
}

#[test]
fn sdk_panic_is_a_trap_with_the_message() {
    let e = call(PROBE, r#"{"action":"panic","message":"boom"}"#);
    assert_eq!(e.kind, OutcomeKind::Trap, "{:?}", e.message);
    assert_eq!(e.trap_code, Some("unreachable"));
    let msg = e.message.expect("message");
    assert!(msg.contains("; guest: panicked at "), "{msg}");
    // `panicked at FILE:LINE:COL: MESSAGE`, like Rust's own hook.
    assert!(
        msg.contains("src/lib.rs:") && msg.ends_with(": boom"),
        "{msg}"
    );
    let last = e.logs.last().expect("the hook logged the panic");
    assert_eq!((last.level, last.stream), (LogLevel::Error, LogStream::Log));
    assert!(
        last.message.starts_with("panicked at ") && last.message.ends_with(": boom"),
        "{}",
        last.message
    );
}

#[test]
fn sdk_panic_message_wins_over_earlier_error_lines() {
    let e = call(
        PROBE,
        r#"{"action":"log_then_panic","message":"formatted","count":7}"#,
    );
    assert_eq!(e.kind, OutcomeKind::Trap, "{:?}", e.message);
    let msg = e.message.expect("message");
    assert!(msg.ends_with(": formatted (count 7)"), "{msg}");
    assert!(!msg.contains("about to panic"), "{msg}");
}

#[test]
fn sdk_allocation_failure_is_a_memory_limit() {
    let e = call(PROBE, r#"{"action":"alloc","bytes":1048576}"#);
    assert_eq!(e.kind, OutcomeKind::Ok, "{:?}", e.message);
    assert_eq!(e.output.as_deref(), Some(&br#"{"allocated":1048576}"#[..]));
    assert!(e.memory_peak_bytes >= 1 << 20, "{}", e.memory_peak_bytes);

    let limits = Limits {
        memory_bytes: 4 << 20,
        ..Limits::default()
    };
    let e = call_with(
        PROBE,
        r#"{"action":"alloc","bytes":16777216}"#,
        &Context::local(),
        limits,
    );
    assert_eq!(e.kind, OutcomeKind::MemoryLimit, "{:?}", e.message);
    // The SDK's allocator says why before Rust aborts.
    let last = e.logs.last().map(|l| (l.level, l.message.as_str()));
    assert_eq!(
        last,
        Some((
            LogLevel::Error,
            "memory allocation failed: memory.grow refused"
        ))
    );
}

#[test]
fn sdk_fuel_limit_is_enforced() {
    let limits = Limits {
        fuel: 2_000,
        ..Limits::default()
    };
    let e = call_with(PROBE, r#"{"action":"echo"}"#, &Context::local(), limits);
    assert_eq!(e.kind, OutcomeKind::FuelExhausted, "{:?}", e.message);
}
