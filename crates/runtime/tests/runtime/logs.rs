//! The log budget at its boundaries: exactly `log_bytes` is kept whole,
//! one byte over is cut there with one `[log truncated]` line, for `log`
//! calls and for WASI stdout/stderr alike; and the last error-level `log`
//! line is the one a trap message quotes.

use aifn_types::{LogLevel, LogStream};

use crate::*;

const MARKER: &str = "[log truncated]";

/// Ten bytes of budget.
fn budget() -> Limits {
    Limits {
        log_bytes: 10,
        ..Limits::default()
    }
}

/// Runs a guest with "0123456789XY" at 100 and `body` before the output.
fn run_logging(extra: &str, body: &str) -> Execution {
    let rt = runtime();
    let wat = module(
        &format!(r#"(data (i32.const 100) "0123456789XY") {extra}"#),
        &format!("{body} (i32.const 0)"),
    );
    let e = run_with(&rt, &wat, "{}", budget());
    assert_kind(&e, OutcomeKind::Ok);
    e
}

/// `log` calls at level info of the first `len` bytes of the data.
fn log_calls(lens: &[u32]) -> Vec<(LogStream, String)> {
    let body: String = lens
        .iter()
        .map(|n| format!("(call $log (i32.const 2) (i32.const 100) (i32.const {n}))"))
        .collect();
    lines(&run_logging("", &body))
}

fn lines(e: &Execution) -> Vec<(LogStream, String)> {
    e.logs
        .iter()
        .map(|l| (l.stream, l.message.clone()))
        .collect()
}

fn log(text: &str) -> (LogStream, String) {
    (LogStream::Log, text.to_owned())
}

fn marker() -> (LogStream, String) {
    (LogStream::Host, MARKER.to_owned())
}

#[test]
fn log_lines_that_fill_the_budget_exactly_are_kept_whole() {
    assert_eq!(log_calls(&[10]), [log("0123456789")]);
    assert_eq!(log_calls(&[4, 6]), [log("0123"), log("012345")]);
    // A full budget still keeps an empty line: nothing was cut.
    assert_eq!(log_calls(&[10, 0]), [log("0123456789"), log("")]);
}

#[test]
fn one_byte_over_the_budget_is_cut_with_one_marker() {
    assert_eq!(log_calls(&[11]), [log("0123456789"), marker()]);
    assert_eq!(log_calls(&[4, 7]), [log("0123"), log("012345"), marker()]);
    assert_eq!(
        log_calls(&[10, 1, 5]),
        [log("0123456789"), marker()],
        "nothing is kept after the marker"
    );
}

const FD_WRITE: &str = r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#;

/// Writes `text` to stdout in one `fd_write` and ends the call, so an
/// unterminated line is flushed at the end.
fn stdout(text: &str) -> Vec<(LogStream, String)> {
    let len = text.len();
    let text = text.replace('\n', "\\0a");
    let rt = runtime();
    let wat = format!(
        r#"(module {IMPORTS} {FD_WRITE}
  (memory (export "memory") 1)
  (data (i32.const 0) "{{\"ok\":true}}")
  (data (i32.const 100) "{text}")
  (func (export "aifn_call") (result i32)
    (i32.store (i32.const 400) (i32.const 100))
    (i32.store (i32.const 404) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 400) (i32.const 1) (i32.const 500)))
    (call $output_write (i32.const 0) (i32.const 11))
    (i32.const 0)))"#
    );
    let e = run_with(&rt, &wat, "{}", budget());
    assert_kind(&e, OutcomeKind::Ok);
    lines(&e)
}

fn out(text: &str) -> (LogStream, String) {
    (LogStream::Stdout, text.to_owned())
}

#[test]
fn stdout_that_fills_the_budget_exactly_is_kept_whole() {
    assert_eq!(stdout("0123456789"), [out("0123456789")]);
    assert_eq!(stdout("01234\n56789\n"), [out("01234"), out("56789")]);
    assert_eq!(stdout("0123\n456789"), [out("0123"), out("456789")]);
}

#[test]
fn stdout_one_byte_over_the_budget_is_cut_with_one_marker() {
    assert_eq!(stdout("0123456789X"), [out("0123456789"), marker()]);
    assert_eq!(stdout("0123456789X\n"), [out("0123456789"), marker()]);
    assert_eq!(
        stdout("0123\n4567890"),
        [out("0123"), out("456789"), marker()]
    );
}

#[test]
fn a_trap_message_quotes_the_last_error_level_log_line() {
    let rt = runtime();
    // Error "boom", then an info line and a stderr line: the error is quoted.
    let wat = format!(
        r#"(module {IMPORTS} {FD_WRITE}
  (memory (export "memory") 1)
  (data (i32.const 100) "boom") (data (i32.const 110) "later\0a")
  (func (export "aifn_call") (result i32)
    (call $log (i32.const 4) (i32.const 100) (i32.const 4))
    (call $log (i32.const 2) (i32.const 110) (i32.const 5))
    (i32.store (i32.const 400) (i32.const 110))
    (i32.store (i32.const 404) (i32.const 6))
    (drop (call $fd_write (i32.const 2) (i32.const 400) (i32.const 1) (i32.const 500)))
    unreachable))"#
    );
    let e = run(&rt, &wat, "{}");
    assert_kind(&e, OutcomeKind::Trap);
    let levels: Vec<_> = e.logs.iter().map(|l| (l.level, l.stream)).collect();
    assert_eq!(
        levels,
        [
            (LogLevel::Error, LogStream::Log),
            (LogLevel::Info, LogStream::Log),
            (LogLevel::Warn, LogStream::Stderr),
        ]
    );
    assert_eq!(
        e.message.as_deref(),
        Some("unreachable: wasm trap: wasm `unreachable` instruction executed; guest: boom")
    );
    // Without an error-level line, the message quotes nothing.
    let warn_only = "(call $log (i32.const 3) (i32.const 100) (i32.const 5)) unreachable";
    let e = run(
        &rt,
        &module(r#"(data (i32.const 100) "later")"#, warn_only),
        "{}",
    );
    let quoted = e.message.as_deref().and_then(|m| m.split_once("; guest"));
    assert_eq!((e.kind, quoted), (OutcomeKind::Trap, None), "{e:?}");
}
