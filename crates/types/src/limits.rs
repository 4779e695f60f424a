use std::fmt;

use serde::{Deserialize, Serialize};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Every limit aifn enforces, in one place.
///
/// The host's configured `Limits` are the maxima. A function's manifest may
/// ask for less through a [`LimitsRequest`] (see [`Limits::narrowed`]), never
/// for more. Fields marked *engine-wide* hold for every function on a host
/// and cannot be changed per function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a JSON object")]
pub struct Limits {
    /// Instruction budget per call (wasmtime fuel; host calls also pay in
    /// proportion to the bytes they copy). Default 100,000,000.
    pub fuel: u64,
    /// Wall-clock deadline per call in milliseconds, enforced by epoch
    /// interruption, start function included. Default 1,000.
    pub timeout_ms: u64,
    /// Linear memory in bytes (one memory per instance). Default 64 MiB.
    pub memory_bytes: u64,
    /// Table elements (one table per instance). Default 10,000.
    pub table_elements: u64,
    /// Invocation input in bytes. Default 1 MiB.
    pub input_bytes: u64,
    /// Output (or error message) in bytes. Default 1 MiB.
    pub output_bytes: u64,
    /// Log text kept per call, WASI stdout/stderr included; the rest is
    /// dropped behind a truncation marker. Default 16 KiB.
    pub log_bytes: u64,
    /// Wasm stack in bytes. *Engine-wide.* Default 512 KiB.
    pub stack_bytes: u64,
    /// Module size in bytes, checked before parsing. *Engine-wide.* Default 4 MiB.
    pub module_bytes: u64,
    /// Functions in a module, imported and defined. *Engine-wide.* Default 10,000.
    pub functions: u64,
    /// Size of one function body in bytes. *Engine-wide.* Default 256 KiB.
    pub function_body_bytes: u64,
    /// Locals declared by one function. *Engine-wide.* Default 10,000.
    pub locals: u64,
    /// Compile deadline in milliseconds; past it the module is refused with
    /// `compile_timeout`. *Engine-wide.* Default 5,000.
    pub compile_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 100_000_000,
            timeout_ms: 1_000,
            memory_bytes: 64 * MIB,
            table_elements: 10_000,
            input_bytes: MIB,
            output_bytes: MIB,
            log_bytes: 16 * KIB,
            stack_bytes: 512 * KIB,
            module_bytes: 4 * MIB,
            functions: 10_000,
            function_body_bytes: 256 * KIB,
            locals: 10_000,
            compile_timeout_ms: 5_000,
        }
    }
}

/// The per-call limits a function may lower in its manifest. Absent fields
/// take the host's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct LimitsRequest {
    /// See [`Limits::fuel`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// See [`Limits::timeout_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// See [`Limits::memory_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// See [`Limits::table_elements`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_elements: Option<u64>,
    /// See [`Limits::input_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bytes: Option<u64>,
    /// See [`Limits::output_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// See [`Limits::log_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<u64>,
}

/// A requested limit above the host maximum, or a limit of zero where zero
/// would make every call fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    /// The field, as named in [`Limits`].
    pub field: &'static str,
    /// What was asked for.
    pub requested: u64,
    /// The host maximum.
    pub maximum: u64,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requested == 0 {
            write!(f, "limit {} must be greater than 0", self.field)
        } else {
            write!(
                f,
                "limit {} = {} is above the host maximum {}",
                self.field, self.requested, self.maximum
            )
        }
    }
}

impl std::error::Error for LimitError {}

impl Limits {
    /// The limits a function runs with: the host's, lowered where the
    /// request asks for less. Asking for more than the host maximum, or for
    /// zero, is an error, so a manifest can never raise a limit.
    pub fn narrowed(&self, req: &LimitsRequest) -> Result<Limits, LimitError> {
        fn pick(field: &'static str, max: u64, req: Option<u64>) -> Result<u64, LimitError> {
            match req {
                None => Ok(max),
                Some(v) if v == 0 || v > max => Err(LimitError {
                    field,
                    requested: v,
                    maximum: max,
                }),
                Some(v) => Ok(v),
            }
        }
        Ok(Limits {
            fuel: pick("fuel", self.fuel, req.fuel)?,
            timeout_ms: pick("timeout_ms", self.timeout_ms, req.timeout_ms)?,
            memory_bytes: pick("memory_bytes", self.memory_bytes, req.memory_bytes)?,
            table_elements: pick("table_elements", self.table_elements, req.table_elements)?,
            input_bytes: pick("input_bytes", self.input_bytes, req.input_bytes)?,
            output_bytes: pick("output_bytes", self.output_bytes, req.output_bytes)?,
            log_bytes: pick("log_bytes", self.log_bytes, req.log_bytes)?,
            ..*self
        })
    }

    /// Field-wise minimum of two limit sets, for defence in depth: whatever
    /// a caller passes, the runtime never exceeds its own maxima.
    pub fn min(&self, other: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(other.fuel),
            timeout_ms: self.timeout_ms.min(other.timeout_ms),
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            table_elements: self.table_elements.min(other.table_elements),
            input_bytes: self.input_bytes.min(other.input_bytes),
            output_bytes: self.output_bytes.min(other.output_bytes),
            log_bytes: self.log_bytes.min(other.log_bytes),
            stack_bytes: self.stack_bytes.min(other.stack_bytes),
            module_bytes: self.module_bytes.min(other.module_bytes),
            functions: self.functions.min(other.functions),
            function_body_bytes: self.function_body_bytes.min(other.function_body_bytes),
            locals: self.locals.min(other.locals),
            compile_timeout_ms: self.compile_timeout_ms.min(other.compile_timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_within_maximum_is_applied() {
        let host = Limits::default();
        let req = LimitsRequest {
            fuel: Some(1_000),
            memory_bytes: Some(MIB),
            ..Default::default()
        };
        let l = host.narrowed(&req).expect("within maxima");
        assert_eq!(l.fuel, 1_000);
        assert_eq!(l.memory_bytes, MIB);
        assert_eq!(l.timeout_ms, host.timeout_ms);
        assert_eq!(l.stack_bytes, host.stack_bytes);
    }

    #[test]
    fn request_above_maximum_is_refused() {
        let host = Limits::default();
        let req = LimitsRequest {
            timeout_ms: Some(host.timeout_ms + 1),
            ..Default::default()
        };
        let err = host.narrowed(&req).expect_err("above maximum");
        assert_eq!(err.field, "timeout_ms");
        assert_eq!(err.maximum, host.timeout_ms);
        let zero = LimitsRequest {
            fuel: Some(0),
            ..Default::default()
        };
        assert_eq!(host.narrowed(&zero).expect_err("zero").field, "fuel");
    }

    #[test]
    fn config_files_may_set_some_fields() {
        let l: Limits = serde_json::from_str(r#"{"fuel": 5}"#).expect("partial");
        assert_eq!(l.fuel, 5);
        assert_eq!(l.timeout_ms, Limits::default().timeout_ms);
        assert!(serde_json::from_str::<Limits>(r#"{"fuell": 5}"#).is_err());
    }
}
