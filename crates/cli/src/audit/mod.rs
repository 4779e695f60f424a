//! `aifn audit`: query, export, verify, checkpoint and prune the audit log.
//! `list` and `export` work on a data dir (`--data-dir`, as the operator)
//! or through the server (an admin's or approver's key); `verify`,
//! `checkpoint` and `prune` are operator commands on the data dir.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aifn_service::{AuditPage, AuditQuery, AuditStream, LocalAdmin, SecurityQuery};
use aifn_types::{DatabaseUrl, OutcomeKind, TenantId, Timestamp};
use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::client::Conn;
use crate::output::{self, err, out};
use crate::{Exit, keys};

mod print;

use print::{every_page, print_lines, print_page, word};

#[derive(clap::Args, Clone)]
pub(crate) struct Filters {
    /// Only this function.
    #[arg(long)]
    function: Option<String>,
    /// Only this agent.
    #[arg(long)]
    agent: Option<String>,
    /// Only this end user.
    #[arg(long)]
    user: Option<String>,
    /// Only this outcome kind.
    #[arg(long)]
    outcome: Option<OutcomeKind>,
    /// `execution` or `registry`.
    #[arg(long)]
    stream: Option<String>,
    /// From this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
}

/// Where `list` and `export` read records: the server (the key's tenant),
/// or, for an operator, the data dir itself.
#[derive(clap::Args)]
pub(crate) struct Source {
    /// Read the data dir directly (operator) instead of the server.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// With --data-dir: the fleet's PostgreSQL database (default:
    /// $AIFN_DATABASE_URL).
    #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
    database: Option<DatabaseUrl>,
    /// The tenant, with --data-dir (through the server it is the key's).
    #[arg(long)]
    tenant: Option<TenantId>,
    /// The host-level security and system streams (with --data-dir).
    #[arg(long)]
    security: bool,
}

#[derive(clap::Subcommand)]
pub(crate) enum AuditCommand {
    /// Records newest first, a page at a time.
    List {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        filters: Filters,
        /// Page size (max 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Records before this seq (the next page's cursor).
        #[arg(long)]
        before_seq: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Every matching record as JSON lines, oldest first.
    Export {
        #[command(flatten)]
        source: Source,
        /// Only `jsonl`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        conn: Conn,
    },
    /// Recompute the hash chain and the signed checkpoints; exit 1 and name
    /// the first bad record if anything was edited, deleted, reordered or
    /// truncated.
    Verify {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
        /// The fleet's PostgreSQL database (default: $AIFN_DATABASE_URL;
        /// none: the SQLite files in the data dir).
        #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
        database: Option<DatabaseUrl>,
        /// The checkpoint signing key file, if kept outside the data dir
        /// (default: $AIFN_AUDIT_SIGNING_KEY, as for every local command).
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// The expected Ed25519 public key (hex), kept apart from the data:
        /// the strongest check.
        #[arg(long)]
        public_key: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write an evidence bundle about an execution or a function: one file
    /// anyone can verify offline (through the server: approver or admin).
    Bundle(crate::bundle::BundleArgs),
    /// Check an evidence bundle offline: every hash link, the checkpoint
    /// signatures, the modules; exit 1 with the finding if anything was
    /// changed.
    VerifyBundle(crate::bundle::VerifyArgs),
    /// Sign a checkpoint of the chain head now.
    Checkpoint {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
        /// The fleet's PostgreSQL database (default: $AIFN_DATABASE_URL;
        /// none: the SQLite files in the data dir).
        #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
        database: Option<DatabaseUrl>,
    },
    /// Delete records older than N days (the pruning is recorded).
    Prune {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
        /// The fleet's PostgreSQL database (default: $AIFN_DATABASE_URL;
        /// none: the SQLite files in the data dir).
        #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
        database: Option<DatabaseUrl>,
        /// Age in days.
        #[arg(long)]
        older_than_days: u32,
    },
}

fn parse_time(s: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse(s).with_context(|| format!("{s} is not an RFC 3339 time"))
}

fn query(f: &Filters) -> anyhow::Result<AuditQuery> {
    let stream = match f.stream.as_deref() {
        None => None,
        Some("execution") => Some(AuditStream::Execution),
        Some("registry") => Some(AuditStream::Registry),
        Some(s) => bail!("unknown stream {s}: use execution or registry"),
    };
    Ok(AuditQuery {
        stream,
        function: f.function.clone(),
        agent_id: f.agent.clone(),
        user_id: f.user.clone(),
        outcome: f.outcome,
        since: f.since.as_deref().map(parse_time).transpose()?,
        until: f.until.as_deref().map(parse_time).transpose()?,
        before_seq: None,
        limit: None,
    })
}

fn http_params(f: &Filters, limit: usize, before: Option<u64>) -> String {
    let mut p = vec![format!("limit={limit}")];
    let mut push = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            p.push(format!("{k}={}", encode(v)));
        }
    };
    push("function", &f.function);
    push("agent_id", &f.agent);
    push("user_id", &f.user);
    push("outcome", &f.outcome.map(|o| o.to_string()));
    push("stream", &f.stream);
    push("since", &f.since);
    push("until", &f.until);
    if let Some(b) = before {
        p.push(format!("before_seq={b}"));
    }
    p.join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A local page of the security streams.
fn security_page(
    admin: &LocalAdmin,
    before_seq: Option<u64>,
    limit: usize,
) -> anyhow::Result<(AuditPage, Value)> {
    let q = SecurityQuery {
        before_seq,
        limit: Some(limit),
        ..Default::default()
    };
    let page = admin.security_query(&q)?;
    let raw = serde_json::to_value(&page)?;
    Ok((page, raw))
}

/// A page of the caller's tenant through the server.
fn http_page(
    conn: &Conn,
    filters: &Filters,
    limit: usize,
    before_seq: Option<u64>,
) -> anyhow::Result<Option<(AuditPage, Value)>> {
    let path = format!("/v1/audit?{}", http_params(filters, limit, before_seq));
    Ok(conn.get_as::<AuditPage>(&path)?.map(|r| (r.value, r.raw)))
}

pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<Exit> {
    match cmd {
        AuditCommand::List {
            source:
                Source {
                    data_dir: Some(dir),
                    database,
                    tenant,
                    security,
                },
            filters,
            limit,
            before_seq,
            conn,
        } => {
            let admin = keys::open(dir, database)?;
            let (page, raw) = if security {
                security_page(&admin, before_seq, limit)?
            } else {
                let tenant = tenant.context("--tenant is required with --data-dir")?;
                let mut q = query(&filters)?;
                q.before_seq = before_seq;
                q.limit = Some(limit);
                let page = admin.audit_query(&tenant, &q)?;
                let raw = serde_json::to_value(&page)?;
                (page, raw)
            };
            admin.close()?;
            print_page(&page, conn.json_output(), &raw);
            Ok(Exit::Ok)
        }
        AuditCommand::List {
            source:
                Source {
                    security: true,
                    data_dir: None,
                    ..
                },
            ..
        }
        | AuditCommand::Export {
            source:
                Source {
                    security: true,
                    data_dir: None,
                    ..
                },
            ..
        } => {
            bail!("--security needs --data-dir: the host-level streams are the operator's")
        }
        AuditCommand::List {
            source: Source { data_dir: None, .. },
            filters,
            limit,
            before_seq,
            conn,
            ..
        } => {
            let Some((page, raw)) = http_page(&conn, &filters, limit, before_seq)? else {
                return Ok(Exit::Failed);
            };
            print_page(&page, conn.json_output(), &raw);
            Ok(Exit::Ok)
        }
        AuditCommand::Export { format, .. } if format != "jsonl" => {
            bail!("unknown format {format}: only jsonl")
        }
        AuditCommand::Export {
            source:
                Source {
                    data_dir: Some(dir),
                    database,
                    security: true,
                    ..
                },
            ..
        } => {
            let admin = keys::open(dir, database)?;
            let all = every_page(|before| security_page(&admin, before, 1000).map(Some));
            admin.close()?;
            print_lines(&all?.unwrap_or_default());
            Ok(Exit::Ok)
        }
        AuditCommand::Export {
            source:
                Source {
                    data_dir: Some(dir),
                    database,
                    tenant,
                    ..
                },
            filters,
            ..
        } => {
            let tenant = tenant.context("--tenant is required with --data-dir")?;
            let admin = keys::open(dir, database)?;
            let n = admin.export(&tenant, &query(&filters)?, &mut output::Stdout);
            admin.close()?;
            err!("exported {} records", n?);
            Ok(Exit::Ok)
        }
        AuditCommand::Export {
            source: Source { data_dir: None, .. },
            filters,
            conn,
            ..
        } => match every_page(|before| http_page(&conn, &filters, 1000, before))? {
            Some(all) => {
                print_lines(&all);
                Ok(Exit::Ok)
            }
            None => Ok(Exit::Failed),
        },
        AuditCommand::Verify {
            data_dir,
            database,
            signing_key,
            public_key,
            json,
        } => {
            let mut dir = keys::data_dir(data_dir, database);
            if let Some(k) = signing_key {
                dir.signing_key = k;
            }
            let key = crate::bundle::public_key(public_key.as_deref())?;
            let report = aifn_service::verify_audit(&dir, key.as_ref())?;
            if json {
                output::json(&serde_json::to_value(&report)?);
            } else {
                out!(
                    "{} records (seq {}..{}), {} checkpoints (signed through seq {}), key: {}",
                    report.records,
                    report.first_seq.map_or("-".into(), |s| s.to_string()),
                    report.last_seq.map_or("-".into(), |s| s.to_string()),
                    report.checkpoints,
                    report
                        .checkpointed_seq
                        .map_or("-".into(), |s| s.to_string()),
                    word(report.key_source)
                );
                match &report.finding {
                    None => out!("ok: the audit log verifies"),
                    Some(f) => out!("FAILED: {f}"),
                }
            }
            Ok(if report.is_ok() {
                Exit::Ok
            } else {
                Exit::Failed
            })
        }
        AuditCommand::Bundle(args) => crate::bundle::bundle(args),
        AuditCommand::VerifyBundle(args) => crate::bundle::verify(args),
        AuditCommand::Checkpoint { data_dir, database } => {
            let admin = keys::open(data_dir, database)?;
            let c = admin.checkpoint()?;
            admin.close()?;
            out!(
                "checkpoint seq {} hash {} signed by {}",
                c.seq,
                c.hash,
                c.public_key
            );
            Ok(Exit::Ok)
        }
        AuditCommand::Prune {
            data_dir,
            database,
            older_than_days,
        } => {
            let admin = keys::open(data_dir, database)?;
            let cutoff =
                SystemTime::now() - Duration::from_secs(u64::from(older_than_days) * 86_400);
            let r = admin.prune(cutoff, keys::local_actor().as_str())?;
            admin.close()?;
            out!(
                "pruned {} records (anchor seq {}), {} captured payloads expired",
                r.pruned,
                r.anchor_seq,
                r.captures_expired
            );
            Ok(Exit::Ok)
        }
    }
}
