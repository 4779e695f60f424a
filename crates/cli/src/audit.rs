//! `aifn audit`: query, export, verify, checkpoint and prune the audit log.
//! `list` and `export` work on a data dir (`--data-dir`, as the operator)
//! or through the server (an admin's or approver's key); `verify`,
//! `checkpoint` and `prune` are operator commands on the data dir.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aifn_service::{AuditQuery, AuditStream};
use aifn_types::{OutcomeKind, TenantId};
use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::client::{Conn, failed};
use crate::{Exit, keys, output};

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

#[derive(clap::Subcommand)]
pub(crate) enum AuditCommand {
    /// Records newest first, a page at a time.
    List {
        /// Read the data dir directly (operator) instead of the server.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The tenant, with --data-dir (through the server it is the key's).
        #[arg(long)]
        tenant: Option<TenantId>,
        /// The host-level security and system streams (with --data-dir).
        #[arg(long)]
        security: bool,
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
        /// Data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The tenant, with --data-dir.
        #[arg(long)]
        tenant: Option<TenantId>,
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
    /// Sign a checkpoint of the chain head now.
    Checkpoint {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
    },
    /// Delete records older than N days (the pruning is recorded).
    Prune {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
        /// Age in days.
        #[arg(long)]
        older_than_days: u32,
    },
}

fn parse_time(s: &str) -> anyhow::Result<SystemTime> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{s} is not an RFC 3339 time"))?;
    Ok(SystemTime::from(t))
}

fn query(tenant: &TenantId, f: &Filters) -> anyhow::Result<AuditQuery> {
    let stream = match f.stream.as_deref() {
        None => None,
        Some("execution") => Some(AuditStream::Execution),
        Some("registry") => Some(AuditStream::Registry),
        Some(s) => bail!("unknown stream {s}: use execution or registry"),
    };
    Ok(AuditQuery {
        tenant_id: tenant.to_string(),
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

fn summary_row(e: &Value) -> Vec<String> {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
    let what = match e["stream"].as_str() {
        Some("execution") => format!(
            "{}{} {} by {} for {}",
            s("function"),
            e["version"]
                .as_u64()
                .map(|v| format!("@{v}"))
                .unwrap_or_default(),
            s("outcome"),
            s("agent_id"),
            s("user_id")
        ),
        Some("registry") => format!("{} {} by {}", s("action"), s("target"), s("actor")),
        Some("security") => format!("{} on {}", s("reason"), s("route")),
        _ => s("event"),
    };
    vec![e["seq"].to_string(), s("time"), s("stream"), what]
}

fn print_page(entries: &[Value], next: Option<u64>, json: bool, page: &Value) {
    if json {
        output::json(page);
        return;
    }
    output::table(
        &["SEQ", "TIME", "STREAM", "WHAT"],
        entries.iter().map(summary_row).collect(),
    );
    if let Some(n) = next {
        println!("more: --before-seq {n}");
    }
}

pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<Exit> {
    match cmd {
        AuditCommand::List {
            data_dir: Some(dir),
            tenant,
            security,
            filters,
            limit,
            before_seq,
            conn,
        } => {
            let admin = keys::open(dir)?;
            let page = if security {
                let q = aifn_service::SecurityQuery {
                    before_seq,
                    limit: Some(limit),
                    ..Default::default()
                };
                admin.security_query(&q)
            } else {
                let tenant = tenant.context("--tenant is required with --data-dir")?;
                let mut q = query(&tenant, &filters)?;
                q.before_seq = before_seq;
                q.limit = Some(limit);
                admin.audit_query(&q)
            }
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            admin.close().map_err(|e| anyhow::anyhow!("{e}"))?;
            let v = serde_json::to_value(&page)?;
            let entries: Vec<Value> = v["entries"].as_array().cloned().unwrap_or_default();
            print_page(&entries, page.next_before_seq, conn.json_output(), &v);
            Ok(Exit::Ok)
        }
        AuditCommand::List {
            data_dir: None,
            filters,
            limit,
            before_seq,
            conn,
            ..
        } => {
            let reply = conn.get(&format!(
                "/v1/audit?{}",
                http_params(&filters, limit, before_seq)
            ))?;
            if !(200..300).contains(&reply.status) {
                return Ok(failed(&reply, conn.json_output()));
            }
            let entries = reply.body["entries"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            print_page(
                &entries,
                reply.body["next_before_seq"].as_u64(),
                conn.json_output(),
                &reply.body,
            );
            Ok(Exit::Ok)
        }
        AuditCommand::Export { format, .. } if format != "jsonl" => {
            bail!("unknown format {format}: only jsonl")
        }
        AuditCommand::Export {
            data_dir: Some(dir),
            tenant,
            filters,
            ..
        } => {
            let tenant = tenant.context("--tenant is required with --data-dir")?;
            let admin = keys::open(dir)?;
            let mut out = std::io::stdout().lock();
            let n = admin
                .export(&query(&tenant, &filters)?, &mut out)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            admin.close().map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("exported {n} records");
            Ok(Exit::Ok)
        }
        AuditCommand::Export {
            data_dir: None,
            filters,
            conn,
            ..
        } => {
            // Page through the API newest first, then print oldest first.
            let mut all: Vec<Value> = Vec::new();
            let mut before = None;
            loop {
                let reply = conn.get(&format!(
                    "/v1/audit?{}",
                    http_params(&filters, 1000, before)
                ))?;
                if !(200..300).contains(&reply.status) {
                    return Ok(failed(&reply, conn.json_output()));
                }
                all.extend(
                    reply.body["entries"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                match reply.body["next_before_seq"].as_u64() {
                    Some(n) => before = Some(n),
                    None => break,
                }
            }
            for e in all.iter().rev() {
                println!("{e}");
            }
            eprintln!("exported {} records", all.len());
            Ok(Exit::Ok)
        }
        AuditCommand::Verify {
            data_dir,
            signing_key,
            public_key,
            json,
        } => {
            let mut dir = keys::data_dir(data_dir);
            if let Some(k) = signing_key {
                dir.signing_key = k;
            }
            let key = match public_key {
                Some(h) => {
                    let bytes = hex::decode(h.trim()).context("--public-key must be hex")?;
                    Some(
                        <[u8; 32]>::try_from(bytes.as_slice())
                            .map_err(|_| anyhow::anyhow!("--public-key must be 32 bytes"))?,
                    )
                }
                None => None,
            };
            let report = aifn_service::verify_audit(&dir, key.as_ref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                output::json(&serde_json::to_value(&report)?);
            } else {
                println!(
                    "{} records (seq {}..{}), {} checkpoints (signed through seq {}), key: {:?}",
                    report.records,
                    report.first_seq.map_or("-".into(), |s| s.to_string()),
                    report.last_seq.map_or("-".into(), |s| s.to_string()),
                    report.checkpoints,
                    report
                        .checkpointed_seq
                        .map_or("-".into(), |s| s.to_string()),
                    report.key_source
                );
                match &report.finding {
                    None => println!("ok: the audit log verifies"),
                    Some(f) => println!("FAILED: {f}"),
                }
            }
            Ok(if report.is_ok() {
                Exit::Ok
            } else {
                Exit::Failed
            })
        }
        AuditCommand::Checkpoint { data_dir } => {
            let admin = keys::open(data_dir)?;
            let c = admin.checkpoint().map_err(|e| anyhow::anyhow!("{e}"))?;
            admin.close().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "checkpoint seq {} hash {} signed by {}",
                c.seq, c.hash, c.public_key
            );
            Ok(Exit::Ok)
        }
        AuditCommand::Prune {
            data_dir,
            older_than_days,
        } => {
            let admin = keys::open(data_dir)?;
            let cutoff =
                SystemTime::now() - Duration::from_secs(u64::from(older_than_days) * 86_400);
            let r = admin
                .prune(cutoff, keys::local_actor().as_str())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            admin.close().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "pruned {} records (anchor seq {}), {} captured payloads expired",
                r.pruned, r.anchor_seq, r.captures_expired
            );
            Ok(Exit::Ok)
        }
    }
}
