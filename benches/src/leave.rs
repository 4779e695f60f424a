//! `functions/calculate_leave_days` compiled natively: its own source file,
//! included as a module, with [`guest`] standing in for the guest SDK
//! (`aifn_guest`, which this crate aliases to itself). The stand-in does
//! what the SDK's `export!` does per call on wasm: parse the context JSON,
//! decode the input with `serde_path_to_error`, call the function,
//! serialize the output; log lines are formatted and kept. So the native
//! floor runs exactly the logic the wasm module runs, minus the sandbox.

/// The SDK surface the function uses: `Context`, `FunctionError`, `log`
/// and the `export!` glue.
pub mod guest {
    use std::cell::RefCell;
    use std::fmt;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    /// The call's context, as the SDK parses it.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Context {
        /// Tenant.
        pub tenant_id: String,
        /// Agent.
        pub agent_id: String,
        /// End user.
        pub user_id: String,
        /// Function name.
        pub function: String,
        /// Version.
        pub version: String,
        /// Execution id.
        pub execution_id: String,
    }

    impl Context {
        /// Parses the host's context JSON; never fails.
        pub fn from_json(bytes: &[u8]) -> Context {
            serde_json::from_slice(bytes).unwrap_or_default()
        }
    }

    /// An error the function reports.
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

        /// `invalid input at .FIELD: PROBLEM`.
        pub fn invalid_input(field: &str, problem: impl fmt::Display) -> FunctionError {
            FunctionError {
                message: format!(
                    "invalid input at .{}: {}",
                    field.trim_start_matches('.'),
                    problem
                ),
            }
        }

        /// The message.
        pub fn message(&self) -> &str {
            &self.message
        }
    }

    impl fmt::Display for FunctionError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

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

    thread_local! {
        static LOGS: RefCell<Vec<(i32, String)>> = const { RefCell::new(Vec::new()) };
    }

    /// Keeps one log line of this call.
    pub fn log_line(level: i32, message: &str) {
        LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
    }

    /// The log lines of the last call on this thread.
    pub fn take_logs() -> Vec<(i32, String)> {
        LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }

    fn decode_input<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FunctionError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
            FunctionError::new(format!("invalid input at .{}: {}", e.path(), e.inner()))
        })?;
        de.end()
            .map_err(|e| FunctionError::new(format!("invalid input: {e}")))?;
        Ok(value)
    }

    /// One call through the SDK's glue: returns the ABI code (0 ok, 1
    /// function error) and the output (JSON, or the error message).
    pub fn run<I, O, E, F>(function: F, context: &[u8], input: &[u8]) -> (i32, Vec<u8>)
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Into<FunctionError>,
        F: FnOnce(&Context, I) -> Result<O, E>,
    {
        LOGS.with(|l| l.borrow_mut().clear());
        let context = Context::from_json(context);
        let result = match decode_input::<I>(input) {
            Ok(input) => function(&context, input).map_err(Into::into),
            Err(e) => Err(e),
        };
        match result.and_then(|v| {
            serde_json::to_vec(&v)
                .map_err(|e| FunctionError::new(format!("could not serialize the output: {e}")))
        }) {
            Ok(bytes) => (0, bytes),
            Err(e) => (1, e.message.into_bytes()),
        }
    }
}

/// `aifn_guest::log::debug!` of the native build.
#[doc(hidden)]
#[macro_export]
macro_rules! __guest_debug {
    ($($arg:tt)+) => { $crate::leave::guest::log_line(1, &::std::format!($($arg)+)) };
}

/// `aifn_guest::export!` of the native build: defines `call_native`.
#[doc(hidden)]
#[macro_export]
macro_rules! export {
    ($function:expr) => {
        /// The exported function, called through the SDK's glue.
        pub fn call_native(context: &[u8], input: &[u8]) -> (i32, ::std::vec::Vec<u8>) {
            $crate::leave::guest::run($function, context, input)
        }
    };
}

#[allow(missing_docs, unreachable_pub, clippy::all, unused_qualifications)]
#[path = "../../functions/calculate_leave_days/src/lib.rs"]
mod calculate_leave_days;

/// A typical request: two weeks over the new year with three holidays.
pub const INPUT: &[u8] = br#"{"start_date":"2024-12-23","end_date":"2025-01-03","holidays":["2024-12-25","2024-12-26","2025-01-01"]}"#;

/// The expected output for [`INPUT`].
pub const OUTPUT: &[u8] =
    br#"{"working_days":7,"calendar_days":12,"weekend_days":2,"holidays_excluded":["2024-12-25","2024-12-26","2025-01-01"]}"#;

/// Runs `calculate_leave_days` natively: (ABI code, output).
pub fn native(context: &[u8], input: &[u8]) -> (i32, Vec<u8>) {
    calculate_leave_days::call_native(context, input)
}

#[cfg(test)]
mod native_tests {
    #[test]
    fn native_build_gives_the_documented_answer() {
        let (code, out) = super::native(b"{}", super::INPUT);
        assert_eq!(
            (code, String::from_utf8_lossy(&out).into_owned()),
            (0, String::from_utf8_lossy(super::OUTPUT).into_owned())
        );
        assert_eq!(super::guest::take_logs().len(), 1);
    }
}
