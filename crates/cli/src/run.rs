//! `aifn run MODULE`: one local call, one JSON object on stdout.

use std::path::PathBuf;

use aifn_runtime::{Context, Invocation, Limits, ModuleError, OutcomeKind, Runtime, RuntimeConfig};
use anyhow::Context as _;
use serde_json::Value;

use crate::Exit;

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The module: a `.wasm` binary or a `.wat` text file.
    module: PathBuf,
    /// The input JSON (default `{}`).
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input JSON from a file (`-` for stdin).
    #[arg(long)]
    input_file: Option<PathBuf>,
    /// Fuel (instruction budget).
    #[arg(long)]
    fuel: Option<u64>,
    /// Wall-clock deadline in milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Linear memory limit in MiB.
    #[arg(long)]
    memory_mib: Option<u64>,
    /// Context: tenant id.
    #[arg(long, default_value = "local")]
    tenant: String,
    /// Context: agent id.
    #[arg(long, default_value = "local")]
    agent: String,
    /// Context: user id.
    #[arg(long, default_value = "local")]
    user: String,
}

pub(crate) fn read_module(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_wat = path.extension().is_some_and(|e| e == "wat") || !bytes.starts_with(b"\0asm");
    if is_wat {
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("{} is neither wasm nor UTF-8 WAT", path.display()))?;
        return wat::parse_str(text)
            .with_context(|| format!("{} is not valid WAT", path.display()));
    }
    Ok(bytes)
}

fn read_input(args: &RunArgs) -> anyhow::Result<Vec<u8>> {
    match (&args.input, &args.input_file) {
        (Some(s), _) => Ok(s.as_bytes().to_vec()),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .context("cannot read stdin")?;
            Ok(buf)
        }
        (None, Some(p)) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display())),
        (None, None) => Ok(b"{}".to_vec()),
    }
}

/// The one JSON object `aifn run` prints, fields in documented order.
#[derive(serde::Serialize)]
struct Outcome {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
    fuel_used: u64,
    duration_ms: f64,
    memory_peak_bytes: u64,
    logs: Vec<aifn_types::LogLine>,
}

#[derive(serde::Serialize)]
struct ErrorBody {
    kind: OutcomeKind,
    message: String,
}

fn print(o: &Outcome) {
    // Serializing plain data cannot fail.
    println!("{}", serde_json::to_string(o).unwrap_or_default());
}

fn refused(kind: OutcomeKind, message: String) -> Exit {
    print(&Outcome {
        ok: false,
        output: None,
        error: Some(ErrorBody { kind, message }),
        fuel_used: 0,
        duration_ms: 0.0,
        memory_peak_bytes: 0,
        logs: Vec::new(),
    });
    Exit::Usage
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<Exit> {
    // Locally, the flags set the host maxima: the author's machine is the host.
    let defaults = Limits::default();
    let limits = Limits {
        fuel: args.fuel.unwrap_or(defaults.fuel),
        timeout_ms: args.timeout_ms.unwrap_or(defaults.timeout_ms),
        memory_bytes: args
            .memory_mib
            .map_or(defaults.memory_bytes, |m| m.saturating_mul(1 << 20)),
        ..defaults
    };
    let bytes = read_module(&args.module)?;
    let input = read_input(&args)?;
    let runtime = Runtime::new(RuntimeConfig {
        limits,
        max_instances: 4,
        ..RuntimeConfig::default()
    })?;
    let module = match runtime.load(&bytes) {
        Ok(m) => m,
        Err(e) => return Ok(refused(ModuleError::kind(&e), e.to_string())),
    };
    let context = Context {
        tenant_id: args.tenant,
        agent_id: args.agent,
        user_id: args.user,
        ..Context::local()
    };
    let exec = runtime.invoke(&module, &Invocation::new(&input, &context, limits));
    if exec.kind == OutcomeKind::InvalidInput {
        return Ok(refused(exec.kind, exec.message.unwrap_or_default()));
    }
    let ok = exec.is_ok();
    let output = exec
        .output
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    print(&Outcome {
        ok,
        output,
        error: (!ok).then(|| ErrorBody {
            kind: exec.kind,
            message: exec.message.unwrap_or_default(),
        }),
        fuel_used: exec.fuel_used,
        duration_ms: (exec.duration.as_secs_f64() * 1e6).round() / 1e3,
        memory_peak_bytes: exec.memory_peak_bytes,
        logs: exec.logs,
    });
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}
