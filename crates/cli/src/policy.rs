//! `aifn policy`: what each agent of the tenant may invoke (admin sets and
//! deletes; approvers and authors read), and its budget usage this hour.

use std::path::PathBuf;

use aifn_service::{AgentList, PolicyInfo, Usage, WindowUsage};
use aifn_types::{AgentPolicy, Budget, FunctionPattern};
use anyhow::Context as _;

use crate::client::Conn;
use crate::output::{self, out};
use crate::{Exit, policy_file};

#[derive(clap::Subcommand)]
pub(crate) enum PolicyCommand {
    /// List the tenant's agents and their policy versions.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show an agent's policy.
    Show {
        /// The agent's subject.
        agent: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Set an agent's policy (admin): from flags, or from a policy file.
    Set(SetArgs),
    /// Delete an agent's policy (admin): it invokes nothing again.
    Delete {
        /// The agent's subject.
        agent: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// The agent's and the tenant's budget usage this hour (admin).
    Usage {
        /// The agent's subject.
        agent: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(clap::Args)]
pub(crate) struct SetArgs {
    /// The agent's subject.
    agent: String,
    /// Functions it may invoke: names, or prefixes ending in `*`.
    #[arg(long, value_delimiter = ',', required_unless_present = "file")]
    allow: Vec<String>,
    /// Functions it may not invoke, whatever --allow says.
    #[arg(long, value_delimiter = ',', conflicts_with = "file")]
    deny: Vec<String>,
    /// Fuel all its calls may use per hour.
    #[arg(long, conflicts_with = "file")]
    fuel_per_hour: Option<u64>,
    /// Calls it may make per hour.
    #[arg(long, conflicts_with = "file")]
    calls_per_hour: Option<u64>,
    /// A policy file (TOML: allow, deny, [limits.NAME], [budget]; see
    /// docs/operations.md).
    #[arg(long, conflicts_with = "allow")]
    file: Option<PathBuf>,
    #[command(flatten)]
    conn: Conn,
}

pub(crate) fn run(cmd: PolicyCommand) -> anyhow::Result<Exit> {
    match cmd {
        PolicyCommand::List { conn } => list(&conn),
        PolicyCommand::Show { agent, conn } => show(&conn, &agent),
        PolicyCommand::Set(args) => set(args),
        PolicyCommand::Delete { agent, conn } => delete(&conn, &agent),
        PolicyCommand::Usage { agent, conn } => usage(&conn, &agent),
    }
}

fn path(agent: &str, what: &str) -> String {
    format!("/v1/agents/{}/{what}", crate::client::path_segment(agent))
}

fn list(conn: &Conn) -> anyhow::Result<Exit> {
    let Some(reply) = conn.get_as::<AgentList>("/v1/agents")? else {
        return Ok(Exit::Failed);
    };
    if conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let rows = reply
        .value
        .agents
        .iter()
        .map(|a| {
            vec![
                a.subject.to_string(),
                a.active_keys.to_string(),
                a.policy_version
                    .map_or("none (invokes nothing)".into(), |v| format!("v{v}")),
            ]
        })
        .collect();
    output::table(&["AGENT", "KEYS", "POLICY"], rows);
    Ok(Exit::Ok)
}

fn patterns(list: &[FunctionPattern]) -> String {
    if list.is_empty() {
        return "(none)".into();
    }
    list.iter()
        .map(FunctionPattern::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn budget_text(b: &Budget) -> String {
    let mut parts = Vec::new();
    if let Some(c) = b.calls_per_hour {
        parts.push(format!("{c} calls/hour"));
    }
    if let Some(f) = b.fuel_per_hour {
        parts.push(format!("{f} fuel/hour"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn print_policy(info: &PolicyInfo) {
    let p = &info.policy;
    out!(
        "agent {}: policy v{} (set {} by {})",
        info.subject,
        info.version,
        info.updated_at,
        info.updated_by
    );
    out!("allow   {}", patterns(&p.allow));
    out!("deny    {}", patterns(&p.deny));
    for (name, l) in &p.limits {
        let mut parts = Vec::new();
        if let Some(f) = l.fuel {
            parts.push(format!("fuel {f}"));
        }
        if let Some(t) = l.timeout_ms {
            parts.push(format!("timeout {t} ms"));
        }
        if let Some(m) = l.memory_bytes {
            parts.push(format!("memory {m} bytes"));
        }
        out!("limits  {name}: {}", parts.join(", "));
    }
    out!("budget  {}", budget_text(&p.budget));
}

fn show(conn: &Conn, agent: &str) -> anyhow::Result<Exit> {
    let Some(reply) = conn.get_as::<PolicyInfo>(&path(agent, "policy"))? else {
        return Ok(Exit::Failed);
    };
    if !conn.print_raw(&reply) {
        print_policy(&reply.value);
    }
    Ok(Exit::Ok)
}

/// The policy the flags describe.
fn from_flags(args: &SetArgs) -> anyhow::Result<AgentPolicy> {
    let parse = |list: &[String], flag: &str| -> anyhow::Result<Vec<FunctionPattern>> {
        list.iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| FunctionPattern::new(s.trim()).with_context(|| format!("--{flag} {s}")))
            .collect()
    };
    Ok(AgentPolicy {
        allow: parse(&args.allow, "allow")?,
        deny: parse(&args.deny, "deny")?,
        limits: Default::default(),
        budget: Budget {
            fuel_per_hour: args.fuel_per_hour,
            calls_per_hour: args.calls_per_hour,
        },
    })
}

fn set(args: SetArgs) -> anyhow::Result<Exit> {
    let policy = match &args.file {
        Some(f) => policy_file::read(f)?,
        None => from_flags(&args)?,
    };
    let conn = &args.conn;
    let Some(reply) = conn.put_as::<PolicyInfo>(&path(&args.agent, "policy"), &policy)? else {
        return Ok(Exit::Failed);
    };
    if !conn.print_raw(&reply) {
        print_policy(&reply.value);
    }
    Ok(Exit::Ok)
}

fn delete(conn: &Conn, agent: &str) -> anyhow::Result<Exit> {
    if !conn.delete_ok(&path(agent, "policy"))? {
        return Ok(Exit::Failed);
    }
    if conn.json_output() {
        output::json(&serde_json::json!({"deleted": agent}));
    } else {
        out!("policy of {agent} deleted: it invokes nothing unless the tenant is open");
    }
    Ok(Exit::Ok)
}

fn used(of: Option<u64>, n: u64) -> String {
    match of {
        Some(b) => format!("{n} of {b}"),
        None => format!("{n} (no budget)"),
    }
}

fn usage(conn: &Conn, agent: &str) -> anyhow::Result<Exit> {
    let Some(reply) = conn.get_as::<Usage>(&path(agent, "usage"))? else {
        return Ok(Exit::Failed);
    };
    if conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let u = &reply.value;
    out!(
        "window {} to {} (fixed UTC hour, this node)",
        u.window_start,
        u.window_end
    );
    let row = |scope: String, w: &WindowUsage| {
        vec![
            scope,
            used(w.budget.calls_per_hour, w.calls),
            used(w.budget.fuel_per_hour, w.fuel),
        ]
    };
    output::table(
        &["SCOPE", "CALLS", "FUEL"],
        vec![
            row(format!("agent {}", u.subject), &u.agent),
            row("tenant".into(), &u.tenant),
        ],
    );
    Ok(Exit::Ok)
}
