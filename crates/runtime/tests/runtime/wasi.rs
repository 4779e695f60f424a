//! Zero-capability WASI: what links, what it answers, and that it grants
//! nothing and never waits.

use std::time::{Duration, SystemTime};

use aifn_types::LogStream;

use crate::*;

const WASI: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"#;

/// A WASI module whose `aifn_call` is `body`.
fn wasi_module(data: &str, body: &str) -> String {
    format!(
        r#"(module {IMPORTS} {WASI}
          (memory (export "memory") 1)
          {data}
          (func (export "aifn_call") (result i32) {body}))"#
    )
}

/// Runs `call` (an expression returning an errno < 100) and outputs
/// `[1NN]` as JSON: 100 + errno, so there is never a leading zero.
fn errno_of(rt: &Runtime, call: &str) -> i64 {
    let wat = wasi_module(
        r#"(data (i32.const 300) "[1  ]")"#,
        &format!(
            "(local $e i32)
             (local.set $e {call})
             (i32.store8 (i32.const 302) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
             (i32.store8 (i32.const 303) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
             (call $output_write (i32.const 300) (i32.const 5))
             (i32.const 0)"
        ),
    );
    let v = output(&run(rt, &wat, "{}"));
    v[0].as_i64().expect("errno") - 100
}

#[test]
fn stdout_and_stderr_go_to_the_logs() {
    let rt = runtime();
    let wat = wasi_module(
        r#"(data (i32.const 100) "hello\nwor") (data (i32.const 120) "ld\n")
           (data (i32.const 0) "{}")"#,
        // iovecs at 400: [100, 10], [120, 3]
        "(i32.store (i32.const 400) (i32.const 100)) (i32.store (i32.const 404) (i32.const 9))
         (i32.store (i32.const 408) (i32.const 120)) (i32.store (i32.const 412) (i32.const 3))
         (drop (call $fd_write (i32.const 1) (i32.const 400) (i32.const 2) (i32.const 500)))
         (drop (call $fd_write (i32.const 2) (i32.const 408) (i32.const 1) (i32.const 504)))
         (call $output_write (i32.const 500) (i32.const 0))
         (call $output_write (i32.const 0) (i32.const 2))
         (i32.const 0)",
    );
    let e = run(&rt, &wat, "{}");
    assert_kind(&e, OutcomeKind::Ok);
    let lines: Vec<_> = e
        .logs
        .iter()
        .map(|l| (l.stream, l.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (LogStream::Stdout, "hello"),
            (LogStream::Stdout, "world"),
            (LogStream::Stderr, "ld")
        ]
    );
}

#[test]
fn nothing_is_reachable() {
    let rt = runtime();
    // No preopened directories, so no file opens; no sockets; stdin empty.
    assert_eq!(
        errno_of(&rt, "(call $fd_prestat_get (i32.const 3) (i32.const 0))"),
        8
    );
    assert_eq!(
        errno_of(
            &rt,
            "(call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 600))"
        ),
        8
    );
    assert_eq!(
        errno_of(
            &rt,
            "(call $sock_accept (i32.const 3) (i32.const 0) (i32.const 600))"
        ),
        76
    );
    assert_eq!(
        errno_of(
            &rt,
            "(call $fd_write (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 600))"
        ),
        8
    );
    // args and environment are empty: counts written as 0.
    let wat = wasi_module(
        r#"(data (i32.const 0) "[1]")"#,
        "(i32.store (i32.const 600) (i32.const 9)) (i32.store (i32.const 604) (i32.const 9))
         (drop (call $environ_sizes_get (i32.const 600) (i32.const 604)))
         (drop (call $args_sizes_get (i32.const 608) (i32.const 612)))
         (if (i32.ne (i32.or (i32.load (i32.const 600)) (i32.load (i32.const 604))) (i32.const 0)) (then unreachable))
         (call $output_write (i32.const 0) (i32.const 3))
         (i32.const 0)",
    );
    assert_kind(&run(&rt, &wat, "{}"), OutcomeKind::Ok);
    // stdin reads 0 bytes.
    let wat = wasi_module(
        r#"(data (i32.const 0) "[1]")"#,
        "(i32.store (i32.const 600) (i32.const 700)) (i32.store (i32.const 604) (i32.const 10))
         (i32.store (i32.const 608) (i32.const 9))
         (drop (call $fd_read (i32.const 0) (i32.const 600) (i32.const 1) (i32.const 608)))
         (if (i32.ne (i32.load (i32.const 608)) (i32.const 0)) (then unreachable))
         (call $output_write (i32.const 0) (i32.const 3))
         (i32.const 0)",
    );
    assert_kind(&run(&rt, &wat, "{}"), OutcomeKind::Ok);
}

/// Outputs the 16 bytes at 600 (as written by the body) as a JSON array of
/// 100 + each byte, three digits each, so there is never a leading zero.
fn bytes_at_600(body: &str) -> String {
    wasi_module(
        "",
        &format!(
            "(local $i i32) (local $p i32) (local $v i32)
             {body}
             ;; JSON array of 16 numbers 0..255 written at 1000
             (i32.store8 (i32.const 1000) (i32.const 91))
             (local.set $p (i32.const 1001))
             (loop $l
               (local.set $v (i32.add (i32.const 100) (i32.load8_u (i32.add (i32.const 600) (local.get $i)))))
               (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.div_u (local.get $v) (i32.const 100))))
               (i32.store8 (i32.add (local.get $p) (i32.const 1)) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $v) (i32.const 10)) (i32.const 10))))
               (i32.store8 (i32.add (local.get $p) (i32.const 2)) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
               (i32.store8 (i32.add (local.get $p) (i32.const 3)) (i32.const 44))
               (local.set $p (i32.add (local.get $p) (i32.const 4)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $i) (i32.const 16))))
             (i32.store8 (i32.sub (local.get $p) (i32.const 1)) (i32.const 93))
             (call $output_write (i32.const 1000) (i32.sub (local.get $p) (i32.const 1000)))
             (i32.const 0)"
        ),
    )
}

fn run_ctx(rt: &Runtime, wat: &str, execution_id: &str, start: SystemTime) -> Vec<u8> {
    let m = load(rt, wat);
    let ctx = Context {
        execution_id: execution_id.into(),
        ..Context::local()
    };
    let inv = Invocation {
        start_time: start,
        cancel: None,
        ..Invocation::new(b"{}", &ctx, Limits::default())
    };
    let v = output(&rt.invoke(&m, &inv));
    v.as_array()
        .expect("array")
        .iter()
        .map(|n| (n.as_u64().expect("byte") - 100) as u8)
        .collect()
}

#[test]
fn randomness_is_seeded_from_the_execution_id() {
    let rt = runtime();
    let wat = bytes_at_600("(drop (call $random_get (i32.const 600) (i32.const 16)))");
    let now = SystemTime::now();
    let a = run_ctx(&rt, &wat, "exec-a", now);
    assert_eq!(a, run_ctx(&rt, &wat, "exec-a", now), "same id, same bytes");
    assert_ne!(
        a,
        run_ctx(&rt, &wat, "exec-b", now),
        "another id, other bytes"
    );
    assert_ne!(a, [0u8; 16]);
}

#[test]
fn every_clock_reads_the_invocation_start_time() {
    let rt = runtime();
    let wat = bytes_at_600(
        "(drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 600)))
         (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 608)))",
    );
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let b = run_ctx(&rt, &wat, "x", start);
    let realtime = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let monotonic = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
    assert_eq!(realtime, 1_700_000_000_123_456_789);
    assert_eq!(monotonic, realtime);
}

#[test]
fn poll_oneoff_answers_a_clock_subscription_at_once() {
    let rt = runtime();
    // One clock subscription at 600 (48 bytes): userdata 7, tag 0, one hour.
    let body = "(i64.store (i32.const 600) (i64.const 7))
         (i32.store8 (i32.const 608) (i32.const 0))
         (i64.store (i32.const 624) (i64.const 3600000000000))
         (if (i32.ne (call $poll_oneoff (i32.const 600) (i32.const 700) (i32.const 1) (i32.const 800)) (i32.const 0)) (then unreachable))
         (if (i32.ne (i32.load (i32.const 800)) (i32.const 1)) (then unreachable))
         (if (i64.ne (i64.load (i32.const 700)) (i64.const 7)) (then unreachable))
         (if (i32.ne (i32.load16_u (i32.const 708)) (i32.const 0)) (then unreachable))
         (if (i32.ne (call $sched_yield) (i32.const 0)) (then unreachable))
         (call $output_write (i32.const 0) (i32.const 2))
         (i32.const 0)";
    let wat = wasi_module(r#"(data (i32.const 0) "{}")"#, body);
    // A one-hour sleep inside a 1 s deadline: if the host slept, this would
    // be a timeout or take an hour; it returns ok.
    let e = run_with(
        &rt,
        &wat,
        "{}",
        Limits {
            timeout_ms: 1_000,
            ..Limits::default()
        },
    );
    assert_kind(&e, OutcomeKind::Ok);
}

#[test]
fn proc_exit_ends_the_call_with_its_code() {
    let rt = runtime();
    let e = run(
        &rt,
        &wasi_module("", "(call $proc_exit (i32.const 3)) (i32.const 0)"),
        "{}",
    );
    assert_kind(&e, OutcomeKind::FunctionError);
    assert_eq!(
        e.message.as_deref(),
        Some("the function returned error code 3")
    );
    let ok = wasi_module(
        r#"(data (i32.const 0) "[]")"#,
        "(call $output_write (i32.const 0) (i32.const 2)) (call $proc_exit (i32.const 0)) unreachable",
    );
    assert_eq!(output(&run(&rt, &ok, "{}")), serde_json::json!([]));
}

#[test]
fn initialize_runs_before_aifn_call() {
    let rt = runtime();
    let wat = format!(
        r#"(module {IMPORTS}
          (memory (export "memory") 1)
          (global $ready (mut i32) (i32.const 0))
          (data (i32.const 0) "[1]")
          (func (export "_initialize") (global.set $ready (i32.const 1)))
          (func (export "aifn_call") (result i32)
            (if (i32.eqz (global.get $ready)) (then unreachable))
            (call $output_write (i32.const 0) (i32.const 3))
            (i32.const 0)))"#
    );
    assert_eq!(output(&run(&rt, &wat, "{}")), serde_json::json!([1]));
}

#[test]
fn wasi_pointers_are_bounds_checked() {
    let rt = runtime();
    let e = run(
        &rt,
        &wasi_module(
            "",
            "(drop (call $random_get (i32.const 65530) (i32.const 16))) (i32.const 0)",
        ),
        "{}",
    );
    assert_kind(&e, OutcomeKind::Trap);
    assert_eq!(e.trap_code, Some("host_out_of_bounds"));
    let e = run(
        &rt,
        &wasi_module(
            "",
            "(drop (call $fd_write (i32.const 1) (i32.const 65532) (i32.const 1) (i32.const 0))) (i32.const 0)",
        ),
        "{}",
    );
    assert_kind(&e, OutcomeKind::Trap);
}
