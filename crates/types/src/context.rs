use serde::{Deserialize, Serialize};

/// The only facts about the world a guest can see, injected by the host.
///
/// The guest reads it as JSON through `context_len`/`context_read` (ABI v1).
/// Every field is a string, so any guest language can read it without
/// guessing number widths; `version` is the decimal version number. The
/// tenant always comes from the caller's credentials, never from a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// The id of this execution; also the seed of WASI randomness.
    pub execution_id: String,
}

impl Context {
    /// The context `aifn run` uses when nothing is given: every field `local`.
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

    /// The JSON bytes the guest reads. Field order is fixed, so the same
    /// context always gives the same bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Severity of a guest log line (the `level` argument of `aifn.log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4 and above
    Error,
}

impl LogLevel {
    /// Maps the ABI's integer level; negative is trace, above 4 is error.
    pub fn from_abi(level: i32) -> LogLevel {
        match level {
            i32::MIN..=0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The `aifn.log` host call.
    Log,
    /// WASI `fd_write` to fd 1.
    Stdout,
    /// WASI `fd_write` to fd 2.
    Stderr,
    /// The host itself (for example the truncation marker).
    Host,
}

/// One line a guest logged, kept with the outcome (bounded in total).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Source of the line.
    pub stream: LogStream,
    /// The text; invalid UTF-8 is replaced.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_json_has_exactly_the_six_fields() {
        let v: serde_json::Value =
            serde_json::from_slice(&Context::local().to_json_bytes()).expect("json");
        let mut keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "agent_id",
                "execution_id",
                "function",
                "tenant_id",
                "user_id",
                "version"
            ]
        );
    }
}
