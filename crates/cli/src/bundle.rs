//! `aifn audit bundle` writes one evidence file about an execution or a
//! function (its versions with manifest, report and decisions, the audit
//! records, their chain links to a signed checkpoint, optionally the
//! module bytes), through the server or, as the operator, from the data
//! dir. `aifn audit verify-bundle` checks such a file offline, with no
//! database: every hash link, the checkpoint signatures, the modules.

use std::path::PathBuf;

use aifn_service::{BundleRequest, verify_bundle};
use aifn_types::{DatabaseUrl, TenantId, Timestamp};
use anyhow::Context as _;
use serde_json::Value;

use crate::client::{Conn, name_at_version};
use crate::output::{self, err, out};
use crate::{Exit, keys};

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("scope").required(true).args(["execution", "function"]))]
pub(crate) struct BundleArgs {
    /// One execution: its record, its version and that version's decisions.
    #[arg(long)]
    execution: Option<String>,
    /// A function's records (NAME), or one version's (NAME@VERSION).
    #[arg(long)]
    function: Option<String>,
    /// With --function: records from this time (RFC 3339).
    #[arg(long, requires = "function")]
    since: Option<String>,
    /// With --function: records before this time (RFC 3339).
    #[arg(long, requires = "function")]
    until: Option<String>,
    /// Include each version's module bytes (verify-bundle checks their sha256).
    #[arg(long)]
    include_module: bool,
    /// The bundle file to write.
    #[arg(long)]
    out: PathBuf,
    /// Read the data dir directly (operator) instead of the server.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// With --data-dir: the fleet's PostgreSQL database (default:
    /// $AIFN_DATABASE_URL).
    #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
    database: Option<DatabaseUrl>,
    /// The tenant, with --data-dir (through the server it is the key's).
    #[arg(long, requires = "data_dir")]
    tenant: Option<TenantId>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// The bundle file.
    file: PathBuf,
    /// The expected Ed25519 public key of the checkpoints (hex), obtained
    /// apart from the bundle: the strongest check.
    #[arg(long)]
    public_key: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `--public-key HEX` as 32 bytes.
pub(crate) fn public_key(hex_key: Option<&str>) -> anyhow::Result<Option<[u8; 32]>> {
    let Some(h) = hex_key else { return Ok(None) };
    let bytes = hex::decode(h.trim()).context("--public-key must be hex")?;
    let key = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("--public-key must be 32 bytes (64 hex digits)"))?;
    Ok(Some(key))
}

fn time(flag: &str, s: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    s.map(|s| Timestamp::parse(s).with_context(|| format!("{flag} {s} is not an RFC 3339 time")))
        .transpose()
}

fn request(a: &BundleArgs) -> anyhow::Result<BundleRequest> {
    let (function, version) = match &a.function {
        Some(f) => {
            let (name, version) = name_at_version(f)?;
            (Some(name), version)
        }
        None => (None, None),
    };
    Ok(BundleRequest {
        execution: a.execution.clone(),
        function,
        version,
        since: time("--since", a.since.as_deref())?,
        until: time("--until", a.until.as_deref())?,
        include_module: a.include_module,
    })
}

/// The query string of `GET /v1/audit/bundle`.
fn query(r: &BundleRequest) -> String {
    let enc = crate::client::path_segment;
    let mut p = Vec::new();
    if let Some(e) = &r.execution {
        p.push(format!("execution={}", enc(e)));
    }
    if let Some(f) = &r.function {
        p.push(format!("function={}", enc(f)));
    }
    if let Some(v) = r.version {
        p.push(format!("version={v}"));
    }
    if let Some(t) = &r.since {
        p.push(format!("since={}", enc(&t.to_string())));
    }
    if let Some(t) = &r.until {
        p.push(format!("until={}", enc(&t.to_string())));
    }
    if r.include_module {
        p.push("module=true".to_owned());
    }
    p.join("&")
}

fn count(v: &Value, pointer: &str) -> usize {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

pub(crate) fn bundle(a: BundleArgs) -> anyhow::Result<Exit> {
    let req = request(&a)?;
    let bytes = match &a.data_dir {
        Some(dir) => {
            let tenant = a
                .tenant
                .clone()
                .context("--tenant is required with --data-dir")?;
            let admin = keys::open(dir.clone(), a.database.clone())?;
            let made = admin.bundle(&tenant, req);
            admin.close()?;
            serde_json::to_vec_pretty(&made?)?
        }
        None => match a
            .conn
            .get_bytes(&format!("/v1/audit/bundle?{}", query(&req)))?
        {
            Some(b) => b,
            None => return Ok(Exit::Failed),
        },
    };
    let summary: Value = serde_json::from_slice(&bytes).context("the bundle is not JSON")?;
    std::fs::write(&a.out, &bytes).with_context(|| format!("cannot write {}", a.out.display()))?;
    err!(
        "wrote {}: {} records, {} links, {} checkpoints, {} versions{}",
        a.out.display(),
        count(&summary, "/evidence/records"),
        count(&summary, "/evidence/links"),
        count(&summary, "/evidence/checkpoints"),
        count(&summary, "/versions"),
        if a.include_module {
            " with their modules"
        } else {
            ""
        }
    );
    err!(
        "check it anywhere with: aifn audit verify-bundle {} --public-key HEX",
        a.out.display()
    );
    Ok(Exit::Ok)
}

/// A product word as serialized (`trusted`, `bundled`).
fn word(v: impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub(crate) fn verify(a: VerifyArgs) -> anyhow::Result<Exit> {
    let key = public_key(a.public_key.as_deref())?;
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    match verify_bundle(&bytes, key.as_ref()) {
        Ok(r) => {
            if a.json {
                output::json(&serde_json::json!({"ok": true, "report": r}));
            } else {
                out!(
                    "{} records, {} links, {} checkpoints signed by {} (key: {}), {} versions, {} modules checked",
                    r.records,
                    r.links,
                    r.checkpoints,
                    r.public_key,
                    word(r.key_source),
                    r.versions,
                    r.modules_checked
                );
                if key.is_some() {
                    out!("ok: the bundle verifies");
                } else {
                    // Anyone can sign a rewritten bundle with a key of their
                    // own: without the trusted key only consistency holds.
                    out!(
                        "ok: the bundle is consistent, but UNTRUSTED: its checkpoints were checked \
                         against the key they name; pass --public-key with the key you trust"
                    );
                }
            }
            Ok(Exit::Ok)
        }
        Err(e) => {
            if a.json {
                output::json(&serde_json::json!({"ok": false, "finding": e.to_string()}));
            } else {
                out!("FAILED: {e}");
            }
            Ok(Exit::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_32_hex_bytes() {
        assert_eq!(public_key(None).expect("none"), None);
        let k = public_key(Some(&"ab".repeat(32))).expect("ok");
        assert_eq!(k, Some([0xab; 32]));
        let e = public_key(Some("zz")).expect_err("not hex");
        assert!(e.to_string().contains("hex"), "{e}");
        let e = public_key(Some("abcd")).expect_err("short");
        assert!(e.to_string().contains("32 bytes"), "{e}");
    }

    #[test]
    fn the_query_names_what_is_asked() {
        let r = BundleRequest {
            execution: None,
            function: Some("f".into()),
            version: Some(2),
            since: Some(Timestamp::parse("2025-01-01T00:00:00Z").expect("time")),
            until: None,
            include_module: true,
        };
        let q = query(&r);
        assert!(
            q.starts_with("function=f&version=2&since=2025-01-01T00%3A00%3A00"),
            "{q}"
        );
        assert!(q.ends_with("&module=true"), "{q}");
        let r = BundleRequest {
            execution: Some("e1".into()),
            function: None,
            version: None,
            since: None,
            until: None,
            include_module: false,
        };
        assert_eq!(query(&r), "execution=e1");
    }
}
