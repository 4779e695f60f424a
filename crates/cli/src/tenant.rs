//! `aifn tenant`: the tenant's settings: its mode (`allowlist`, or `open`
//! for development), its budget over all agents, and the output guard.
//! Any role but agent reads them; the admin changes them.

use aifn_service::{TenantInfo, TenantModeBody};
use aifn_types::{Budget, GuardMode, GuardPattern, GuardSettings, TenantMode};
use anyhow::bail;

use crate::Exit;
use crate::client::Conn;
use crate::output::out;
use crate::policy::budget_text;

#[derive(clap::Subcommand)]
pub(crate) enum TenantCommand {
    /// Show the tenant's settings.
    Show {
        #[command(flatten)]
        conn: Conn,
    },
    /// Set the mode (admin): allowlist, or open (every agent may invoke
    /// every active function; for development only).
    Mode {
        /// allowlist or open.
        mode: TenantMode,
        #[command(flatten)]
        conn: Conn,
    },
    /// Set the tenant's budget over all its agents (admin); no flag
    /// removes it.
    Budget {
        /// Fuel all calls of the tenant may use per hour.
        #[arg(long)]
        fuel_per_hour: Option<u64>,
        /// Calls the tenant may make per hour.
        #[arg(long)]
        calls_per_hour: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Set the output guard (admin): off, flag or block, with the tenant's
    /// own patterns.
    Guard {
        /// off, flag or block.
        mode: Mode,
        /// A tenant pattern, NAME=REGEX (repeatable; replaces the list).
        #[arg(long = "pattern")]
        patterns: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

/// The output guard's mode on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Mode {
    /// No scan.
    Off,
    /// Answer, and record the findings' kinds and paths.
    Flag,
    /// Withhold the output (`output_blocked`).
    Block,
}

impl From<Mode> for GuardMode {
    fn from(m: Mode) -> GuardMode {
        match m {
            Mode::Off => GuardMode::Off,
            Mode::Flag => GuardMode::Flag,
            Mode::Block => GuardMode::Block,
        }
    }
}

pub(crate) fn run(cmd: TenantCommand) -> anyhow::Result<Exit> {
    match cmd {
        TenantCommand::Show { conn } => {
            let Some(reply) = conn.get_as::<TenantInfo>("/v1/tenant")? else {
                return Ok(Exit::Failed);
            };
            answer(&conn, reply)
        }
        TenantCommand::Mode { mode, conn } => {
            let body = TenantModeBody { mode };
            let Some(reply) = conn.put_as::<TenantInfo>("/v1/tenant/mode", &body)? else {
                return Ok(Exit::Failed);
            };
            answer(&conn, reply)
        }
        TenantCommand::Budget {
            fuel_per_hour,
            calls_per_hour,
            conn,
        } => {
            let body = Budget {
                fuel_per_hour,
                calls_per_hour,
            };
            let Some(reply) = conn.put_as::<TenantInfo>("/v1/tenant/budget", &body)? else {
                return Ok(Exit::Failed);
            };
            answer(&conn, reply)
        }
        TenantCommand::Guard {
            mode,
            patterns,
            conn,
        } => {
            let body = GuardSettings {
                mode: mode.into(),
                patterns: patterns
                    .iter()
                    .map(|p| pattern(p))
                    .collect::<anyhow::Result<_>>()?,
            };
            let Some(reply) = conn.put_as::<TenantInfo>("/v1/tenant/output-guard", &body)? else {
                return Ok(Exit::Failed);
            };
            answer(&conn, reply)
        }
    }
}

/// `NAME=REGEX` (the regex may itself hold `=`).
fn pattern(s: &str) -> anyhow::Result<GuardPattern> {
    match s.split_once('=') {
        Some((name, regex)) if !name.is_empty() && !regex.is_empty() => Ok(GuardPattern {
            name: name.to_owned(),
            regex: regex.to_owned(),
        }),
        _ => bail!("--pattern {s}: write NAME=REGEX, e.g. employee_id=E[0-9]{{6}}"),
    }
}

fn answer(conn: &Conn, reply: crate::client::Typed<TenantInfo>) -> anyhow::Result<Exit> {
    if conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let t = &reply.value;
    let s = &t.settings;
    out!("tenant {} (settings v{})", t.tenant_id, t.version);
    match s.mode {
        TenantMode::Open => out!(
            "mode          open: every agent may invoke every active function (development only)"
        ),
        TenantMode::Allowlist => {
            out!("mode          allowlist: each agent invokes only what its policy allows")
        }
    }
    out!("budget        {}", budget_text(&s.budget));
    out!("output guard  {}", s.output_guard.mode.as_str());
    for p in &s.output_guard.patterns {
        out!("  pattern {} = {}", p.name, p.regex);
    }
    if let (Some(at), Some(by)) = (&t.updated_at, &t.updated_by) {
        out!("changed {at} by {by}");
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_name_equals_regex() {
        let p = pattern("key=a=b").expect("parses");
        assert_eq!((p.name.as_str(), p.regex.as_str()), ("key", "a=b"));
        for bad in ["noequals", "=x", "x="] {
            assert!(pattern(bad).is_err(), "{bad} accepted");
        }
    }
}
