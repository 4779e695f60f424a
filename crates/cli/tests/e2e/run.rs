//! `aifn run`: one JSON object on stdout, exit 0 / 1 / 2.

use serde_json::Value;

use crate::*;

fn run(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let (code, out, err) = cli(&all, &[]);
    let v = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {out:?} {err}"));
    (code, v, err)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_str().expect("utf-8").to_owned()
}

const ECHO: &str = r#"(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (import "aifn" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 60000) "echoing")
  (func (export "aifn_call") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 0))
    (call $log (i32.const 2) (i32.const 60000) (i32.const 7))
    (call $output_write (i32.const 0) (local.get $n))
    (i32.const 0)))"#;

#[test]
fn a_wat_module_runs_and_prints_the_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = write(dir.path(), "echo.wat", ECHO);
    let (code, v, _) = run(&[&m, "--input", r#"{"hello":"world"}"#]);
    assert_eq!(code, 0);
    assert_eq!(v["ok"], true);
    assert_eq!(v["output"], serde_json::json!({"hello": "world"}));
    assert!(v["fuel_used"].as_u64().expect("fuel") > 0);
    assert!(v["duration_ms"].is_number());
    assert_eq!(v["memory_peak_bytes"], 65536);
    assert_eq!(
        v["logs"],
        serde_json::json!([{"level": "info", "stream": "log", "message": "echoing"}])
    );
    // The default input is {} and the default context is `local`.
    let (code, v, _) = run(&[&m]);
    assert_eq!((code, &v["output"]), (0, &serde_json::json!({})));
}

#[test]
fn a_wasm_binary_and_an_input_file_work_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("echo.wasm");
    std::fs::write(&wasm, wat::parse_str(ECHO).expect("wat")).expect("write");
    let input = write(dir.path(), "in.json", "[1,2,3]");
    let (code, v, _) = run(&[wasm.to_str().expect("utf-8"), "--input-file", &input]);
    assert_eq!((code, &v["output"]), (0, &serde_json::json!([1, 2, 3])));
}

#[test]
fn a_function_that_hits_a_limit_exits_1_with_its_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spin = write(
        dir.path(),
        "spin.wat",
        r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#,
    );
    let (code, v, _) = run(&[&spin, "--fuel", "10000"]);
    assert_eq!(code, 1);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "fuel_exhausted");
    assert_eq!(v["fuel_used"], 10000);
    let (code, v, _) = run(&[&spin, "--fuel", "100000000000", "--timeout-ms", "50"]);
    assert_eq!((code, v["error"]["kind"].as_str()), (1, Some("timeout")));
    let grow = write(
        dir.path(),
        "grow.wat",
        r#"(module (memory (export "memory") 1) (func (export "aifn_call") (result i32)
             (if (i32.eq (memory.grow (i32.const 32)) (i32.const -1)) (then unreachable)) (i32.const 0)))"#,
    );
    let (code, v, _) = run(&[&grow, "--memory-mib", "1"]);
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (1, Some("memory_limit"))
    );
}

#[test]
fn a_refused_module_or_bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        dir.path(),
        "net.wat",
        r#"(module (import "env" "http_get" (func (param i32 i32) (result i32))) (memory (export "memory") 1)
             (func (export "aifn_call") (result i32) (i32.const 0)))"#,
    );
    let (code, v, _) = run(&[&bad]);
    assert_eq!(code, 2);
    assert_eq!(v["error"]["kind"], "forbidden_import");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("env.http_get")
    );
    let echo = write(dir.path(), "echo.wat", ECHO);
    let (code, v, _) = run(&[&echo, "--input", "not json"]);
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (2, Some("invalid_input"))
    );
    let (code, _, err) = cli(&["run"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = cli(&["run", "/nonexistent.wasm"], &[]);
    assert_eq!(code, 2);
}

#[test]
fn an_example_function_built_from_source_runs() {
    let wasm = function_wasm("calculate_leave_days");
    let input = r#"{"start_date":"2024-12-23","end_date":"2025-01-03","holidays":["2024-12-25","2024-12-26","2025-01-01"]}"#;
    let (code, v, _) = run(&[wasm.to_str().expect("utf-8"), "--input", input]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"]["working_days"], 7);
}

/// Runs `aifn run` and asserts the one refusal object: `invalid_module`,
/// exit 2, nothing else on stdout. Returns the message.
fn refused_module(path: &str) -> String {
    let (code, v, err) = run(&[path]);
    assert_eq!(code, 2, "{v} {err}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["kind"], "invalid_module", "{v}");
    v["error"]["message"].as_str().expect("message").to_owned()
}

#[test]
fn a_file_that_is_no_module_is_refused_with_the_one_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = dir.path().join("blob.bin");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).expect("write");
    let m = refused_module(binary.to_str().expect("utf-8"));
    assert!(m.contains("neither a wasm module"), "{m}");
    let text = write(dir.path(), "notes.txt", "hello, not a module");
    let m = refused_module(&text);
    assert!(m.contains("not valid WAT"), "{m}");
    // A .wasm file that is not wasm says so, whatever its bytes are.
    let fake = write(dir.path(), "fake.wasm", "(module)");
    let m = refused_module(&fake);
    assert!(m.contains("is not a wasm module"), "{m}");
    assert!(!m.contains("WAT"), "{m}");
    // A truncated binary is found by validation, also as invalid_module.
    let truncated = dir.path().join("cut.wasm");
    std::fs::write(&truncated, b"\0asm\x01\0\0\0\x01").expect("write");
    refused_module(truncated.to_str().expect("utf-8"));
    let m = refused_module("/nonexistent.wasm");
    assert!(m.contains("cannot read /nonexistent.wasm"), "{m}");
    // A module that loads still runs: the refusal is about the file only.
    let real = dir.path().join("real.wasm");
    std::fs::write(&real, wat::parse_str(ECHO).expect("wat")).expect("write");
    let (code, _, _) = run(&[real.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
}

#[test]
fn limits_out_of_range_are_usage_errors_naming_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let echo = write(dir.path(), "echo.wat", ECHO);
    let (code, out, err) = cli(&["run", &echo, "--timeout-ms", "0"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("--timeout-ms"), "{err}");
    let (code, out, err) = cli(&["run", &echo, "--memory-mib", "4097"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("4096"), "the maximum is named: {err}");
    assert!(!err.to_lowercase().contains("engine"), "{err}");
    // The boundaries themselves are accepted: the call runs (a 1 ms
    // deadline may pass on a busy machine, which is an answer, not a usage
    // error).
    let (code, v, _) = run(&[&echo, "--timeout-ms", "1"]);
    assert!(
        code == 0 || (code == 1 && v["error"]["kind"] == "timeout"),
        "{v}"
    );
    let (code, v, _) = run(&[&echo, "--memory-mib", "4096"]);
    assert_eq!(code, 0, "{v}");
}

/// A stdout whose reader is gone before the first byte: every write fails
/// with a broken pipe.
fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer.into()
}

/// Runs `aifn` with its stdout closed; returns (exit code, stderr).
pub(crate) fn with_closed_stdout(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = aifn();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdout(closed_pipe())
        .stderr(Stdio::piped());
    let out = cmd.output().expect("aifn runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("panicked"),
        "no panic on a closed stdout: {err}"
    );
    assert!(!err.contains("Broken pipe"), "{err}");
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let echo = write(dir.path(), "echo.wat", ECHO);
    let (code, _) = with_closed_stdout(&["run", &echo, "--input", "[1]"], &[]);
    assert_eq!(code, 0, "the usual exit status");
    // The same outcome with stdout open: the pair of the test above.
    let (code, v, _) = run(&[&echo, "--input", "[1]"]);
    assert_eq!((code, &v["output"]), (0, &serde_json::json!([1])));
}
