use serde::{Deserialize, Serialize};

use crate::{GuardMode, LimitsRequest, OutcomeKind};

/// What an author declares with a module: shown to approvers, used by the
/// host to check inputs, and published to agents as a tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct Manifest {
    /// What the function does, for approvers and for the LLM that calls it.
    pub description: String,
    /// JSON Schema of the input; inputs are checked against it before a call.
    pub input_schema: serde_json::Value,
    /// JSON Schema of the output, if the author gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    /// Limits the function asks for; never above the host maxima.
    #[serde(default)]
    pub limits: LimitsRequest,
    /// Opt-in capture of raw inputs and outputs in the audit log, for
    /// replay. Absent means never capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CapturePolicy>,
    /// The output guard's mode for this function, lowering or raising the
    /// tenant's (approved with the version). Absent: the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_guard: Option<GuardMode>,
    /// Tests the host runs at upload, in the sandbox under the version's
    /// limits; approval is refused while one fails (unless overridden).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<ManifestTest>,
}

impl Manifest {
    /// The most tests a manifest may carry.
    pub const MAX_TESTS: usize = 32;
}

/// One `[[tests]]` entry: a name, an input, and exactly one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct ManifestTest {
    /// Unique within the manifest, 1 to 64 characters.
    pub name: String,
    /// The input document.
    pub input: serde_json::Value,
    /// The exact JSON output expected (outcome `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_output: Option<serde_json::Value>,
    /// The outcome kind expected (`ok`, `fuel_exhausted`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_kind: Option<OutcomeKind>,
    /// A JSON Schema the output must match (outcome `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_output_schema: Option<serde_json::Value>,
}

/// What a test expects, once checked to be exactly one thing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expectation<'a> {
    /// This exact output.
    Output(&'a serde_json::Value),
    /// This outcome kind.
    Kind(OutcomeKind),
    /// An output matching this schema.
    OutputSchema(&'a serde_json::Value),
}

impl ManifestTest {
    /// The one expectation, or why there is not exactly one.
    pub fn expectation(&self) -> Result<Expectation<'_>, String> {
        match (
            &self.expect_output,
            self.expect_kind,
            &self.expect_output_schema,
        ) {
            (Some(o), None, None) => Ok(Expectation::Output(o)),
            (None, Some(k), None) => Ok(Expectation::Kind(k)),
            (None, None, Some(s)) => Ok(Expectation::OutputSchema(s)),
            _ => Err(format!(
                "test {:?} must have exactly one of expect_output, expect_kind and expect_output_schema",
                self.name
            )),
        }
    }
}

/// Raw payload capture for replay, with a retention limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CapturePolicy {
    /// Captured payloads are deleted after this many days (1 to 90).
    pub retention_days: u32,
}

impl CapturePolicy {
    /// The longest retention a manifest may ask for.
    pub const MAX_RETENTION_DAYS: u32 = 90;
}
