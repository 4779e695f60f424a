use std::fmt;

use serde::{Deserialize, Serialize};

/// How one invocation attempt ended. Every attempt ends in exactly one kind,
/// and the same names are used in the runtime, the audit log, the HTTP API
/// and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The function returned 0 and its output is one JSON document.
    Ok,
    /// The instruction budget ran out (in the guest or in a host call).
    FuelExhausted,
    /// The wall-clock deadline passed.
    Timeout,
    /// Linear memory or a table would have grown past its limit.
    MemoryLimit,
    /// The wasm stack limit was hit.
    StackOverflow,
    /// Any other trap; the message carries the trap code.
    Trap,
    /// The output was larger than the output limit.
    OutputTooLarge,
    /// The function succeeded but its output is not one JSON document.
    InvalidOutput,
    /// The function returned non-zero; its output is the error message.
    FunctionError,
    /// The input is not JSON, too large, or fails the function's schema.
    InvalidInput,
    /// Not wasm, a forbidden feature, over a static cap, or a missing export.
    InvalidModule,
    /// The module imports something outside ABI v1 and zero-capability WASI.
    ForbiddenImport,
    /// Compiling the module took longer than allowed.
    CompileTimeout,
    /// Refusal: no valid API key.
    Unauthenticated,
    /// Refusal: the key's role or tenant does not allow this.
    Forbidden,
    /// Refusal: no such function (or version) in the caller's tenant.
    NotFound,
    /// Refusal: the function has no active version.
    NotActive,
    /// Refusal: a rate or concurrency limit was reached.
    RateLimited,
    /// Refusal after the call: the output guard withheld the output.
    OutputBlocked,
}

impl OutcomeKind {
    /// Every kind, in a stable order.
    pub const ALL: [OutcomeKind; 19] = [
        OutcomeKind::Ok,
        OutcomeKind::FuelExhausted,
        OutcomeKind::Timeout,
        OutcomeKind::MemoryLimit,
        OutcomeKind::StackOverflow,
        OutcomeKind::Trap,
        OutcomeKind::OutputTooLarge,
        OutcomeKind::InvalidOutput,
        OutcomeKind::FunctionError,
        OutcomeKind::InvalidInput,
        OutcomeKind::InvalidModule,
        OutcomeKind::ForbiddenImport,
        OutcomeKind::CompileTimeout,
        OutcomeKind::Unauthenticated,
        OutcomeKind::Forbidden,
        OutcomeKind::NotFound,
        OutcomeKind::NotActive,
        OutcomeKind::RateLimited,
        OutcomeKind::OutputBlocked,
    ];

    /// The product name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Ok => "ok",
            OutcomeKind::FuelExhausted => "fuel_exhausted",
            OutcomeKind::Timeout => "timeout",
            OutcomeKind::MemoryLimit => "memory_limit",
            OutcomeKind::StackOverflow => "stack_overflow",
            OutcomeKind::Trap => "trap",
            OutcomeKind::OutputTooLarge => "output_too_large",
            OutcomeKind::InvalidOutput => "invalid_output",
            OutcomeKind::FunctionError => "function_error",
            OutcomeKind::InvalidInput => "invalid_input",
            OutcomeKind::InvalidModule => "invalid_module",
            OutcomeKind::ForbiddenImport => "forbidden_import",
            OutcomeKind::CompileTimeout => "compile_timeout",
            OutcomeKind::Unauthenticated => "unauthenticated",
            OutcomeKind::Forbidden => "forbidden",
            OutcomeKind::NotFound => "not_found",
            OutcomeKind::NotActive => "not_active",
            OutcomeKind::RateLimited => "rate_limited",
            OutcomeKind::OutputBlocked => "output_blocked",
        }
    }

    /// True for the kinds that refuse a call before any guest code runs
    /// because of who asked or what they asked for.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            OutcomeKind::Unauthenticated
                | OutcomeKind::Forbidden
                | OutcomeKind::NotFound
                | OutcomeKind::NotActive
                | OutcomeKind::RateLimited
        )
    }

    /// True for the kinds that refuse a module (at upload or load).
    pub fn is_module_refusal(self) -> bool {
        matches!(
            self,
            OutcomeKind::InvalidModule | OutcomeKind::ForbiddenImport | OutcomeKind::CompileTimeout
        )
    }
}

/// A kind name that is not one of the product's outcome kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown outcome kind {:?}", self.0)
    }
}

impl std::error::Error for UnknownKind {}

impl std::str::FromStr for OutcomeKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        OutcomeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for k in OutcomeKind::ALL {
            let json = serde_json::to_string(&k).expect("serialize");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(k.as_str().parse::<OutcomeKind>(), Ok(k));
        }
        assert!("oops".parse::<OutcomeKind>().is_err());
    }
}
