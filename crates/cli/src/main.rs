//! `aifn`: the one binary. Runs the service, administers keys and the audit
//! log on a data dir, is the client of the HTTP API, and runs a module
//! locally under the same sandbox (`aifn run`) for authors and scripts.
//!
//! Exit status everywhere: 0 success; 1 a refused or failed call (or a
//! function that failed or hit a limit); 2 a usage error or a module
//! refused before it ran.

mod approval;
mod audit;
mod bundle;
mod client;
mod diff;
mod functions;
mod invoke;
mod keys;
mod manifest;
mod mcp;
mod migrate;
mod output;
mod policy;
mod policy_file;
mod report;
mod run;
mod serve;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// aifn: a WebAssembly sandbox for user-authored AI functions.
#[derive(Parser)]
#[command(name = "aifn", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a module locally under the sandbox and print one JSON outcome.
    Run(run::RunArgs),
    /// Serve the HTTP API.
    Serve(serve::ServeArgs),
    /// Bring a fleet's PostgreSQL database to this release's schema
    /// (nodes also do it when they start).
    Migrate(migrate::MigrateArgs),
    /// Create, list and revoke API keys (on the data dir).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Query, export, verify, checkpoint and prune the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Upload a module as a new pending version (author).
    Upload {
        /// The function name.
        name: String,
        /// The module: a .wasm binary, or a .wat text file sent as the
        /// source the server builds and approvers read.
        module: PathBuf,
        /// The manifest (TOML: description, input_schema or input_schema_file,
        /// optional output_schema, [limits], [capture], [[tests]]). Default:
        /// MODULE.toml, aifn.toml beside the module, or ./aifn.toml.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Send a .wat file compiled, as module bytes, instead of as source.
        #[arg(long)]
        as_module: bool,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// List the tenant's functions.
    List {
        #[command(flatten)]
        conn: client::Conn,
    },
    /// List versions awaiting approval.
    Pending {
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Show a function, or one version's inspection report (NAME@VERSION),
    /// or with --diff what changed since the previous and the active version.
    Inspect {
        /// NAME or NAME@VERSION.
        target: String,
        /// Show what differs from the previous version and the active one
        /// (NAME@VERSION only).
        #[arg(long)]
        diff: bool,
        /// With --diff: compare against this version instead.
        #[arg(long, requires = "diff")]
        against: Option<u32>,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Approve NAME@VERSION (approver; never your own upload).
    Approve {
        #[command(flatten)]
        decision: Decision,
        /// Approve although a manifest test fails; the notes must say why,
        /// and the override is recorded in the audit log.
        #[arg(long)]
        override_failing_tests: bool,
    },
    /// Reject NAME@VERSION (approver).
    Reject(Decision),
    /// Revoke the active NAME@VERSION (approver).
    Revoke(Decision),
    /// Invoke a function's active version (agent).
    Invoke {
        /// The function name.
        name: String,
        #[command(flatten)]
        input: run::InputArgs,
        /// The end user you act for.
        #[arg(long, default_value = "")]
        user: String,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Run an input on NAME@VERSION, any state, pending included (the
    /// version's author or an approver); recorded as a test run, never as
    /// an agent's execution.
    Test(approval::TestArgs),
    /// Download the module bytes a version runs (or its source) to a file
    /// (author, approver, admin).
    Fetch(approval::FetchArgs),
    /// Run a recorded execution again with its captured input, context and
    /// start time, and say whether it reproduced (approver, admin).
    Replay(approval::ReplayArgs),
    /// Agent policies: what each agent may invoke, and its usage (admin
    /// sets; approvers and authors read).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The tenant's mode, budget and output guard (admin sets).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// A stdio MCP server forwarding to a remote aifn's /mcp (agent).
    Mcp(mcp::McpArgs),
    /// The functions this agent may invoke, as LLM tool definitions (agent).
    Tools {
        /// openai or anthropic.
        #[arg(long, default_value = "openai")]
        format: String,
        #[command(flatten)]
        conn: client::Conn,
    },
}

#[derive(clap::Args)]
struct Decision {
    /// NAME@VERSION.
    target: String,
    /// Why (required; kept in the audit log).
    #[arg(long)]
    notes: String,
    /// The sha256 you inspected (default: the one the server shows now).
    #[arg(long)]
    sha256: Option<String>,
    #[command(flatten)]
    conn: client::Conn,
}

/// How a command ended, mapped to the exit status.
pub(crate) enum Exit {
    /// 0
    Ok,
    /// 1: the call was refused or failed.
    Failed,
    /// 2: usage error, or a module refused before it ran.
    Usage,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        match e {
            Exit::Ok => ExitCode::SUCCESS,
            Exit::Failed => ExitCode::from(1),
            Exit::Usage => ExitCode::from(2),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Migrate(args) => migrate::migrate(args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Upload {
            name,
            module,
            manifest,
            as_module,
            conn,
        } => functions::upload(&conn, &name, &module, manifest, as_module),
        Command::List { conn } => functions::list(&conn),
        Command::Pending { conn } => functions::pending(&conn),
        Command::Inspect {
            target,
            diff: true,
            against,
            conn,
        } => diff::inspect_diff(&conn, &target, against),
        Command::Inspect { target, conn, .. } => functions::inspect(&conn, &target),
        Command::Approve {
            decision: d,
            override_failing_tests,
        } => functions::decide(
            &d.conn,
            functions::Action::Approve {
                override_failing_tests,
            },
            &d.target,
            &d.notes,
            d.sha256,
        ),
        Command::Reject(d) => functions::decide(
            &d.conn,
            functions::Action::Reject,
            &d.target,
            &d.notes,
            d.sha256,
        ),
        Command::Revoke(d) => functions::decide(
            &d.conn,
            functions::Action::Revoke,
            &d.target,
            &d.notes,
            d.sha256,
        ),
        Command::Test(args) => approval::test(&args),
        Command::Fetch(args) => approval::fetch(&args),
        Command::Replay(args) => approval::replay(&args),
        Command::Invoke {
            name,
            input,
            user,
            conn,
        } => invoke::invoke(
            &conn,
            &name,
            input.input.as_deref(),
            input.input_file.as_deref(),
            &user,
        ),
        Command::Tools { format, conn } => invoke::tools(&conn, &format),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Tenant(cmd) => tenant::run(cmd),
        Command::Mcp(args) => mcp::run(args),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            output::err!("aifn: {e:#}");
            // Network and server failures are failed calls; the rest are usage.
            if e.chain()
                .any(|c| c.is::<ureq::Error>() || c.is::<client::UnexpectedReply>())
            {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
