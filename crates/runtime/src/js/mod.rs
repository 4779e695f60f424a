//! JavaScript functions: the source runs in aifn's QuickJS-ng engine,
//! itself an ABI v1 module run by this runtime under every limit.
//!
//! The engine (`crates/runtime/js/`, built reproducibly by `cargo xtask
//! js-engine`) is embedded, pre-initialized once per host and compiled
//! once; a function is only its source and the bytecode the engine makes
//! from it inside the sandbox. Each call is a fresh instance of the
//! engine's snapshot given that bytecode, so nothing outlives a call.

mod checklist;
mod package;
mod snapshot;

use std::sync::Arc;
use std::time::Instant;

use aifn_types::{EngineInfo, ModuleReport, OutcomeKind, ScriptReport};
use sha2::{Digest, Sha256};
use wasmtime::ModuleExport;

pub use package::MAX_SOURCE_BYTES;

pub(crate) use package::Package;

use crate::invoke::{Ended, Exits, Setup, run_export};
use crate::{Loaded, LoadedModule, ModuleError, Runtime};

/// An engine this release carries: every engine an active version may
/// still use stays here, so upgrading aifn never changes what runs.
struct Embedded {
    name: &'static str,
    version: &'static str,
    wasm: &'static [u8],
}

/// The engines, the current one (new uploads) first.
const ENGINES: &[Embedded] = &[Embedded {
    name: "quickjs-ng",
    version: "0.16.2",
    wasm: include_bytes!("../../js/quickjs-aifn.wasm"),
}];

/// The driver's exit codes (crates/runtime/js/driver.c).
pub(crate) fn exit_kind(code: i32) -> OutcomeKind {
    match code {
        2 => OutcomeKind::InvalidOutput,
        3 => OutcomeKind::MemoryLimit,
        4 => OutcomeKind::StackOverflow,
        _ => OutcomeKind::FunctionError,
    }
}

/// A pre-initialized, compiled, pre-linked engine.
pub(crate) struct JsEngine {
    sha256: [u8; 32],
    info: EngineInfo,
    code: Arc<Loaded>,
    compile_export: ModuleExport,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The sha256 of the engine new JavaScript versions are built with.
pub(crate) fn current_engine() -> [u8; 32] {
    sha256(ENGINES[0].wasm)
}

/// The engine this release builds new JavaScript versions with.
pub fn current_engine_info() -> EngineInfo {
    EngineInfo {
        name: ENGINES[0].name.to_owned(),
        version: ENGINES[0].version.to_owned(),
        sha256: hex::encode(current_engine()),
    }
}

/// What the registry stores for a JavaScript source: the source with the
/// sha256 of the engine this release runs new versions on, so a version is
/// bound to both. Load it like any module.
pub fn package(source: &str) -> Result<Vec<u8>, ModuleError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(ModuleError::InvalidScript {
            reason: format!(
                "the source is {} bytes, over the limit of {MAX_SOURCE_BYTES} bytes",
                source.len()
            ),
        });
    }
    Ok(Package {
        engine_sha256: current_engine(),
        source,
    }
    .encode())
}

impl JsEngine {
    /// Builds the engine with this sha256, if this release has it.
    pub(crate) fn build(rt: &Runtime, sha: &[u8; 32]) -> Result<JsEngine, ModuleError> {
        let embedded = ENGINES
            .iter()
            .find(|e| sha256(e.wasm) == *sha)
            .ok_or_else(|| ModuleError::UnknownEngine {
                sha256: hex::encode(sha),
            })?;
        let snapshot = snapshot::preinitialize(rt, embedded.wasm)?;
        let (module, report) = rt.compile_engine(&snapshot)?;
        let export = |name: &'static str| {
            module
                .get_export_index(name)
                .ok_or(ModuleError::MissingExport {
                    name,
                    expected: "a function",
                })
        };
        let pre = rt
            .linker()
            .instantiate_pre(&module)
            .map_err(|e| ModuleError::Compile(crate::Cause::new(e)))?;
        let code = Arc::new(Loaded {
            pre,
            report,
            call_export: export("aifn_call")?,
            memory_export: module
                .get_export_index("memory")
                .ok_or(ModuleError::MissingExport {
                    name: "memory",
                    expected: "a memory",
                })?,
            init_export: None,
            script: None,
            exits: Exits::Engine,
        });
        Ok(JsEngine {
            sha256: *sha,
            info: EngineInfo {
                name: embedded.name.to_owned(),
                version: embedded.version.to_owned(),
                sha256: hex::encode(sha),
            },
            compile_export: export("aifn_js_compile")?,
            code,
        })
    }

    pub(crate) fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Compiles a package's source to bytecode in a fresh instance, under
    /// the host's limits; a syntax error says where.
    fn compile(&self, rt: &Runtime, source: &str) -> Result<Vec<u8>, ModuleError> {
        let limits = *rt.limits();
        let setup = Setup {
            input: Vec::new(),
            context: Vec::new(),
            execution_id: "aifn js compile",
            start_ns: 0,
            started: Instant::now(),
            // Bytecode is about as large as its source, never much larger.
            output_limit: 4 * MAX_SOURCE_BYTES + 64 * 1024,
            cancel: None,
            script: Some(source.as_bytes().into()),
        };
        let (ended, state, _) = run_export(rt, &self.code, &self.compile_export, &limits, setup);
        let output = state.output.unwrap_or_default();
        let failed = |reason: String| ModuleError::Engine { reason };
        match ended {
            Ended::Returned(0) => Ok(output),
            Ended::Returned(1) => Err(syntax_error(&output)),
            Ended::Returned(code) => Err(failed(format!(
                "compiling the source ended with {}: {}",
                exit_kind(code).as_str(),
                String::from_utf8_lossy(&output)
            ))),
            Ended::Failed(e) => Err(failed(format!("compiling the source: {e}"))),
        }
    }

    /// A loaded JavaScript function: the engine's code with its bytecode.
    pub(crate) fn load(
        &self,
        rt: &Runtime,
        bytes: &[u8],
        pkg: &Package<'_>,
    ) -> Result<LoadedModule, ModuleError> {
        let bytecode = self.compile(rt, pkg.source)?;
        let engine = &self.code.report;
        let report = ModuleReport {
            sha256: hex::encode(sha256(bytes)),
            size_bytes: bytes.len() as u64,
            script: Some(ScriptReport {
                source_sha256: hex::encode(sha256(pkg.source.as_bytes())),
                source_bytes: pkg.source.len() as u64,
                bytecode_bytes: bytecode.len() as u64,
                engine: self.info.clone(),
                findings: checklist::findings(pkg.source),
            }),
            ..engine.clone()
        };
        Ok(LoadedModule(Arc::new(Loaded {
            pre: self.code.pre.clone(),
            report,
            call_export: self.code.call_export,
            memory_export: self.code.memory_export,
            init_export: None,
            script: Some(bytecode.into()),
            exits: Exits::Engine,
        })))
    }
}

/// The driver's `{"message","line","column"}` for a source that does not
/// parse.
fn syntax_error(output: &[u8]) -> ModuleError {
    #[derive(serde::Deserialize)]
    struct Reported {
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    }
    match serde_json::from_slice::<Reported>(output) {
        Ok(r) => ModuleError::ScriptError {
            message: r.message,
            line: r.line.unwrap_or(0),
            column: r.column.unwrap_or(0),
        },
        Err(_) => ModuleError::ScriptError {
            message: String::from_utf8_lossy(output).into_owned(),
            line: 0,
            column: 0,
        },
    }
}
