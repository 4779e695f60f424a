//! What inspection says of a JavaScript function: its source, the engine
//! it runs on and the approver's checklist findings.

use serde::{Deserialize, Serialize};

/// The JavaScript engine a version runs on; part of what is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The engine, `quickjs-ng`.
    pub name: String,
    /// Its upstream version, e.g. `0.16.2`.
    pub version: String,
    /// Lowercase hex sha256 of the engine module as built from source.
    pub sha256: String,
}

/// A JavaScript version's part of the inspection report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptReport {
    /// Lowercase hex sha256 of the source text.
    pub source_sha256: String,
    /// Size of the source in bytes.
    pub source_bytes: u64,
    /// Size of the bytecode the engine made from it, in bytes.
    pub bytecode_bytes: u64,
    /// The engine it was compiled with and will run on. Compare it with
    /// the release's current engine to see whether a version runs on an
    /// older one (re-approving on the current engine is a new version).
    pub engine: EngineInfo,
    /// The checklist's findings: warnings for the approver, not refusals.
    pub findings: Vec<CheckFinding>,
}

/// Which checklist item a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckRule {
    /// `eval(...)`, also reached as `globalThis["ev" + "al"]` where visible.
    Eval,
    /// The `Function` constructor or its async and generator forms.
    FunctionConstructor,
    /// `import(...)` or a static `import` declaration.
    Import,
    /// A global reached through a computed property (`globalThis[x]`).
    ComputedGlobalAccess,
    /// A write to `__proto__`, `Object.prototype` or `setPrototypeOf`.
    PrototypeWrite,
    /// `while (true)` or `for (;;)` with no `break`.
    UnboundedLoop,
    /// A function that calls itself with no visible base case.
    RecursionWithoutBaseCase,
    /// A loop over an input array with no bound on its length.
    UnboundedInputLoop,
    /// A string literal that looks like a credential (API key, token,
    /// private key).
    CredentialLiteral,
    /// An input field used with no check of its presence or type.
    UncheckedInput,
}

impl CheckRule {
    /// The product name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckRule::Eval => "eval",
            CheckRule::FunctionConstructor => "function_constructor",
            CheckRule::Import => "import",
            CheckRule::ComputedGlobalAccess => "computed_global_access",
            CheckRule::PrototypeWrite => "prototype_write",
            CheckRule::UnboundedLoop => "unbounded_loop",
            CheckRule::RecursionWithoutBaseCase => "recursion_without_base_case",
            CheckRule::UnboundedInputLoop => "unbounded_input_loop",
            CheckRule::CredentialLiteral => "credential_literal",
            CheckRule::UncheckedInput => "unchecked_input",
        }
    }
}

/// One checklist finding, at a place in the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFinding {
    /// The checklist item.
    pub rule: CheckRule,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What was found, for the approver, e.g. "eval is called".
    pub message: String,
}
