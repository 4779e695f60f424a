//! The approver's tools over HTTP: `aifn test` (run an input on any
//! version, pending included, recorded as a test run), `aifn fetch` (the
//! exact module bytes, or the source, of a version) and `aifn replay`
//! (run a recorded execution again and say whether it reproduced).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aifn_service::{InvokeReply, ReplayReport, ReplayVerdict, VersionInfo};
use aifn_types::Source;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::client::{Conn, name_at_version, path_segment};
use crate::output::{self, err, out};
use crate::{Exit, run};

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// NAME@VERSION (any state: pending, active, rejected, ...).
    target: String,
    #[command(flatten)]
    input: run::InputArgs,
    /// The end user the run acts for (default: you).
    #[arg(long)]
    user: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Args)]
pub(crate) struct FetchArgs {
    /// NAME@VERSION.
    target: String,
    /// Where to write it (`-` for stdout).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// The source text the server built the module from (versions
    /// uploaded as source only), instead of the module bytes.
    #[arg(long)]
    source: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// The execution id of a recorded call (`aifn audit list`).
    execution_id: String,
    #[command(flatten)]
    conn: Conn,
}

/// `NAME@VERSION` with the version required.
fn target(verb: &str, s: &str) -> anyhow::Result<(String, u32)> {
    match name_at_version(s)? {
        (name, Some(v)) => Ok((name, v)),
        (_, None) => bail!("{verb} needs NAME@VERSION"),
    }
}

pub(crate) fn test(args: &TestArgs) -> anyhow::Result<Exit> {
    let (name, version) = target("test", &args.target)?;
    let bytes = run::read_input(
        args.input.input.as_deref(),
        args.input.input_file.as_deref(),
    )?;
    let input: Value = serde_json::from_slice(&bytes).context("the input must be JSON")?;
    let mut body = json!({"input": input});
    if let Some(u) = &args.user {
        body["user_id"] = Value::String(u.clone());
    }
    let path = format!("/v1/functions/{name}/versions/{version}/test");
    let Some(reply) = args.conn.post_as::<InvokeReply>(&path, &body)? else {
        return Ok(Exit::Failed);
    };
    if args.conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let r = &reply.value;
    output::json(&r.output);
    err!(
        "test run of {name}@{}  execution_id {}  fuel {}  {:.3} ms",
        r.version,
        r.execution_id,
        r.fuel_used,
        r.duration_ms
    );
    Ok(Exit::Ok)
}

/// Writes `bytes` to `path`, or to stdout for `-`.
fn write_out(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = output::Stdout;
        out.write_all(bytes)?;
        return Ok(out.flush()?);
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Lowercase hex sha256.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn fetch(args: &FetchArgs) -> anyhow::Result<Exit> {
    let (name, version) = target("fetch", &args.target)?;
    let base = format!("/v1/functions/{name}/versions/{version}");
    let shown = args.out.display();
    if args.source {
        let Some(reply) = args.conn.get_as::<Source>(&format!("{base}/source"))? else {
            return Ok(Exit::Failed);
        };
        let src = reply.value;
        write_out(&args.out, src.text.as_bytes())?;
        err!(
            "wrote {shown}: {} source of {name}@{version}, {} bytes, sha256 {}",
            src.language,
            src.text.len(),
            sha256_hex(src.text.as_bytes())
        );
        return Ok(Exit::Ok);
    }
    let Some(bytes) = args.conn.get_bytes(&format!("{base}/module"))? else {
        return Ok(Exit::Failed);
    };
    let Some(info) = args.conn.get_as::<VersionInfo>(&base)? else {
        return Ok(Exit::Failed);
    };
    // The bytes are what was approved only if they hash to the version's
    // sha256: check before writing, so a bad download leaves no file.
    let got = sha256_hex(&bytes);
    if got != info.value.sha256 {
        err!(
            "aifn: the module received hashes to {got}, not to {name}@{version}'s sha256 {}: nothing written",
            info.value.sha256
        );
        return Ok(Exit::Failed);
    }
    write_out(&args.out, &bytes)?;
    err!(
        "wrote {shown}: {name}@{version}, {} bytes, sha256 {got} (matches the version)",
        bytes.len()
    );
    Ok(Exit::Ok)
}

fn or_none(h: Option<&str>) -> &str {
    h.unwrap_or("(no output)")
}

pub(crate) fn replay(args: &ReplayArgs) -> anyhow::Result<Exit> {
    let path = format!("/v1/executions/{}/replay", path_segment(&args.execution_id));
    let Some(reply) = args.conn.post_as::<ReplayReport>(&path, &json!({}))? else {
        return Ok(Exit::Failed);
    };
    let r = &reply.value;
    let exit = match r.verdict {
        ReplayVerdict::Reproduced => Exit::Ok,
        ReplayVerdict::Diverged => Exit::Failed,
    };
    if args.conn.print_raw(&reply) {
        return Ok(exit);
    }
    let verdict = match r.verdict {
        ReplayVerdict::Reproduced => "reproduced",
        ReplayVerdict::Diverged => "DIVERGED",
    };
    out!(
        "{verdict}: {}@{} execution {}",
        r.function,
        r.version,
        r.execution_id
    );
    out!(
        "  recorded: {}, output sha256 {}",
        r.recorded_kind,
        or_none(r.recorded_output_sha256.as_deref())
    );
    out!(
        "  replayed: {}, output sha256 {}",
        r.replayed_kind,
        or_none(r.replayed_output_sha256.as_deref())
    );
    if !r.input_matches_record {
        out!(
            "  the captured input does not hash to the record's input_sha256: the capture was altered"
        );
    }
    if let Some(m) = &r.message {
        out!("  {m}");
    }
    out!(
        "  the replay is recorded as execution {}",
        r.replay_execution_id
    );
    Ok(exit)
}
