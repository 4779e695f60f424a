//! JavaScript functions: the source runs in aifn's QuickJS-ng engine,
//! itself an ABI v1 module run by this runtime under every limit.
//!
//! The engine (`crates/runtime/js/`, built reproducibly by `cargo xtask
//! js-engine`) is embedded, pre-initialized once per host and compiled
//! once; a function is only its source and the bytecode the engine makes
//! from it inside the sandbox. Each call is a fresh instance of the
//! engine's snapshot given that bytecode, so nothing outlives a call.

mod checklist;
mod heap;
mod package;
mod snapshot;

use std::sync::Arc;
use std::time::Instant;

use aifn_types::{EngineInfo, ModuleReport, OutcomeKind, ScriptReport};
use sha2::{Digest, Sha256};
use wasmtime::ModuleExport;

pub use package::MAX_SOURCE_BYTES;

pub(crate) use heap::HeapImage;
pub(crate) use package::Package;

use crate::invoke::{Ended, Exits, Setup, finish, new_store, run_export, until};
use crate::{Loaded, LoadedModule, ModuleError, Runtime};

/// An engine this release carries. A release that changes the engine
/// keeps the old one here or, at least, in the registry: every JavaScript
/// upload stores its engine by sha256 beside its source (see
/// [`Engines::supply`]), so upgrading aifn never changes what runs.
struct Embedded {
    name: &'static str,
    version: &'static str,
    /// The sha256 it was reviewed as (checked by a test).
    sha256: &'static str,
    wasm: &'static [u8],
}

/// The engines, the current one (new uploads) first.
const ENGINES: &[Embedded] = &[
    Embedded {
        name: "quickjs-ng",
        version: "0.16.2",
        sha256: include_str!("../../js/quickjs-aifn.wasm.sha256"),
        wasm: include_bytes!("../../js/quickjs-aifn.wasm"),
    },
    // The first build (-Oz, bytecode with debug tables, no aifn_js_load):
    // versions uploaded before 2026-12-03 stored no engine beside them.
    Embedded {
        name: "quickjs-ng",
        version: "0.16.2",
        sha256: "4716457ff0488dcaad7c92d196c7a145464771814335e9759a4f3d55de517b09",
        wasm: include_bytes!("../../js/older/quickjs-aifn-4716457f.wasm"),
    },
];

/// Every embedded engine, with the sha256 it is listed as: for a test that
/// the bytes are the reviewed ones.
pub fn embedded_engines() -> impl Iterator<Item = (EngineInfo, &'static [u8])> {
    ENGINES.iter().map(|e| {
        let info = EngineInfo {
            name: e.name.to_owned(),
            version: e.version.to_owned(),
            sha256: e.sha256.trim().to_owned(),
        };
        (info, e.wasm)
    })
}

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
    /// `aifn_js_load`; an engine without it (an older release's) reads
    /// the bytecode in every call.
    load_export: Option<ModuleExport>,
    /// Where the engine's shadow stack starts.
    stack_top: usize,
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

/// Whether `bytes` are a JavaScript package (what [`package`] makes), not
/// a wasm module.
pub fn is_package(bytes: &[u8]) -> bool {
    Package::parse(bytes).is_some()
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

/// The engines a runtime knows: those this release embeds, those the host
/// supplied (an older release's, kept by hash beside the versions that run
/// on them), and those built so far.
#[derive(Default)]
pub(crate) struct Engines {
    supplied: Vec<(EngineInfo, Arc<[u8]>)>,
    built: Vec<Arc<JsEngine>>,
}

impl Engines {
    /// The module and facts of the engine with this sha256, if known.
    pub(crate) fn find(&self, sha: &[u8; 32]) -> Option<(EngineInfo, Arc<[u8]>)> {
        if let Some(e) = ENGINES.iter().find(|e| sha256(e.wasm) == *sha) {
            let info = EngineInfo {
                name: e.name.to_owned(),
                version: e.version.to_owned(),
                sha256: hex::encode(sha),
            };
            return Some((info, Arc::from(e.wasm)));
        }
        let hex = hex::encode(sha);
        self.supplied
            .iter()
            .find(|(info, _)| info.sha256 == hex)
            .cloned()
    }

    /// Makes an engine this release does not embed available by its
    /// sha256, which must be that of `wasm`.
    pub(crate) fn supply(&mut self, info: EngineInfo, wasm: &[u8]) -> Result<(), ModuleError> {
        let sha = sha256(wasm);
        if hex::encode(sha) != info.sha256 {
            return Err(ModuleError::Engine {
                reason: format!(
                    "the engine supplied as {} {} has sha256 {}, not {}",
                    info.name,
                    info.version,
                    hex::encode(sha),
                    info.sha256
                ),
            });
        }
        if self.find(&sha).is_none() {
            self.supplied.push((info, Arc::from(wasm)));
        }
        Ok(())
    }

    pub(crate) fn built(&self, sha: &[u8; 32]) -> Option<Arc<JsEngine>> {
        self.built.iter().find(|e| e.sha256() == sha).cloned()
    }

    pub(crate) fn add_built(&mut self, engine: Arc<JsEngine>) {
        self.built.push(engine);
    }
}

impl JsEngine {
    /// Pre-initializes, compiles and pre-links an engine module.
    pub(crate) fn build(
        rt: &Runtime,
        info: EngineInfo,
        wasm: &[u8],
    ) -> Result<JsEngine, ModuleError> {
        let sha = sha256(wasm);
        let snapshot = snapshot::preinitialize(rt, wasm)?;
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
            heap: None,
            exits: Exits::Engine,
        });
        Ok(JsEngine {
            sha256: sha,
            info,
            compile_export: export("aifn_js_compile")?,
            load_export: module.get_export_index("aifn_js_load"),
            stack_top: heap::stack_top(&snapshot),
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
            tenant: None,
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

    /// Reads `bytecode` in a fresh instance (`aifn_js_load`) and keeps the
    /// pages that changed; `None` when they are too many to keep.
    fn load_heap(
        &self,
        rt: &Runtime,
        bytecode: &Arc<[u8]>,
    ) -> Result<Option<HeapImage>, ModuleError> {
        let Some(load_export) = &self.load_export else {
            return Ok(None);
        };
        let limits = *rt.limits();
        let setup = Setup {
            input: Vec::new(),
            context: Vec::new(),
            execution_id: "aifn js load",
            start_ns: 0,
            started: Instant::now(),
            output_limit: 64 * 1024,
            cancel: None,
            script: Some(bytecode.clone()),
            tenant: None,
        };
        let mut store = new_store(rt, &limits, setup);
        let code = &self.code;
        let deadline = store.data().deadline;
        let reading = async {
            let instance = code.pre.instantiate_async(&mut store).await?;
            let memory = instance
                .get_module_export(&mut store, &code.memory_export)
                .and_then(|e| e.into_memory())
                .ok_or_else(|| wasmtime::Error::msg("the engine has no memory"))?;
            store.data_mut().memory = Some(memory);
            let before = memory.data(&store).to_vec();
            let load = instance
                .get_module_export(&mut store, load_export)
                .and_then(|e| e.into_func())
                .ok_or_else(|| wasmtime::Error::msg("the engine has no aifn_js_load"))?;
            let exit = load
                .typed::<(), i32>(&store)?
                .call_async(&mut store, ())
                .await?;
            let image =
                (exit == 0).then(|| HeapImage::diff(&before, memory.data(&store), self.stack_top));
            Ok((exit, image))
        };
        let loaded = until(reading, deadline, None, None);
        let (state, _) = finish(store, &limits);
        let failed = |reason: String| ModuleError::Engine { reason };
        match loaded {
            Ok((0, Some(image))) if image.bytes() <= heap::MAX_HEAP_BYTES => Ok(Some(image)),
            Ok((0, _)) => Ok(None),
            Ok((exit, _)) => Err(failed(format!(
                "reading the bytecode ended with {}: {}",
                exit_kind(exit).as_str(),
                String::from_utf8_lossy(&state.output.unwrap_or_default())
            ))),
            Err(e) => Err(failed(format!("reading the bytecode: {e}"))),
        }
    }

    /// A loaded JavaScript function: the engine's code with its bytecode.
    pub(crate) fn load(
        &self,
        rt: &Runtime,
        bytes: &[u8],
        pkg: &Package<'_>,
    ) -> Result<LoadedModule, ModuleError> {
        let bytecode: Arc<[u8]> = self.compile(rt, pkg.source)?.into();
        let heap = self.load_heap(rt, &bytecode)?.map(Arc::new);
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
            script: Some(bytecode),
            heap,
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
