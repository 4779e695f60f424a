//! Run a function on the build machine, without wasm, through the same
//! code path `export!` uses (non-wasm32 targets only).
//!
//! ```
//! use aifn_guest::{Context, FunctionError};
//!
//! fn double(_: &Context, n: i64) -> Result<i64, FunctionError> {
//!     aifn_guest::log::info!("doubling {}", n);
//!     Ok(n * 2)
//! }
//!
//! let out = aifn_guest::testing::call(double, &Context::local(), "21");
//! assert_eq!(out.code, 0);
//! assert_eq!(out.output, "42");
//! assert_eq!(out.logs, vec![(aifn_guest::log::Level::Info, "doubling 21".to_owned())]);
//! ```
//!
//! A panic in the function propagates (it unwinds as usual in tests); in
//! wasm it becomes a `trap` outcome.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::host;
use crate::log::Level;
use crate::{Context, FunctionError};

/// What a simulated call returned and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutput {
    /// The ABI return code: 0 success, 1 function error.
    pub code: i32,
    /// The output (JSON on success, the error message otherwise), lossily
    /// decoded as UTF-8; empty when nothing was written.
    pub output: String,
    /// The log lines, in order.
    pub logs: Vec<(Level, String)>,
}

impl CallOutput {
    /// The output parsed as JSON, when the call succeeded.
    pub fn json(&self) -> Option<serde_json::Value> {
        if self.code == 0 {
            serde_json::from_str(&self.output).ok()
        } else {
            None
        }
    }
}

/// Calls `function` with `input` (JSON text) and `context` as an exported
/// `aifn_call` would be called by the host.
pub fn call<I, O, E, F>(function: F, context: &Context, input: &str) -> CallOutput
where
    I: DeserializeOwned,
    O: Serialize,
    E: Into<FunctionError>,
    F: FnOnce(&Context, I) -> Result<O, E>,
{
    // Serializing a struct of strings cannot fail.
    let context = serde_json::to_vec(context).unwrap_or_default();
    let previous = host::swap(host::State {
        input: input.as_bytes().to_vec(),
        context,
        ..Default::default()
    });
    struct Restore(Option<host::State>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(s) = self.0.take() {
                host::swap(s);
            }
        }
    }
    // Restores the caller's state even when the function panics.
    let mut restore = Restore(Some(previous));
    let code = crate::__private::run(function);
    let state = host::swap(restore.0.take().unwrap_or_default());
    CallOutput {
        code,
        output: state
            .output
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .unwrap_or_default(),
        logs: state
            .logs
            .into_iter()
            .map(|(l, m)| (Level::from_abi(l), m))
            .collect(),
    }
}
