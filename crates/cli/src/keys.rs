//! `aifn keys`: API keys, administered on the data dir (file access is the
//! authority; no server needed).

use std::path::PathBuf;

use aifn_service::{DataDir, LocalAdmin};
use aifn_types::{DatabaseUrl, Role, Subject, TenantId};
use serde_json::json;

use crate::Exit;
use crate::output::{self, err, out};

#[derive(clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; its secret is printed once and only its hash is kept.
    Create {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
        /// The fleet's PostgreSQL database (default: $AIFN_DATABASE_URL;
        /// none: the SQLite files in the data dir).
        #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
        database: Option<DatabaseUrl>,
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: TenantId,
        /// author, approver, admin or agent.
        #[arg(long)]
        role: Role,
        /// Who the key speaks for (a person or a service account).
        #[arg(long)]
        subject: Subject,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
        /// The fleet's PostgreSQL database (default: $AIFN_DATABASE_URL;
        /// none: the SQLite files in the data dir).
        #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
        database: Option<DatabaseUrl>,
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id.
    Revoke {
        /// Data directory.
        #[arg(long, default_value = "aifn-data")]
        data_dir: PathBuf,
        /// The fleet's PostgreSQL database (default: $AIFN_DATABASE_URL;
        /// none: the SQLite files in the data dir).
        #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
        database: Option<DatabaseUrl>,
        /// The key id (from `aifn keys list`).
        key_id: String,
    },
}

/// The local operator, as recorded in the audit log.
pub(crate) fn local_actor() -> Subject {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let clean: String = user
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(100)
        .collect();
    Subject::new(format!("cli:{clean}"))
        .unwrap_or_else(|_| Subject::new("cli").unwrap_or_else(|_| unreachable!("valid subject")))
}

/// The environment variable naming the checkpoint signing key for the local
/// commands, when `aifn serve` keeps it outside the data dir
/// (`[service.audit] signing_key`). Local commands append records and sign a
/// checkpoint on close: with another key they would plant checkpoints
/// that `aifn audit verify --public-key` rightly refuses.
pub(crate) const SIGNING_KEY_ENV: &str = "AIFN_AUDIT_SIGNING_KEY";

/// The data dir as the local commands open it: the signing key from
/// [`SIGNING_KEY_ENV`] when set, else the one inside the data dir.
pub(crate) fn data_dir(root: PathBuf, database: Option<DatabaseUrl>) -> DataDir {
    let mut dir = DataDir::new(root, "cli");
    dir.database = database;
    if let Some(k) = std::env::var_os(SIGNING_KEY_ENV).filter(|k| !k.is_empty()) {
        dir.signing_key = PathBuf::from(k);
    }
    dir
}

/// Opens the data dir's registry and audit log (in `database` when given).
/// These commands work while `aifn serve` runs on the same data dir or
/// database: every write takes the database's write lock (SQLite's, or
/// PostgreSQL's advisory locks), and the audit chain's head is read
/// inside it.
pub(crate) fn open(root: PathBuf, database: Option<DatabaseUrl>) -> anyhow::Result<LocalAdmin> {
    Ok(LocalAdmin::open(data_dir(root, database))?)
}

pub(crate) fn run(cmd: KeysCommand) -> anyhow::Result<Exit> {
    match cmd {
        KeysCommand::Create {
            data_dir,
            database,
            tenant,
            role,
            subject,
            json,
        } => {
            // A data dir made by mistake (the wrong folder) holds keys the
            // server never sees: say where they went, and that it is new.
            let created = !data_dir.exists();
            let admin = open(data_dir, database)?;
            let dir = admin.dir().absolute();
            let key = admin.create_key(&tenant, role, &subject, &local_actor())?;
            admin.close()?;
            if json {
                output::json(&json!({
                    "key_id": key.key_id, "secret": key.secret, "tenant": tenant, "role": role,
                    "subject": subject, "data_dir": dir, "data_dir_created": created,
                }));
            } else {
                out!("key_id:   {}", key.key_id);
                out!("tenant:   {tenant}\nrole:     {role}\nsubject:  {subject}");
                out!("secret:   {}", key.secret);
                out!("data dir: {}", dir.display());
                err!("Store the secret now: it is not kept and cannot be shown again.");
            }
            if created {
                err!(
                    "Created the data dir {} just now: `aifn serve --data-dir` must name it for this key to work.",
                    dir.display()
                );
            }
            Ok(Exit::Ok)
        }
        KeysCommand::List {
            data_dir,
            database,
            tenant,
            json,
        } => {
            let admin = open(data_dir, database)?;
            let keys = admin.list_keys(tenant.as_ref())?;
            admin.close()?;
            if json {
                output::json(&serde_json::to_value(&keys)?);
            } else {
                let rows = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.key_id.clone(),
                            k.tenant.to_string(),
                            k.role.to_string(),
                            k.subject.to_string(),
                            k.created_at.to_string(),
                            k.revoked_at.map_or_else(|| "-".into(), |t| t.to_string()),
                        ]
                    })
                    .collect();
                output::table(
                    &["KEY ID", "TENANT", "ROLE", "SUBJECT", "CREATED", "REVOKED"],
                    rows,
                );
            }
            Ok(Exit::Ok)
        }
        KeysCommand::Revoke {
            data_dir,
            database,
            key_id,
        } => {
            let admin = open(data_dir, database)?;
            let result = admin.revoke_key(&key_id, &local_actor());
            admin.close()?;
            match result {
                Ok(k) => {
                    out!(
                        "revoked {} ({} {} of {})",
                        k.key_id,
                        k.role,
                        k.subject,
                        k.tenant
                    );
                    Ok(Exit::Ok)
                }
                Err(e) => {
                    err!("aifn: {e}");
                    Ok(Exit::Failed)
                }
            }
        }
    }
}
