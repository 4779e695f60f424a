//! `aifn run MODULE`: one local call, one JSON object on stdout, also for
//! every refusal (a file that is not a module, an input that is not JSON).

use std::path::Path;

use aifn_runtime::{Context, Invocation, Limits, ModuleError, OutcomeKind, Runtime, RuntimeConfig};
use anyhow::Context as _;
use serde_json::Value;

use crate::Exit;
use crate::output::out;

/// The largest `--memory-mib`: a 32-bit wasm memory's 4 GiB.
pub(crate) const MAX_MEMORY_MIB: u64 = 4 << 10;

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The module: a `.wasm` binary, a `.wat` text file or a `.js`
    /// JavaScript function.
    module: std::path::PathBuf,
    #[command(flatten)]
    input: InputArgs,
    /// Fuel (instruction budget).
    #[arg(long)]
    fuel: Option<u64>,
    /// Wall-clock deadline in milliseconds (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Linear memory limit in MiB (1 to 4096, a 32-bit memory's 4 GiB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_MEMORY_MIB))]
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

/// `--input JSON` or `--input-file F` (`-` for stdin), for `run` and `invoke`.
#[derive(clap::Args)]
pub(crate) struct InputArgs {
    /// The input JSON (default `{}`).
    #[arg(long, conflicts_with = "input_file")]
    pub(crate) input: Option<String>,
    /// Read the input JSON from a file (`-` for stdin); for inputs too
    /// large for the command line.
    #[arg(long)]
    pub(crate) input_file: Option<std::path::PathBuf>,
}

/// A module file that cannot be loaded, said in the author's terms.
#[derive(Debug)]
pub(crate) struct ModuleFileError(String);

impl std::fmt::Display for ModuleFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModuleFileError {}

/// A module file as read: a wasm binary, or WAT text with the module it
/// builds (checked here, so that an error names the author's file).
pub(crate) enum ModuleFile {
    /// A `.wasm` binary.
    Wasm(Vec<u8>),
    /// A `.wat` text file.
    Wat {
        /// The text as written.
        text: String,
        /// The module it builds.
        wasm: Vec<u8>,
    },
    /// A `.js` or `.mjs` JavaScript function.
    Js {
        /// The source as written.
        text: String,
        /// What the registry stores: the source and its engine.
        package: Vec<u8>,
    },
}

/// Reads a module file: wasm by its `.wasm` name or its `\0asm` header,
/// JavaScript by its `.js` or `.mjs` name, else WAT.
pub(crate) fn read_module_file(path: &Path) -> Result<ModuleFile, ModuleFileError> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| ModuleFileError(format!("cannot read {shown}: {e}")))?;
    let has_magic = bytes.starts_with(b"\0asm");
    if has_magic || path.extension().is_some_and(|e| e == "wasm") {
        if !has_magic {
            return Err(ModuleFileError(format!(
                "{shown} is not a wasm module: it does not start with the \\0asm header"
            )));
        }
        return Ok(ModuleFile::Wasm(bytes));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        ModuleFileError(format!(
            "{shown} is neither a wasm module (no \\0asm header) nor WAT or JavaScript text (not UTF-8)"
        ))
    })?;
    if path.extension().is_some_and(|e| e == "js" || e == "mjs") {
        let package = aifn_runtime::javascript_package(&text)
            .map_err(|e| ModuleFileError(format!("{shown}: {e}")))?;
        return Ok(ModuleFile::Js { text, package });
    }
    let wasm = wat::parse_str(&text)
        .map_err(|e| ModuleFileError(format!("{shown} is not valid WAT: {e}")))?;
    Ok(ModuleFile::Wat { text, wasm })
}

/// Reads a module's bytes: a wasm binary as it is, WAT compiled.
pub(crate) fn read_module(path: &Path) -> Result<Vec<u8>, ModuleFileError> {
    Ok(match read_module_file(path)? {
        ModuleFile::Wasm(bytes)
        | ModuleFile::Wat { wasm: bytes, .. }
        | ModuleFile::Js { package: bytes, .. } => bytes,
    })
}

/// Where `aifn run` keeps compiled modules (the JavaScript engine above
/// all, which takes seconds to compile): `AIFN_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/aifn`, else `~/.cache/aifn`.
fn cache_dir() -> Option<std::path::PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    var("AIFN_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("aifn")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/aifn")))
}

/// The input bytes: `--input`, `--input-file` (`-` is stdin) or `{}`.
pub(crate) fn read_input(input: Option<&str>, file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match (input, file) {
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
    out!("{}", serde_json::to_string(o).unwrap_or_default());
}

/// A refusal before the module ran: the one object, exit 2.
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
    let bytes = match read_module(&args.module) {
        Ok(b) => b,
        Err(e) => return Ok(refused(OutcomeKind::InvalidModule, e.to_string())),
    };
    let input = match read_input(
        args.input.input.as_deref(),
        args.input.input_file.as_deref(),
    ) {
        Ok(i) => i,
        Err(e) => return Ok(refused(OutcomeKind::InvalidInput, format!("{e:#}"))),
    };
    let config = RuntimeConfig {
        limits,
        max_instances: 4,
        cache_dir: cache_dir(),
        ..RuntimeConfig::default()
    };
    // A cache that cannot be used costs time, not the run.
    let runtime = match Runtime::new(config.clone()) {
        Err(aifn_runtime::RuntimeError::Cache { .. }) => Runtime::new(RuntimeConfig {
            cache_dir: None,
            ..config
        })?,
        r => r?,
    };
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
