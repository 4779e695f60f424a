//! ABI v1 behaviour: input, context, output, logs, function errors and
//! out-of-bounds host calls.

use aifn_test_support::CONTEXT_ECHO_WAT;
use aifn_types::{LogLevel, LogStream};

use crate::*;

#[test]
fn echo_returns_the_input() {
    let rt = runtime();
    let e = run(&rt, &echo_with(""), r#"{"hello":"world"}"#);
    assert_eq!(output(&e), serde_json::json!({"hello": "world"}));
    assert!(e.fuel_used > 0);
    assert_eq!(e.memory_peak_bytes, 2 * 65536);
    assert_eq!(e.message, None);
}

#[test]
fn the_guest_sees_exactly_the_injected_context() {
    let rt = runtime();
    let m = load(&rt, CONTEXT_ECHO_WAT);
    let ctx = Context {
        tenant_id: "acme".into(),
        agent_id: "hr-bot".into(),
        user_id: "u-42".into(),
        function: "leave".into(),
        version: "3".into(),
        execution_id: "0193c9a4e1f27c3a9d1e5b0c7f00a1b2".into(),
    };
    let e = rt.invoke(&m, &Invocation::new(b"{}", &ctx, Limits::default()));
    assert_kind(&e, OutcomeKind::Ok);
    assert_eq!(e.output.as_deref(), Some(ctx.to_json_bytes().as_slice()));
    let v = output(&e);
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 6, "exactly six fields: {v}");
    assert_eq!(obj["tenant_id"], "acme");
    assert_eq!(obj["agent_id"], "hr-bot");
    assert_eq!(obj["user_id"], "u-42");
    assert_eq!(obj["function"], "leave");
    assert_eq!(obj["version"], "3");
    assert_eq!(obj["execution_id"], "0193c9a4e1f27c3a9d1e5b0c7f00a1b2");
}

#[test]
fn output_last_write_wins() {
    let rt = runtime();
    let wat = module(
        r#"(data (i32.const 100) "[1,2,3]")"#,
        "(call $output_write (i32.const 100) (i32.const 7)) (i32.const 0)",
    );
    assert_eq!(output(&run(&rt, &wat, "{}")), serde_json::json!([1, 2, 3]));
}

#[test]
fn nonzero_return_is_a_function_error_with_the_output_as_message() {
    let rt = runtime();
    let wat = module(
        r#"(data (i32.const 100) "start_date is after end_date")"#,
        "(call $output_write (i32.const 100) (i32.const 28)) (i32.const 1)",
    );
    let e = run(&rt, &wat, "{}");
    assert_kind(&e, OutcomeKind::FunctionError);
    assert_eq!(e.message.as_deref(), Some("start_date is after end_date"));
    assert_eq!(e.output, None);

    let silent = module(
        "",
        "(call $output_write (i32.const 0) (i32.const 0)) (i32.const 7)",
    );
    let e = run(&rt, &silent, "{}");
    assert_kind(&e, OutcomeKind::FunctionError);
    assert_eq!(
        e.message.as_deref(),
        Some("the function returned error code 7")
    );
}

#[test]
fn success_needs_one_json_document() {
    let rt = runtime();
    // Inside: valid JSON.
    assert_kind(
        &run(&rt, &module("", "(i32.const 0)"), "{}"),
        OutcomeKind::Ok,
    );
    // Over: not JSON, trailing garbage, no output at all.
    let not_json = module(
        r#"(data (i32.const 100) "hello")"#,
        "(call $output_write (i32.const 100) (i32.const 5)) (i32.const 0)",
    );
    let e = run(&rt, &not_json, "{}");
    assert_kind(&e, OutcomeKind::InvalidOutput);
    assert!(
        e.message
            .as_deref()
            .is_some_and(|m| m.starts_with("output is not one JSON document")),
        "{e:?}"
    );
    let two_docs = module(
        r#"(data (i32.const 100) "{} {}")"#,
        "(call $output_write (i32.const 100) (i32.const 5)) (i32.const 0)",
    );
    assert_kind(&run(&rt, &two_docs, "{}"), OutcomeKind::InvalidOutput);
    let none = r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#;
    let e = run(&rt, none, "{}");
    assert_kind(&e, OutcomeKind::InvalidOutput);
    assert_eq!(
        e.message.as_deref(),
        Some("the function returned 0 but wrote no output")
    );
}

#[test]
fn input_must_be_json_and_within_the_limit() {
    let rt = runtime();
    let limits = Limits {
        input_bytes: 16,
        ..Limits::default()
    };
    let exactly = r#"{"a":"12345678"}"#;
    assert_eq!(exactly.len(), 16);
    assert_eq!(
        output(&run_with(&rt, &echo_with(""), exactly, limits)),
        serde_json::json!({"a": "12345678"})
    );
    let over = r#"{"a":"123456789"}"#;
    let e = run_with(&rt, &echo_with(""), over, limits);
    assert_kind(&e, OutcomeKind::InvalidInput);
    assert_eq!(
        e.message.as_deref(),
        Some("input is 17 bytes, over the limit of 16 bytes")
    );
    assert_eq!(e.fuel_used, 0);
    for bad in ["", "{", "nope", "{} {}", "\u{0}"] {
        assert_kind(&run(&rt, &echo_with(""), bad), OutcomeKind::InvalidInput);
    }
}

#[test]
fn logs_keep_levels_and_are_bounded() {
    let rt = runtime();
    let wat = module(
        r#"(data (i32.const 100) "hello")"#,
        "(call $log (i32.const 2) (i32.const 100) (i32.const 5))
         (call $log (i32.const 4) (i32.const 100) (i32.const 5))
         (call $log (i32.const -7) (i32.const 100) (i32.const 0))
         (i32.const 0)",
    );
    let e = run(&rt, &wat, "{}");
    assert_kind(&e, OutcomeKind::Ok);
    let got: Vec<_> = e
        .logs
        .iter()
        .map(|l| (l.level, l.stream, l.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (LogLevel::Info, LogStream::Log, "hello"),
            (LogLevel::Error, LogStream::Log, "hello"),
            (LogLevel::Trace, LogStream::Log, ""),
        ]
    );
}

/// A guest that logs 1,000-byte lines `n` times.
fn flood(n: u32) -> String {
    module(
        "",
        &format!(
            "             (loop $l
               (call $log (i32.const 2) (i32.const 0) (i32.const 1000))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const {n}))))
             (i32.const 0)"
        ),
    )
}

#[test]
fn a_log_flood_is_truncated_with_one_marker_and_the_call_still_succeeds() {
    let rt = runtime();
    // Inside: 16 lines of 1,000 bytes fit in 16 KiB.
    let e = run(&rt, &flood(16), "{}");
    assert_kind(&e, OutcomeKind::Ok);
    assert_eq!(e.logs.len(), 16);
    assert!(e.logs.iter().all(|l| l.stream == LogStream::Log));
    // Over: 100,000 lines keep 16 KiB and one marker.
    let e = run(&rt, &flood(100_000), "{}");
    assert_kind(&e, OutcomeKind::Ok);
    let kept: usize = e
        .logs
        .iter()
        .filter(|l| l.stream == LogStream::Log)
        .map(|l| l.message.len())
        .sum();
    assert_eq!(kept, 16 * 1024);
    let last = e.logs.last().expect("marker");
    assert_eq!(
        (last.stream, last.message.as_str()),
        (LogStream::Host, "[log truncated]")
    );
    assert_eq!(
        e.logs
            .iter()
            .filter(|l| l.stream == LogStream::Host)
            .count(),
        1
    );
}

#[test]
fn host_calls_pay_fuel_for_the_bytes_they_copy() {
    let rt = runtime();
    let big = format!("\"{}\"", "x".repeat(400_000));
    let mem_echo = r#"(module
      (import "aifn" "input_len" (func $input_len (result i32)))
      (import "aifn" "input_read" (func $input_read (param i32)))
      (import "aifn" "output_write" (func $output_write (param i32 i32)))
      (memory (export "memory") 8)
      (func (export "aifn_call") (result i32)
        (call $input_read (i32.const 0))
        (call $output_write (i32.const 0) (call $input_len))
        (i32.const 0)))"#;
    // Reading and writing 400 KB costs about 200,000 fuel in host calls.
    let e = run_with(
        &rt,
        mem_echo,
        &big,
        Limits {
            fuel: 300_000,
            ..Limits::default()
        },
    );
    assert_kind(&e, OutcomeKind::Ok);
    assert!(
        e.fuel_used > 200_000,
        "host copies were charged: {}",
        e.fuel_used
    );
    let e = run_with(
        &rt,
        mem_echo,
        &big,
        Limits {
            fuel: 150_000,
            ..Limits::default()
        },
    );
    assert_kind(&e, OutcomeKind::FuelExhausted);
    assert!(
        e.message
            .as_deref()
            .is_some_and(|m| m.contains("host call")),
        "{e:?}"
    );
    assert_eq!(e.fuel_used, 150_000);
}

/// Calls `call` with the arguments `args` (WAT) and returns 0.
fn calls(call: &str, args: &str) -> String {
    module("", &format!("(call ${call} {args}) (i32.const 0)"))
}

#[test]
fn host_calls_at_the_end_of_memory_succeed() {
    let rt = runtime();
    let page = 65536;
    let input = "{}";
    for (call, args) in [
        ("input_read", format!("(i32.const {})", page - 2)),
        (
            "context_read",
            format!(
                "(i32.const {})",
                page - Context::local().to_json_bytes().len()
            ),
        ),
        (
            "log",
            format!("(i32.const 2) (i32.const {}) (i32.const 1)", page - 1),
        ),
        (
            "log",
            format!("(i32.const 2) (i32.const {page}) (i32.const 0)"),
        ),
    ] {
        let e = run(&rt, &calls(call, &args), input);
        assert_kind(&e, OutcomeKind::Ok);
    }
}

#[test]
fn out_of_bounds_pointers_into_every_host_call_trap_the_guest() {
    let rt = runtime();
    let page = 65536;
    for (call, args) in [
        ("input_read", format!("(i32.const {})", page - 1)),
        ("input_read", "(i32.const -1)".to_owned()),
        ("context_read", format!("(i32.const {})", page - 10)),
        (
            "output_write",
            format!("(i32.const {}) (i32.const 2)", page - 1),
        ),
        ("output_write", "(i32.const 0) (i32.const -1)".to_owned()),
        ("output_write", "(i32.const -8) (i32.const 16)".to_owned()),
        (
            "log",
            format!("(i32.const 2) (i32.const {page}) (i32.const 1)"),
        ),
        (
            "log",
            "(i32.const 2) (i32.const 0) (i32.const -2147483648)".to_owned(),
        ),
        (
            "log",
            "(i32.const 2) (i32.const 2147483647) (i32.const 2147483647)".to_owned(),
        ),
    ] {
        let e = run(&rt, &calls(call, &args), "{}");
        assert_kind(&e, OutcomeKind::Trap);
        assert_eq!(e.trap_code, Some("host_out_of_bounds"), "{call} {args}");
        assert!(
            e.message.as_deref().is_some_and(|m| m.contains(call)),
            "{e:?}"
        );
    }
}

#[test]
fn a_panic_message_logged_at_error_reaches_the_trap_message() {
    let rt = runtime();
    let wat = module(
        r#"(data (i32.const 100) "panicked at src/lib.rs:10:5: boom")"#,
        "(call $log (i32.const 4) (i32.const 100) (i32.const 33)) unreachable",
    );
    let e = run(&rt, &wat, "{}");
    assert_kind(&e, OutcomeKind::Trap);
    assert_eq!(e.trap_code, Some("unreachable"));
    let msg = e.message.expect("message");
    assert!(msg.starts_with("unreachable: "), "{msg}");
    assert!(
        msg.ends_with("; guest: panicked at src/lib.rs:10:5: boom"),
        "{msg}"
    );
}
