//! The example functions (and the SDK's test-only probe) run through the
//! real runtime: exact outputs for typical inputs, `function_error` (never
//! a trap) for bad inputs, panics as `trap` with their message, imports
//! only from `aifn`, and module sizes.
//!
//! The modules come from `cargo xtask build-functions`, in
//! `<target dir>/wasm/` (or `$AIFN_WASM_DIR`). A missing module fails the
//! test with that instruction; nothing is skipped.

mod iban;
mod invoice;
mod leave;
mod modules;
mod pii;
mod sdk;

use std::path::PathBuf;
use std::sync::OnceLock;

use aifn_runtime::{Execution, Invocation, LoadedModule, Runtime, RuntimeConfig};
use aifn_types::{Context, Limits, OutcomeKind};
use serde_json::Value;

pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime starts"))
}

/// `$AIFN_WASM_DIR`, else the `wasm` folder of the target directory this
/// test binary was built in (`<target>/[<triple>/]debug/deps/functions-*`),
/// else `$CARGO_TARGET_DIR/wasm`, else `<repo>/target/wasm`.
pub(crate) fn wasm_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIFN_WASM_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test binary path");
    if let Some(w) = exe
        .ancestors()
        .skip(3)
        .take(2)
        .map(|a| a.join("wasm"))
        .find(|w| w.is_dir())
    {
        return w;
    }
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_absolute() => t.join("wasm"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm"),
    }
}

pub(crate) fn wasm_bytes(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}). Build the guest functions first: `cargo xtask build-functions` \
             (or point AIFN_WASM_DIR at a folder of built modules)",
            path.display()
        )
    })
}

pub(crate) fn module(name: &str) -> LoadedModule {
    runtime()
        .load(&wasm_bytes(name))
        .unwrap_or_else(|e| panic!("{name}.wasm was refused: {e}"))
}

pub(crate) fn call_with(name: &str, input: &str, ctx: &Context, limits: Limits) -> Execution {
    let m = module(name);
    runtime().invoke(&m, &Invocation::new(input.as_bytes(), ctx, limits))
}

pub(crate) fn call(name: &str, input: &str) -> Execution {
    call_with(name, input, &Context::local(), Limits::default())
}

/// The output of a call that must succeed.
pub(crate) fn ok(name: &str, input: &str) -> Value {
    let e = call(name, input);
    assert_eq!(
        e.kind,
        OutcomeKind::Ok,
        "{name} {input}: {:?} logs {:?}",
        e.message,
        e.logs
    );
    let out = e.output.expect("ok has output");
    serde_json::from_slice(&out).expect("output is JSON")
}

/// The message of a call that must end in `function_error`.
pub(crate) fn function_error(name: &str, input: &str) -> String {
    let e = call(name, input);
    assert_eq!(
        e.kind,
        OutcomeKind::FunctionError,
        "{name} {input}: {:?} {:?}",
        e.message,
        e.output
    );
    e.message.expect("function_error has a message")
}
