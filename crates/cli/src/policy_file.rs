//! The policy file (TOML) an admin gives `aifn policy set --file`: the
//! [`AgentPolicy`] with memory in MiB if preferred. Read here so that its
//! errors point into the admin's file (`FILE:LINE:COLUMN`), never into the
//! JSON request the CLI builds.

use std::collections::BTreeMap;
use std::path::Path;

use aifn_types::{AgentPolicy, Budget, FunctionLimits, FunctionName, FunctionPattern};
use anyhow::Context as _;
use serde::Deserialize;

use crate::manifest::position;

/// The file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow: Vec<FunctionPattern>,
    #[serde(default)]
    deny: Vec<FunctionPattern>,
    #[serde(default)]
    limits: BTreeMap<FunctionName, toml::Spanned<LimitsFile>>,
    #[serde(default)]
    budget: Budget,
}

/// `[limits.NAME]`: memory in MiB (people) or bytes (scripts), not both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mib: Option<u64>,
    memory_bytes: Option<u64>,
}

/// Parses a policy file's text; `path` names it in errors.
pub(crate) fn parse(path: &Path, text: &str) -> anyhow::Result<AgentPolicy> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or_else(
            || path.display().to_string(),
            |s| position(path, text, s.start),
        );
        anyhow::anyhow!("{at}: {}", e.message().trim_end())
    })?;
    let mut limits = BTreeMap::new();
    for (name, spanned) in file.limits {
        let at = position(path, text, spanned.span().start);
        let l = spanned.into_inner();
        let memory_bytes = match (l.memory_mib, l.memory_bytes) {
            (Some(_), Some(_)) => {
                anyhow::bail!("{at}: give memory_mib or memory_bytes, not both")
            }
            (Some(mib), None) => Some(
                mib.checked_mul(1 << 20)
                    .with_context(|| format!("{at}: memory_mib {mib} is too large"))?,
            ),
            (None, bytes) => bytes,
        };
        limits.insert(
            name,
            FunctionLimits {
                fuel: l.fuel,
                timeout_ms: l.timeout_ms,
                memory_bytes,
            },
        );
    }
    Ok(AgentPolicy {
        allow: file.allow,
        deny: file.deny,
        limits,
        budget: file.budget,
    })
}

/// Reads and parses a policy file.
pub(crate) fn read(path: &Path) -> anyhow::Result<AgentPolicy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        format!(
            "{:#}",
            parse(Path::new("dir/p.toml"), text).expect_err("refused")
        )
    }

    #[test]
    fn a_complete_policy_parses_with_memory_in_mib() {
        let p = parse(
            Path::new("p.toml"),
            "allow = [\"leave_*\", \"echo\"]\ndeny = [\"leave_export\"]\n\
             [limits.echo]\nfuel = 1000\ntimeout_ms = 200\nmemory_mib = 16\n\
             [budget]\ncalls_per_hour = 100\n",
        )
        .expect("parses");
        assert_eq!(p.allow.len(), 2);
        assert_eq!(p.deny[0].as_str(), "leave_export");
        let echo = p.limits[&FunctionName::new("echo").expect("name")];
        assert_eq!(echo.memory_bytes, Some(16 << 20));
        assert_eq!(echo.fuel, Some(1000));
        assert_eq!(p.budget.calls_per_hour, Some(100));
        assert_eq!(p.budget.fuel_per_hour, None);
    }

    /// The example in docs/operations.md (its second TOML block) parses.
    #[test]
    fn the_documented_policy_file_parses() {
        let doc = include_str!("../../../docs/operations.md");
        let block = doc
            .split("```toml\n")
            .nth(2)
            .and_then(|b| b.split("```").next())
            .expect("a second toml block");
        let p = parse(Path::new("operations.md"), block).expect("the documented policy parses");
        let leave = p.limits[&FunctionName::new("calculate_leave_days").expect("name")];
        assert_eq!(leave.memory_bytes, Some(16 << 20));
        assert_eq!(p.deny[0].as_str(), "leave_export");
        assert_eq!(p.budget.calls_per_hour, Some(1000));
    }

    #[test]
    fn errors_point_into_the_toml_file() {
        let e = parse_err("allow = [\"echo\"]\n[budget]\n  calls_per_hr = 3\n");
        assert!(e.starts_with("dir/p.toml:3:3: "), "{e}");
        assert!(e.contains("calls_per_hr"), "{e}");
        let e = parse_err("allow = [\"echo\", \"Bad Name\"]\n");
        assert!(e.starts_with("dir/p.toml:1:"), "{e}");
        assert!(e.contains("invalid function name"), "{e}");
        let e = parse_err("allow = []\n\n[limits.echo]\nmemory_mib = 1\nmemory_bytes = 5\n");
        assert!(e.starts_with("dir/p.toml:"), "{e}");
        assert!(e.contains("not both"), "{e}");
    }
}
