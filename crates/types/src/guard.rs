//! The output guard's words: its modes, the tenant's own patterns and what
//! a scan finds. The scan itself lives in the service.

use serde::{Deserialize, Serialize};

use crate::policy::{Budget, TenantMode};

/// What the output guard does with a finding.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case", expecting = "off, flag or block")]
pub enum GuardMode {
    /// No scan.
    Off,
    /// The answer goes out; the record lists the findings' kinds and paths.
    #[default]
    Flag,
    /// The output is withheld (`output_blocked`); the record lists them.
    Block,
}

impl GuardMode {
    /// The product name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardMode::Off => "off",
            GuardMode::Flag => "flag",
            GuardMode::Block => "block",
        }
    }
}

/// A tenant-defined detector: a named regular expression (linear-time
/// engine, size-capped when compiled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct GuardPattern {
    /// The name findings of it carry (`[a-z0-9_]`, up to 64 bytes).
    pub name: String,
    /// The expression.
    pub regex: String,
}

/// A tenant's output-guard settings. A function's manifest may lower or
/// raise the mode for that function (it is approved with it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct GuardSettings {
    /// The tenant's mode (default `flag`).
    #[serde(default)]
    pub mode: GuardMode,
    /// The tenant's own detectors.
    #[serde(default)]
    pub patterns: Vec<GuardPattern>,
}

/// A kind of sensitive value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A US social security number.
    Ssn,
    /// A payment card number (Luhn-checked).
    PaymentCard,
    /// An IBAN (mod-97 checked).
    Iban,
    /// A credential: a known key prefix, a PEM private key or a JWT.
    Credential,
    /// A match of one of the tenant's patterns.
    Pattern,
}

impl FindingKind {
    /// The product name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Ssn => "ssn",
            FindingKind::PaymentCard => "payment_card",
            FindingKind::Iban => "iban",
            FindingKind::Credential => "credential",
            FindingKind::Pattern => "pattern",
        }
    }
}

/// One finding: its kind and where in the output, never the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// Where: a JSON pointer (RFC 6901) into the output; `""` is the root.
    pub path: String,
    /// For `pattern`: the tenant pattern's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// A tenant's settings, changed by its admin; each change is a registry
/// action and takes effect at the next call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct TenantSettings {
    /// `allowlist` (the default) or `open`.
    #[serde(default)]
    pub mode: TenantMode,
    /// The tenant's budgets, over all its agents together.
    #[serde(default, skip_serializing_if = "Budget::is_unlimited")]
    pub budget: Budget,
    /// The output guard.
    #[serde(default)]
    pub output_guard: GuardSettings,
}
