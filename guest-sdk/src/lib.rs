//! Guest SDK for aifn functions.
//!
//! Write a plain Rust function over serde types and export it with one
//! macro; the SDK implements [ABI v1](../../docs/abi.md) for you:
//!
//! ```
//! use aifn_guest::{Context, FunctionError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Greet { name: String }
//!
//! #[derive(Serialize)]
//! struct Greeting { text: String }
//!
//! fn greet(ctx: &Context, input: Greet) -> Result<Greeting, FunctionError> {
//!     if input.name.is_empty() {
//!         return Err(FunctionError::invalid_input("name", "must not be empty"));
//!     }
//!     aifn_guest::log::info!("greeting {} for tenant {}", input.name, ctx.tenant_id);
//!     Ok(Greeting { text: format!("Hello, {}!", input.name) })
//! }
//!
//! aifn_guest::export!(greet);
//! # fn main() {
//! #     let out = aifn_guest::testing::call(greet, &Context::local(), r#"{"name":"Ada"}"#);
//! #     assert_eq!(out.output, r#"{"text":"Hello, Ada!"}"#);
//! # }
//! ```
//!
//! What [`export!`] generates, per call:
//!
//! 1. installs a panic hook (wasm32 only) that logs the panic message at
//!    level `error`; the abort that follows traps, and the host appends that
//!    last error line to the `trap` outcome's message;
//! 2. reads the context into a typed [`Context`];
//! 3. reads the input and deserializes it; invalid input becomes a
//!    `function_error` naming the field (`invalid input at .start_date:
//!    invalid type: integer `5`, expected a string`), never a trap;
//! 4. calls your function; `Ok(value)` is serialized as JSON and written as
//!    the output (return code 0), `Err(e)` writes `e`'s message and returns
//!    1, which the host reports as `function_error`.
//!
//! The host-call layer only exists on `wasm32`; on other targets a stand-in
//! makes the same code testable with `cargo test` (see [`testing`]).
//!
//! Minimum supported Rust version: 1.63.

#![warn(missing_docs)]

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[cfg(all(target_arch = "wasm32", feature = "bump-alloc"))]
mod alloc;
mod host;
pub mod log;
mod panic;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

/// Re-exported so authors can name the same serde and serde_json versions
/// the SDK uses.
pub use serde;
pub use serde_json;

/// The facts about the world the host gives a call, and nothing else.
///
/// Every field is a string (ABI v1). A field the host does not send is
/// empty; fields the host adds in the future are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// The tenant the function and the caller belong to.
    pub tenant_id: String,
    /// The agent (API key subject) that invoked the function.
    pub agent_id: String,
    /// The end user on whose behalf the agent acts, as the agent says.
    pub user_id: String,
    /// The function's name.
    pub function: String,
    /// The version that runs, as a decimal string.
    pub version: String,
    /// The id of this execution.
    pub execution_id: String,
}

impl Context {
    /// The context `aifn run` uses when none is given: every field `local`.
    pub fn local() -> Context {
        let l = || "local".to_owned();
        Context {
            tenant_id: l(),
            agent_id: l(),
            user_id: l(),
            function: l(),
            version: l(),
            execution_id: l(),
        }
    }

    /// Parses the host's context JSON. Never fails: a context that cannot
    /// be read leaves the fields empty.
    pub fn from_json(bytes: &[u8]) -> Context {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// An error your function reports. The host's outcome is `function_error`
/// with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    message: String,
}

impl FunctionError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> FunctionError {
        FunctionError {
            message: message.into(),
        }
    }

    /// An error about one input field, worded like the SDK's own
    /// deserialization errors: `invalid input at .FIELD: PROBLEM`.
    ///
    /// `field` is a path below the input root such as `end_date` or
    /// `items[2].quantity`.
    pub fn invalid_input(field: &str, problem: impl fmt::Display) -> FunctionError {
        let field = field.trim_start_matches('.');
        FunctionError {
            message: format!("invalid input at .{}: {}", field, problem),
        }
    }

    /// The message the host will report.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FunctionError {}

impl From<String> for FunctionError {
    fn from(message: String) -> FunctionError {
        FunctionError { message }
    }
}

impl From<&str> for FunctionError {
    fn from(message: &str) -> FunctionError {
        FunctionError::new(message)
    }
}

impl From<serde_json::Error> for FunctionError {
    fn from(e: serde_json::Error) -> FunctionError {
        FunctionError::new(e.to_string())
    }
}

/// Exports a function as the module's `aifn_call` (ABI v1).
///
/// The function takes `&Context` and an input type that implements
/// `serde::Deserialize`, and returns `Result<O, E>` where `O` implements
/// `serde::Serialize` and `E` converts into [`FunctionError`] (for example
/// `FunctionError` itself or `String`). Use it once per crate:
///
/// ```
/// use aifn_guest::serde::Deserialize;
/// use aifn_guest::{Context, FunctionError};
///
/// #[derive(Deserialize)]
/// #[serde(crate = "aifn_guest::serde")]
/// struct Leave {
///     days: u32,
/// }
///
/// fn calculate(_ctx: &Context, input: Leave) -> Result<u32, FunctionError> {
///     Ok(input.days * 8)
/// }
///
/// aifn_guest::export!(calculate);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export {
    ($function:expr) => {
        /// ABI v1 entry point generated by `aifn_guest::export!`.
        #[doc(hidden)]
        #[no_mangle]
        pub extern "C" fn aifn_call() -> i32 {
            $crate::__private::run($function)
        }
    };
}

/// Implementation details of [`export!`]; not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Runs one call through the host-call layer and returns the ABI
    /// return code: 0 success, 1 function error.
    pub fn run<I, O, E, F>(function: F) -> i32
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Into<FunctionError>,
        F: FnOnce(&Context, I) -> Result<O, E>,
    {
        panic::install();
        let context = Context::from_json(&host::context());
        let input = host::input();
        let decoded = decode_input::<I>(&input);
        drop(input);
        let result = match decoded {
            Ok(input) => function(&context, input).map_err(Into::into),
            Err(e) => Err(e),
        };
        match result.and_then(|value| {
            serde_json::to_vec(&value)
                .map_err(|e| FunctionError::new(format!("could not serialize the output: {}", e)))
        }) {
            Ok(bytes) => {
                host::output_write(&bytes);
                0
            }
            Err(e) => {
                host::output_write(e.message.as_bytes());
                1
            }
        }
    }
}

/// Deserializes the input JSON into `T`. A mismatch becomes a
/// [`FunctionError`] naming the field: `invalid input at .items[1].price:
/// invalid type: ...`; a problem at the root reads `invalid input: ...`.
pub fn decode_input<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FunctionError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => return Err(input_error(Some(e.path()), e.inner())),
    };
    match de.end() {
        Ok(()) => Ok(value),
        Err(e) => Err(input_error(None, &e)),
    }
}

fn input_error(path: Option<&serde_path_to_error::Path>, e: &serde_json::Error) -> FunctionError {
    let mut msg = e.to_string();
    // For data errors the path says where; drop serde_json's position.
    if e.is_data() && e.line() != 0 {
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        if msg.ends_with(&suffix) {
            msg.truncate(msg.len() - suffix.len());
        }
    }
    match path {
        Some(path) if e.is_data() && path.iter().next().is_some() => {
            FunctionError::new(format!("invalid input at .{}: {}", path, msg))
        }
        _ => FunctionError::new(format!("invalid input: {}", msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        sku: String,
        quantity: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Order {
        start_date: String,
        items: Vec<Item>,
    }

    fn err<T: DeserializeOwned + fmt::Debug>(json: &str) -> String {
        decode_input::<T>(json.as_bytes())
            .expect_err("should fail")
            .message()
            .to_owned()
    }

    #[test]
    fn decodes_valid_input() {
        let o: Order =
            decode_input(br#"{"start_date":"2024-01-02","items":[{"sku":"a","quantity":2}]}"#)
                .expect("valid");
        assert_eq!(
            o.items,
            vec![Item {
                sku: "a".into(),
                quantity: 2
            }]
        );
    }

    #[test]
    fn invalid_input_names_the_field() {
        assert_eq!(
            err::<Order>(r#"{"start_date":5,"items":[]}"#),
            "invalid input at .start_date: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            err::<Order>(
                r#"{"start_date":"x","items":[{"sku":"a","quantity":1},{"sku":"b","quantity":-1}]}"#
            ),
            "invalid input at .items[1].quantity: invalid value: integer `-1`, expected u32"
        );
        assert_eq!(
            err::<Order>(r#"{"start_date":"x","items":[{"sku":"a"}]}"#),
            "invalid input at .items[0]: missing field `quantity`"
        );
        assert_eq!(
            err::<Order>(r#"{"start_date":"x","items":[{"sku":"a","quantity":1,"qty":2}]}"#),
            "invalid input at .items[0].qty: unknown field `qty`, expected `sku` or `quantity`"
        );
    }

    #[test]
    fn problems_at_the_root_have_no_path() {
        assert_eq!(
            err::<Order>(r#"{"items":[]}"#),
            "invalid input: missing field `start_date`"
        );
        assert_eq!(
            err::<Order>("7"),
            "invalid input: invalid type: integer `7`, expected struct Order"
        );
        // Syntax errors keep serde_json's position (the host normally
        // refuses non-JSON input before the guest runs).
        assert_eq!(
            err::<Order>("{"),
            "invalid input: EOF while parsing an object at line 1 column 1"
        );
        assert_eq!(
            err::<u32>("1 2"),
            "invalid input: trailing characters at line 1 column 3"
        );
    }

    #[test]
    fn field_errors_read_like_sdk_errors() {
        assert_eq!(
            FunctionError::invalid_input("end_date", "is before start_date").message(),
            "invalid input at .end_date: is before start_date"
        );
        assert_eq!(
            FunctionError::invalid_input(".a[0]", "bad").to_string(),
            "invalid input at .a[0]: bad"
        );
    }

    fn order_size(ctx: &Context, o: Order) -> Result<serde_json::Value, FunctionError> {
        crate::log::debug!("{} items for {}", o.items.len(), ctx.tenant_id);
        if o.items.is_empty() {
            return Err(FunctionError::invalid_input("items", "must not be empty"));
        }
        Ok(serde_json::json!({ "items": o.items.len(), "tenant": ctx.tenant_id }))
    }

    #[test]
    fn run_writes_json_output_and_logs() {
        let mut ctx = Context::local();
        ctx.tenant_id = "acme".into();
        let out = testing::call(
            order_size,
            &ctx,
            r#"{"start_date":"d","items":[{"sku":"a","quantity":1}]}"#,
        );
        assert_eq!(out.code, 0);
        assert_eq!(out.output, r#"{"items":1,"tenant":"acme"}"#);
        assert_eq!(
            out.logs,
            vec![(log::Level::Debug, "1 items for acme".to_owned())]
        );
    }

    #[test]
    fn run_reports_function_and_input_errors() {
        let out = testing::call(
            order_size,
            &Context::local(),
            r#"{"start_date":"d","items":[]}"#,
        );
        assert_eq!(
            (out.code, out.output.as_str()),
            (1, "invalid input at .items: must not be empty")
        );
        let out = testing::call(
            order_size,
            &Context::local(),
            r#"{"start_date":1,"items":[]}"#,
        );
        assert_eq!(
            (out.code, out.output.as_str()),
            (
                1,
                "invalid input at .start_date: invalid type: integer `1`, expected a string"
            )
        );
        assert!(out.logs.is_empty(), "the function did not run");
    }

    #[test]
    fn errors_may_be_strings_and_outputs_any_serializable() {
        let f = |_: &Context, n: u8| {
            if n > 9 {
                Err(format!("{} has two digits", n))
            } else {
                Ok(vec![n; 2])
            }
        };
        assert_eq!(testing::call(f, &Context::local(), "3").output, "[3,3]");
        assert_eq!(
            testing::call(f, &Context::local(), "12").output,
            "12 has two digits"
        );
        // Maps with non-string keys cannot be JSON: a function error.
        let g = |_: &Context, _: ()| -> Result<_, FunctionError> {
            Ok(std::collections::BTreeMap::from([((1, 2), 3)]))
        };
        let out = testing::call(g, &Context::local(), "null");
        assert_eq!(out.code, 1);
        assert_eq!(
            out.output,
            "could not serialize the output: key must be a string"
        );
    }

    #[test]
    fn context_is_tolerant() {
        let c = Context::from_json(br#"{"tenant_id":"acme","agent_id":"bot","user_id":"u","function":"f","version":"3","execution_id":"e","future":1}"#);
        assert_eq!(c.tenant_id, "acme");
        assert_eq!(c.version, "3");
        assert_eq!(Context::from_json(b"not json"), Context::default());
        assert_eq!(Context::from_json(br#"{"tenant_id":"t"}"#).agent_id, "");
    }
}
