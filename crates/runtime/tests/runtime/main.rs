//! Integration tests of the sandbox runtime: every outcome kind as a pair
//! (just inside the limit, and over it), the ABI, WASI, validation, caches
//! and hostile load. Modules are inline WAT.

mod abi;
mod cache;
mod engines;
mod host_calls;
mod hostile;
mod js;
mod limits;
mod logs;
mod validation;
mod wasi;

use aifn_runtime::{
    Context, Execution, Invocation, Limits, LoadedModule, OutcomeKind, Runtime, RuntimeConfig,
};

/// A runtime with a small pool, as tests create many.
pub(crate) fn runtime() -> Runtime {
    runtime_with(Limits::default())
}

pub(crate) fn runtime_with(limits: Limits) -> Runtime {
    Runtime::new(RuntimeConfig {
        limits,
        max_instances: 32,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

pub(crate) fn load(rt: &Runtime, wat: &str) -> LoadedModule {
    let bytes = wat::parse_str(wat).expect("valid wat");
    rt.load(&bytes).expect("module loads")
}

pub(crate) fn run(rt: &Runtime, wat: &str, input: &str) -> Execution {
    run_with(rt, wat, input, *rt.limits())
}

pub(crate) fn run_with(rt: &Runtime, wat: &str, input: &str, limits: Limits) -> Execution {
    let m = load(rt, wat);
    rt.invoke(
        &m,
        &Invocation::new(input.as_bytes(), &Context::local(), limits),
    )
}

#[track_caller]
pub(crate) fn assert_kind(e: &Execution, kind: OutcomeKind) {
    assert_eq!(e.kind, kind, "unexpected outcome: {e:#?}");
}

pub(crate) fn output(e: &Execution) -> serde_json::Value {
    assert_kind(e, OutcomeKind::Ok);
    serde_json::from_slice(e.output.as_deref().expect("output")).expect("json output")
}

/// The ABI imports every test module may use.
pub(crate) const IMPORTS: &str = r#"
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "context_len" (func $context_len (result i32)))
  (import "aifn" "context_read" (func $context_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (import "aifn" "log" (func $log (param i32 i32 i32)))
"#;

/// A module that echoes its input, with `body` run first.
pub(crate) fn echo_with(body: &str) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 2)
  (func (export "aifn_call") (result i32)
    (local $n i32)
    {body}
    (local.set $n (call $input_len))
    (call $input_read (i32.const 1024))
    (call $output_write (i32.const 1024) (local.get $n))
    (i32.const 0)))"#
    )
}

/// A module whose `aifn_call` writes `{"ok":true}` and then runs `body`
/// (which must leave an i32); locals `$i` and `$p` are declared.
pub(crate) fn module(extra: &str, body: &str) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 0) "{{\"ok\":true}}")
  {extra}
  (func (export "aifn_call") (result i32)
    (local $i i32) (local $p i32)
    (call $output_write (i32.const 0) (i32.const 11))
    {body}))"#
    )
}

#[test]
fn an_engine_the_host_cannot_reserve_keeps_wasmtimes_error_as_its_source() {
    let err = Runtime::new(RuntimeConfig {
        max_instances: 1 << 24,
        ..RuntimeConfig::default()
    })
    .expect_err("no room for the pool");
    assert!(
        matches!(err, aifn_runtime::RuntimeError::Engine(_)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot create the wasm engine: "),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}
