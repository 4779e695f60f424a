//! Agent policies: what an agent may invoke, with which lowered limits and
//! within which budgets, and the decision the gateway makes before a call.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{FunctionName, NameError};

/// How a tenant admits its agents' calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", expecting = "allowlist or open")]
pub enum TenantMode {
    /// Production: an agent may invoke only what its policy allows.
    #[default]
    Allowlist,
    /// Development only: every agent may invoke every active function.
    Open,
}

impl TenantMode {
    /// The product name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantMode::Allowlist => "allowlist",
            TenantMode::Open => "open",
        }
    }
}

impl fmt::Display for TenantMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TenantMode {
    type Err = NameError;
    fn from_str(s: &str) -> Result<TenantMode, NameError> {
        match s {
            "allowlist" => Ok(TenantMode::Allowlist),
            "open" => Ok(TenantMode::Open),
            _ => Err(NameError {
                what: "tenant mode",
                reason: "must be allowlist or open",
            }),
        }
    }
}

/// A function name, or a prefix of names ending in `*` (`payroll_*`; `*`
/// alone matches every function).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionPattern(String);

impl FunctionPattern {
    /// Validates a pattern: a valid function name, or a prefix of one
    /// followed by a single trailing `*`.
    pub fn new(s: impl Into<String>) -> Result<FunctionPattern, NameError> {
        let s = s.into();
        let bad = NameError {
            what: "function pattern",
            reason: "must be a function name, or a prefix of one ending in '*'",
        };
        match s.strip_suffix('*') {
            Some("") => {}
            Some(prefix) => {
                // A prefix must itself be a valid start of a name.
                if prefix.contains('*') || FunctionName::new(prefix).is_err() {
                    return Err(bad);
                }
            }
            None => {
                FunctionName::new(s.as_str())?;
            }
        }
        Ok(FunctionPattern(s))
    }

    /// Whether `name` is this name, or starts with this prefix.
    pub fn matches(&self, name: &FunctionName) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.as_str().starts_with(prefix),
            None => self.0 == name.as_str(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FunctionPattern {
    type Error = NameError;
    fn try_from(s: String) -> Result<FunctionPattern, NameError> {
        FunctionPattern::new(s)
    }
}

impl From<FunctionPattern> for String {
    fn from(p: FunctionPattern) -> String {
        p.0
    }
}

impl fmt::Display for FunctionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Limits a policy lowers for one function (never raises: the call runs
/// under the smaller of these and the function's own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct FunctionLimits {
    /// Fuel per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock deadline per call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Linear memory per call, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

/// Budgets over a fixed one-hour window (see the service's budget module).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct Budget {
    /// Fuel all calls in the window may use together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_per_hour: Option<u64>,
    /// Calls the window admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_hour: Option<u64>,
}

impl Budget {
    /// True when no budget is set.
    pub fn is_unlimited(&self) -> bool {
        self.fuel_per_hour.is_none() && self.calls_per_hour.is_none()
    }
}

/// One agent's policy in its tenant. Deny wins over allow; an agent with
/// no policy may invoke nothing unless its tenant is `open`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct AgentPolicy {
    /// The functions the agent may invoke.
    #[serde(default)]
    pub allow: Vec<FunctionPattern>,
    /// The functions it may not, whatever `allow` says.
    #[serde(default)]
    pub deny: Vec<FunctionPattern>,
    /// Lowered limits per function, by exact name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<FunctionName, FunctionLimits>,
    /// The agent's budgets.
    #[serde(default, skip_serializing_if = "Budget::is_unlimited")]
    pub budget: Budget,
}

impl AgentPolicy {
    /// What this policy says of `function`, budgets aside.
    pub fn admits(&self, function: &FunctionName) -> Result<(), RejectReason> {
        if self.deny.iter().any(|p| p.matches(function)) {
            return Err(RejectReason::Denied);
        }
        if self.allow.iter().any(|p| p.matches(function)) {
            return Ok(());
        }
        Err(RejectReason::NotAllowed)
    }
}

/// The gateway's decision on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyDecision {
    /// The call may run.
    Allow,
    /// The call is refused before anything runs.
    Reject,
}

/// Why a call was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// No policy, or the policy's allowlist does not name the function.
    NotAllowed,
    /// The policy's deny list names the function.
    Denied,
    /// A fuel or call budget of the agent or the tenant is used up.
    BudgetExhausted,
}

impl RejectReason {
    /// The product name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NotAllowed => "not_allowed",
            RejectReason::Denied => "denied",
            RejectReason::BudgetExhausted => "budget_exhausted",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What made an allowed call allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedBy {
    /// The agent's policy.
    Policy,
    /// The tenant's `open` mode (development only).
    OpenMode,
}

/// The decision as every invocation record carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// `allow` or `reject`.
    pub decision: PolicyDecision,
    /// Why, for `reject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// For `allow`: the policy or the tenant's open mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<AllowedBy>,
    /// The version of the agent's policy that decided (none without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
}

/// In a few words: `allow policy v3`, `allow open_mode`,
/// `reject not_allowed policy v2`.
impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.decision {
            PolicyDecision::Allow => "allow",
            PolicyDecision::Reject => "reject",
        })?;
        if let Some(reason) = self.reason {
            write!(f, " {reason}")?;
        }
        if self.allowed_by == Some(AllowedBy::OpenMode) {
            f.write_str(" open_mode")?;
        }
        if let Some(v) = self.policy_version {
            write!(f, " policy v{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> FunctionName {
        FunctionName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn pat(s: &str) -> FunctionPattern {
        FunctionPattern::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn patterns_match_exact_names_and_prefixes() {
        assert!(pat("leave_days").matches(&name("leave_days")));
        assert!(!pat("leave_days").matches(&name("leave_days_v2")));
        assert!(pat("leave_*").matches(&name("leave_days")));
        assert!(!pat("leave_*").matches(&name("invoice_total")));
        assert!(pat("*").matches(&name("anything")));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "a*b", "**", "Bad Name", "lea*ve*"] {
            assert!(FunctionPattern::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn deny_wins_over_allow_and_nothing_is_allowed_by_default() {
        let p = AgentPolicy {
            allow: vec![pat("payroll_*")],
            deny: vec![pat("payroll_export")],
            ..AgentPolicy::default()
        };
        assert_eq!(p.admits(&name("payroll_sum")), Ok(()));
        assert_eq!(p.admits(&name("payroll_export")), Err(RejectReason::Denied));
        assert_eq!(p.admits(&name("leave_days")), Err(RejectReason::NotAllowed));
        assert_eq!(
            AgentPolicy::default().admits(&name("leave_days")),
            Err(RejectReason::NotAllowed)
        );
    }

    #[test]
    fn a_policy_round_trips_and_refuses_unknown_fields() {
        let p: AgentPolicy = serde_json::from_str(
            r#"{"allow":["a","b_*"],"deny":["b_x"],"limits":{"a":{"fuel":10}},"budget":{"calls_per_hour":5}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.limits[&name("a")].fuel, Some(10));
        let back: AgentPolicy =
            serde_json::from_value(serde_json::to_value(&p).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, p);
        assert!(serde_json::from_str::<AgentPolicy>(r#"{"allow":[],"alow":[]}"#).is_err());
    }

    #[test]
    fn an_admission_reads_as_a_few_words() {
        let a = Admission {
            decision: PolicyDecision::Reject,
            reason: Some(RejectReason::Denied),
            allowed_by: None,
            policy_version: Some(2),
        };
        assert_eq!(a.to_string(), "reject denied policy v2");
        let open = Admission {
            decision: PolicyDecision::Allow,
            reason: None,
            allowed_by: Some(AllowedBy::OpenMode),
            policy_version: None,
        };
        assert_eq!(open.to_string(), "allow open_mode");
    }

    #[test]
    fn errors_name_no_rust_types() {
        let messages = [
            serde_json::from_str::<AgentPolicy>("7").map(drop),
            serde_json::from_str::<TenantMode>("7").map(drop),
            serde_json::from_str::<crate::GuardSettings>("{\"mode\":7}").map(drop),
        ];
        for m in messages {
            let msg = m.expect_err("refused").to_string();
            assert!(!msg.contains("enum ") && !msg.contains("struct "), "{msg}");
        }
    }
}
