//! The sandbox: the only crate that touches wasmtime.
//!
//! Pipeline: upload → **validate** (here) → registry → approve → invoke →
//! **run** (here) → audit. A module is validated statically (size and
//! count caps, allowed wasm features, the ABI v1 import allowlist and
//! exports), compiled once within a deadline, cached in memory and on disk
//! (keyed by sha256 and engine configuration), and pre-linked into an
//! `InstancePre`. Each call gets a fresh `Store` from the pooling allocator
//! holding only its input, its context and its limits: fuel (handed out in
//! slices, between which the deadline is checked), memory, table, stack,
//! output and log caps. Its slices run in CPU slots shared fairly between
//! tenants. Nothing else of the host is reachable: no files, no
//! network, no clock but the call's start.
//!
//! Every call ends in exactly one [`OutcomeKind`], classified from
//! wasmtime's typed [`wasmtime::Trap`] and this crate's own host traps,
//! never from message text.

mod abi;
mod cache;
mod cancel;
mod compile;
mod config;
mod engine;
mod error;
mod fair;
mod host;
mod imports;
mod invoke;
mod js;
mod json;
mod validate;
mod wasi;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use aifn_types::{Context, EngineInfo, Limits, ModuleReport, OutcomeKind};
pub use cancel::CancelToken;
pub use config::RuntimeConfig;
pub use error::{Cause, ModuleError, RuntimeError, WasmError};
pub use invoke::{Execution, Invocation};
pub use js::{
    MAX_SOURCE_BYTES as MAX_JS_SOURCE_BYTES, current_engine_info as current_js_engine,
    embedded_engines as embedded_js_engines, is_package as is_javascript_package,
    package as javascript_package,
};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, InstancePre, Linker, Module, ModuleExport};

use crate::cache::{DiskCache, MemoryCache, Meta};
use crate::compile::CompileGate;
use crate::host::HostState;
use crate::imports::Importer;
use crate::invoke::Exits;
use crate::js::{Engines, JsEngine, Package};

/// A validated, compiled, pre-linked module, ready to instantiate. Cheap
/// to clone.
#[derive(Clone)]
pub struct LoadedModule(Arc<Loaded>);

struct Loaded {
    pre: InstancePre<HostState>,
    report: ModuleReport,
    call_export: ModuleExport,
    memory_export: ModuleExport,
    init_export: Option<ModuleExport>,
    /// A JavaScript function's bytecode, given to the engine's `aifn_js`.
    script: Option<Arc<[u8]>>,
    /// A JavaScript function's loaded heap, written into each instance.
    heap: Option<Arc<js::HeapImage>>,
    exits: Exits,
}

impl LoadedModule {
    /// What inspection found in the module.
    pub fn report(&self) -> &ModuleReport {
        &self.0.report
    }

    /// Lowercase hex sha256 of the module bytes.
    pub fn sha256(&self) -> &str {
        &self.0.report.sha256
    }
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("sha256", &self.0.report.sha256)
            .finish_non_exhaustive()
    }
}

/// The sandbox runtime: one engine, one linker and caches.
/// Share it across threads; calls are independent.
pub struct Runtime {
    config: RuntimeConfig,
    engine: Engine,
    linker: Linker<HostState>,
    gate: Arc<CompileGate>,
    /// The CPU slots calls' slices share, fairly between tenants.
    fair: fair::Fair,
    memory_cache: MemoryCache<LoadedModule>,
    disk_cache: Option<DiskCache>,
    counters: Counters,
    /// The JavaScript engines known and built (on first use), by sha256.
    js: Mutex<Engines>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counters describing the runtime's caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Compiled modules held in memory.
    pub cached_modules: usize,
    /// Loads answered from memory.
    pub memory_hits: u64,
    /// Loads answered from the disk cache.
    pub disk_hits: u64,
    /// Modules compiled.
    pub compiles: u64,
    /// Compilations running now, including ones abandoned after a
    /// `compile_timeout` that still hold a compile thread and its memory.
    pub compiling: usize,
}

#[derive(Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
}

impl Runtime {
    /// Builds the engine (pooling allocator, fuel in slices, allowed
    /// features), links ABI v1 and zero-capability WASI, and opens the disk
    /// cache if configured.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = engine::build(&config)?;
        let mut linker = Linker::new(&engine);
        abi::add_to_linker(&mut linker).map_err(RuntimeError::Engine)?;
        wasi::add_to_linker(&mut linker).map_err(RuntimeError::Engine)?;
        let disk_cache = match &config.cache_dir {
            Some(dir) => Some(DiskCache::open(dir, &engine, &config.limits)?),
            None => None,
        };
        Ok(Runtime {
            gate: CompileGate::new(config.max_concurrent_compiles, config.compile_threads)?,
            fair: fair::Fair::new(config.cpu_slots),
            memory_cache: MemoryCache::new(config.memory_cache_entries),
            config,
            engine,
            linker,
            disk_cache,
            counters: Counters::default(),
            js: Mutex::new(Engines::default()),
        })
    }

    /// The configuration, with the host maxima.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The host maxima.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Validates and inspects a module without compiling it. A JavaScript
    /// package is compiled to bytecode in the sandbox, which is how its
    /// syntax is checked.
    pub fn inspect(&self, bytes: &[u8]) -> Result<ModuleReport, ModuleError> {
        if Package::parse(bytes).is_some() {
            return self.load(bytes).map(|m| m.report().clone());
        }
        validate::validate(bytes, &self.config.limits).map(|v| v.report)
    }

    /// What the registry stores for a JavaScript source: the source with
    /// the sha256 of the engine this release runs new versions on, so a
    /// version is bound to both. Load it like any module.
    pub fn javascript(&self, source: &str) -> Result<Vec<u8>, ModuleError> {
        js::package(source)
    }

    /// Validates, compiles (within the compile deadline) and pre-links a
    /// module, or returns it from the caches.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedModule, ModuleError> {
        let limits = &self.config.limits;
        if bytes.len() as u64 > limits.module_bytes {
            return Err(ModuleError::TooLarge {
                size: bytes.len() as u64,
                limit: limits.module_bytes,
            });
        }
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(m) = self.memory_cache.get(&digest) {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(m);
        }
        if let Some(pkg) = Package::parse(bytes) {
            let pkg = pkg?;
            let loaded = self
                .js_engine(&pkg.engine_sha256)?
                .load(self, bytes, &pkg)?;
            self.memory_cache.insert(digest, loaded.clone());
            return Ok(loaded);
        }
        let sha256 = hex::encode(digest);
        if let Some(disk) = &self.disk_cache
            && let Some((module, meta)) = disk.load(&self.engine, &sha256)
            && let Ok(loaded) = self.prelink(&module, meta.report, meta.has_initialize)
        {
            self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
            self.memory_cache.insert(digest, loaded.clone());
            return Ok(loaded);
        }
        let validated = validate::validate(bytes, limits)?;
        let timeout = Duration::from_millis(limits.compile_timeout_ms);
        let module = compile::compile(&self.engine, &self.gate, bytes, timeout)?;
        self.counters.compiles.fetch_add(1, Ordering::Relaxed);
        let meta = Meta {
            report: validated.report,
            has_initialize: validated.has_initialize,
        };
        if let Some(disk) = &self.disk_cache {
            disk.store(&sha256, &module, &meta);
        }
        let loaded = self.prelink(&module, meta.report, meta.has_initialize)?;
        self.memory_cache.insert(digest, loaded.clone());
        Ok(loaded)
    }

    /// The JavaScript engine with this sha256, built once.
    pub(crate) fn js_engine(&self, sha: &[u8; 32]) -> Result<Arc<JsEngine>, ModuleError> {
        // Held while building: concurrent first uses wait for one build.
        let mut engines = self.js.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = engines.built(sha) {
            return Ok(e);
        }
        let (info, wasm) = engines
            .find(sha)
            .ok_or_else(|| ModuleError::UnknownEngine {
                sha256: hex::encode(sha),
            })?;
        let engine = Arc::new(JsEngine::build(self, info, &wasm)?);
        engines.add_built(engine.clone());
        Ok(engine)
    }

    /// The module of the JavaScript engine with this sha256 (lowercase
    /// hex), embedded or supplied: what an upload stores beside a
    /// JavaScript version so that it keeps running after an upgrade.
    pub fn js_engine_module(&self, sha256: &str) -> Option<Arc<[u8]>> {
        let sha: [u8; 32] = hex::decode(sha256).ok()?.try_into().ok()?;
        let engines = self.js.lock().unwrap_or_else(|p| p.into_inner());
        engines.find(&sha).map(|(_, wasm)| wasm)
    }

    /// Supplies an engine this release does not embed (an older release's,
    /// as the registry kept it), so versions approved on it run on it. The
    /// bytes must hash to `info.sha256`; they are validated as an engine
    /// when first used.
    pub fn supply_js_engine(&self, info: EngineInfo, wasm: &[u8]) -> Result<(), ModuleError> {
        let mut engines = self.js.lock().unwrap_or_else(|p| p.into_inner());
        engines.supply(info, wasm)
    }

    /// Validates (allowing `aifn_js`) and compiles aifn's own engine
    /// module, through the disk cache. The engine is a reviewed artifact:
    /// its caps are the host's, with room for its size and compile time.
    pub(crate) fn compile_engine(
        &self,
        bytes: &[u8],
    ) -> Result<(Module, ModuleReport), ModuleError> {
        let limits = Limits {
            module_bytes: self.config.limits.module_bytes.max(16 << 20),
            compile_timeout_ms: self.config.limits.compile_timeout_ms.max(120_000),
            ..self.config.limits
        };
        let sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(disk) = &self.disk_cache
            && let Some((module, meta)) = disk.load(&self.engine, &sha256)
        {
            self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((module, meta.report));
        }
        let validated = validate::validate_as(Importer::Engine, bytes, &limits)?;
        let timeout = Duration::from_millis(limits.compile_timeout_ms);
        let module = compile::compile(&self.engine, &self.gate, bytes, timeout)?;
        self.counters.compiles.fetch_add(1, Ordering::Relaxed);
        if let Some(disk) = &self.disk_cache {
            let meta = Meta {
                report: validated.report.clone(),
                has_initialize: false,
            };
            disk.store(&sha256, &module, &meta);
        }
        Ok((module, validated.report))
    }

    pub(crate) fn wasm_engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    fn prelink(
        &self,
        module: &wasmtime::Module,
        report: ModuleReport,
        has_initialize: bool,
    ) -> Result<LoadedModule, ModuleError> {
        let missing = |name: &'static str, expected: &'static str| ModuleError::MissingExport {
            name,
            expected,
        };
        let call_export = module
            .get_export_index("aifn_call")
            .ok_or(missing("aifn_call", "a function"))?;
        let memory_export = module
            .get_export_index("memory")
            .ok_or(missing("memory", "a memory"))?;
        let init_export = if has_initialize {
            module.get_export_index("_initialize")
        } else {
            None
        };
        // Validation already refused every import the linker lacks.
        let pre = self
            .linker
            .instantiate_pre(module)
            .map_err(|e| ModuleError::Compile(Cause::new(e)))?;
        Ok(LoadedModule(Arc::new(Loaded {
            pre,
            report,
            call_export,
            memory_export,
            init_export,
            script: None,
            heap: None,
            exits: Exits::Abi,
        })))
    }

    /// Runs one call in a fresh instance. Never panics because of the
    /// guest; every failure is an [`Execution`] with its kind.
    pub fn invoke(&self, module: &LoadedModule, invocation: &Invocation<'_>) -> Execution {
        invoke::invoke(self, module, invocation)
    }

    /// Cache counters.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            cached_modules: self.memory_cache.len(),
            memory_hits: self.counters.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.counters.disk_hits.load(Ordering::Relaxed),
            compiles: self.counters.compiles.load(Ordering::Relaxed),
            compiling: self.gate.running(),
        }
    }
}
