//! Shared pieces of aifn's benchmarks: the guest modules, the bare
//! wasmtime floor they are compared against, the native build of a real
//! example function, a service fixture and the result files.
//!
//! Every benchmark measures aifn beside its floor in the same run, so the
//! ratio holds even on a noisy machine. See BENCHMARKS.md at the top of
//! the repository for what each one measures and how to reproduce it.

// The native build of `functions/calculate_leave_days` names its SDK
// `aifn_guest`: this crate stands in for it (see [`leave`]).
extern crate self as aifn_guest;

pub mod guests;
pub mod http;
pub mod leave;
pub mod pgstat;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aifn_service::{Principal, Service, ServiceConfig, TenantLimits, UploadRequest, VersionInfo};
use aifn_types::{AgentPolicy, FunctionPattern, Manifest, Role, Subject, TenantId};
use wasmtime::{
    Caller, Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Memory,
    Module, ModuleExport, PoolingAllocationConfig, Store, UpdateDeadline,
};

pub use guests::{ECHO_INPUT, ECHO_WAT};
#[doc(hidden)]
pub use leave::guest::{Context, FunctionError};

/// The SDK's `log` module, as the native build of a guest sees it.
#[doc(hidden)]
pub mod log {
    pub use crate::__guest_debug as debug;
}

/// Compiles WAT to wasm bytes.
pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap_or_else(|e| panic!("benchmark WAT is invalid: {e}"))
}

/// The folder of the built example functions: `$AIFN_WASM_DIR`, else
/// `$CARGO_TARGET_DIR/wasm` (absolute), else `<repo>/target/wasm`.
pub fn wasm_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIFN_WASM_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_absolute() => t.join("wasm"),
        _ => repo_root().join("target/wasm"),
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The bytes of a built example function, e.g. `calculate_leave_days`.
/// Panics with the command to run when it has not been built.
pub fn example_wasm(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}). Build the example functions first: `cargo xtask build-functions` \
             (or point AIFN_WASM_DIR at a folder of built modules)",
            path.display()
        )
    })
}

/// Where results are written: `$AIFN_BENCH_RESULTS`, else `benches/results`.
pub fn results_dir() -> PathBuf {
    std::env::var_os("AIFN_BENCH_RESULTS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results"))
}

/// Writes `value` as pretty JSON to `results_dir()/name`.
pub fn save_json(name: &str, value: &serde_json::Value) {
    let dir = results_dir();
    let path = dir.join(name);
    let write = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap_or_default()));
    match write {
        Ok(()) => eprintln!("results written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

/// Resident set size of this process, in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A directory on tmpfs (`/dev/shm`), where fsync costs nothing: the audit
/// record is still written, hashed and committed, but not waited on a disk.
pub fn tmpfs_dir(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let b = tempfile::Builder::new().prefix(prefix).to_owned();
    if shm.is_dir() {
        b.tempdir_in(shm)
    } else {
        b.tempdir()
    }
    .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

/// A directory on the disk the repository lives on (under `target/`),
/// where each audit commit waits for a real fsync.
pub fn disk_dir(prefix: &str) -> tempfile::TempDir {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| repo_root().join("target"))
        .join("bench-data");
    std::fs::create_dir_all(&base)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

/// Host state of the floor: the input, context and output buffers, the
/// memory, and the deadline the epoch callback checks.
pub struct FloorState {
    input: Vec<u8>,
    context: Vec<u8>,
    output: Vec<u8>,
    memory: Option<Memory>,
    deadline: Instant,
}

/// Which interruption mechanisms a floor engine compiles in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metering {
    /// Neither: the code runs uninstrumented.
    None,
    /// Epoch interruption only (a wall-clock deadline, checked at function
    /// entries and loop headers against a 1 ms ticker).
    Epoch,
    /// Fuel only (a deterministic instruction budget).
    Fuel,
    /// Fuel and epoch interruption: aifn's configuration.
    Both,
}

impl Metering {
    /// Every variant, in report order.
    pub const ALL: [Metering; 4] = [
        Metering::None,
        Metering::Epoch,
        Metering::Fuel,
        Metering::Both,
    ];

    /// The benchmark id of the variant.
    pub fn name(self) -> &'static str {
        match self {
            Metering::None => "none",
            Metering::Epoch => "epoch",
            Metering::Fuel => "fuel",
            Metering::Both => "fuel+epoch",
        }
    }

    fn fuel(self) -> bool {
        matches!(self, Metering::Fuel | Metering::Both)
    }

    fn epoch(self) -> bool {
        matches!(self, Metering::Epoch | Metering::Both)
    }
}

/// Advances an engine's epoch every millisecond until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let weak = engine.weak();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => break,
                }
            }
        });
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The context JSON the floor hands the guest (what aifn's `Context::local`
/// serializes to, so guests that read it see the same bytes).
const FLOOR_CONTEXT: &[u8] = br#"{"tenant_id":"local","agent_id":"local","user_id":"local","function":"local","version":"local","execution_id":"local"}"#;

/// Bare wasmtime done well: the same pooling allocator tuning as aifn
/// (warm slots, 128 KiB kept resident), `InstancePre`, exports resolved by
/// index, a fresh store per call, host functions that copy bytes and
/// nothing else (no limits, no JSON checks, no context built per call,
/// logs dropped). By default no fuel and no epoch either; see
/// [`Floor::with_metering`].
pub struct Floor {
    engine: Engine,
    pre: InstancePre<FloorState>,
    call: ModuleExport,
    memory: ModuleExport,
    metering: Metering,
    _ticker: Option<EpochTicker>,
}

/// What `input_read` and `context_read` do in the floor: copy the bytes
/// `pick` selects from the call's state to `dst` in guest memory.
fn copy_to_guest(
    mut c: Caller<'_, FloorState>,
    dst: i32,
    pick: fn(&FloorState) -> &[u8],
) -> wasmtime::Result<()> {
    let mem = c
        .data()
        .memory
        .ok_or_else(|| wasmtime::format_err!("no memory"))?;
    let (data, state) = mem.data_and_store_mut(&mut c);
    let bytes = pick(state);
    let dst = dst as u32 as usize;
    data.get_mut(dst..dst + bytes.len())
        .ok_or_else(|| wasmtime::format_err!("oob"))?
        .copy_from_slice(bytes);
    Ok(())
}

impl Floor {
    /// Builds the floor for an ABI v1 module, uninstrumented.
    pub fn new(wasm: &[u8]) -> wasmtime::Result<Floor> {
        Floor::with_metering(wasm, Metering::None)
    }

    /// Builds the floor with fuel and/or epoch instrumentation compiled in
    /// (and, for epochs, a 1 ms ticker and aifn's deadline callback).
    pub fn with_metering(wasm: &[u8], metering: Metering) -> wasmtime::Result<Floor> {
        let mut config = Config::new();
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(64)
            .total_memories(64)
            .total_tables(64)
            .max_memory_size(64 << 20)
            .linear_memory_keep_resident(128 * 1024)
            .table_keep_resident(64 * 1024);
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .consume_fuel(metering.fuel())
            .epoch_interruption(metering.epoch());
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        linker.func_wrap("aifn", "input_len", |c: Caller<'_, FloorState>| {
            c.data().input.len() as i32
        })?;
        linker.func_wrap(
            "aifn",
            "input_read",
            |c: Caller<'_, FloorState>, dst: i32| copy_to_guest(c, dst, |s| &s.input),
        )?;
        linker.func_wrap("aifn", "context_len", |c: Caller<'_, FloorState>| {
            c.data().context.len() as i32
        })?;
        linker.func_wrap(
            "aifn",
            "context_read",
            |c: Caller<'_, FloorState>, dst: i32| copy_to_guest(c, dst, |s| &s.context),
        )?;
        linker.func_wrap(
            "aifn",
            "output_write",
            |mut c: Caller<'_, FloorState>, src: i32, len: i32| {
                let mem = c
                    .data()
                    .memory
                    .ok_or_else(|| wasmtime::format_err!("no memory"))?;
                let (data, state) = mem.data_and_store_mut(&mut c);
                let (src, len) = (src as u32 as usize, len as u32 as usize);
                state.output = data
                    .get(src..src + len)
                    .ok_or_else(|| wasmtime::format_err!("oob"))?
                    .to_vec();
                Ok(())
            },
        )?;
        linker.func_wrap(
            "aifn",
            "log",
            |_: Caller<'_, FloorState>, _level: i32, _src: i32, _len: i32| {},
        )?;
        let module = Module::new(&engine, wasm)?;
        let call = module
            .get_export_index("aifn_call")
            .ok_or_else(|| wasmtime::format_err!("no aifn_call"))?;
        let memory = module
            .get_export_index("memory")
            .ok_or_else(|| wasmtime::format_err!("no memory"))?;
        let pre = linker.instantiate_pre(&module)?;
        let ticker = metering.epoch().then(|| EpochTicker::start(&engine));
        Ok(Floor {
            engine,
            pre,
            call,
            memory,
            metering,
            _ticker: ticker,
        })
    }

    /// One call: instantiate and call `aifn_call`, return the output.
    pub fn call(&self, input: &[u8]) -> wasmtime::Result<Vec<u8>> {
        let state = FloorState {
            input: input.to_vec(),
            context: FLOOR_CONTEXT.to_vec(),
            output: Vec::new(),
            memory: None,
            deadline: Instant::now() + Duration::from_secs(10),
        };
        let mut store = Store::new(&self.engine, state);
        if self.metering.fuel() {
            store.set_fuel(1 << 40)?;
        }
        if self.metering.epoch() {
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(|ctx| {
                if Instant::now() >= ctx.data().deadline {
                    Ok(UpdateDeadline::Interrupt)
                } else {
                    Ok(UpdateDeadline::Continue(1))
                }
            });
        }
        let instance = self.pre.instantiate(&mut store)?;
        if let Some(Extern::Memory(m)) = instance.get_module_export(&mut store, &self.memory) {
            store.data_mut().memory = Some(m);
        }
        let f = instance
            .get_module_export(&mut store, &self.call)
            .and_then(Extern::into_func)
            .ok_or_else(|| wasmtime::format_err!("no aifn_call"))?;
        f.typed::<(), i32>(&store)?.call(&mut store, ())?;
        Ok(store.into_data().output)
    }
}

/// A principal as the registry would return it for a key (benchmarks act
/// in-process and skip key authentication).
pub fn principal(tenant: &str, role: Role, subject: &str) -> Principal {
    Principal {
        key_id: format!("bench-{tenant}-{subject}"),
        tenant: TenantId::new(tenant).unwrap_or_else(|e| panic!("tenant {tenant}: {e}")),
        role,
        subject: Subject::new(subject).unwrap_or_else(|e| panic!("subject {subject}: {e}")),
    }
}

/// Lets `agent` of `tenant` invoke every function (agents are denied by
/// default), as the tenant's admin would.
pub fn grant_all(service: &Service, tenant: &str, agent: &str) {
    let policy = AgentPolicy {
        allow: vec![FunctionPattern::new("*").unwrap_or_else(|e| panic!("pattern: {e}"))],
        ..AgentPolicy::default()
    };
    let subject = Subject::new(agent).unwrap_or_else(|e| panic!("subject {agent}: {e}"));
    service
        .set_policy(&principal(tenant, Role::Admin, "root"), &subject, policy)
        .unwrap_or_else(|e| panic!("policy for {agent}: {e}"));
}

/// A manifest accepting any JSON object.
pub fn object_manifest() -> Manifest {
    serde_json::from_value(serde_json::json!({
        "description": "benchmark function",
        "input_schema": {"type": "object"}
    }))
    .unwrap_or_else(|e| panic!("manifest: {e}"))
}

/// The service configuration of the in-process benchmarks: defaults, but
/// admission wide open (no tenant rate or concurrency refusals), so the
/// benchmark measures calls, not 429s.
pub fn bench_service_config(dir: &Path) -> ServiceConfig {
    ServiceConfig {
        data_dir: dir.to_path_buf(),
        node: Some("bench".into()),
        tenant: TenantLimits {
            rate_per_second: 1e12,
            burst: u32::MAX,
            max_concurrent: 4096,
            ..TenantLimits::default()
        },
        max_concurrent: 64,
        ..ServiceConfig::default()
    }
}

/// A service on a data dir, with an author, an approver and an agent of
/// tenant `acme`.
pub struct ServiceFixture {
    /// The service.
    pub service: Service,
    /// Uploads.
    pub author: Principal,
    /// Approves.
    pub approver: Principal,
    /// Invokes.
    pub agent: Principal,
}

impl ServiceFixture {
    /// Opens a service with `config`.
    pub fn open(config: ServiceConfig) -> ServiceFixture {
        let service = Service::open(config).unwrap_or_else(|e| panic!("service opens: {e}"));
        ServiceFixture::with(service)
    }

    /// The benchmark baseline: the same service writing no invocation
    /// records (registry actions are still recorded).
    pub fn open_unaudited(config: ServiceConfig) -> ServiceFixture {
        let service = Service::open_unaudited_baseline(config)
            .unwrap_or_else(|e| panic!("service opens: {e}"));
        ServiceFixture::with(service)
    }

    fn with(service: Service) -> ServiceFixture {
        grant_all(&service, "acme", "bot");
        ServiceFixture {
            service,
            author: principal("acme", Role::Author, "alice"),
            approver: principal("acme", Role::Approver, "bob"),
            agent: principal("acme", Role::Agent, "bot"),
        }
    }

    /// Uploads and approves `module` as `name` in the fixture's tenant.
    pub fn deploy(&self, name: &str, module: Vec<u8>, manifest: Manifest) -> VersionInfo {
        deploy(
            &self.service,
            &self.author,
            &self.approver,
            name,
            module,
            manifest,
        )
    }
}

/// Uploads and approves `module` as `name`.
pub fn deploy(
    service: &Service,
    author: &Principal,
    approver: &Principal,
    name: &str,
    module: Vec<u8>,
    manifest: Manifest,
) -> VersionInfo {
    let v = service
        .upload(
            author,
            UploadRequest {
                name: name.into(),
                manifest,
                module,
                source: None,
            },
        )
        .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    service
        .decide(
            approver,
            (name, v.version),
            aifn_service::Decision::Approve { sha256: &v.sha256 },
            "benchmark",
        )
        .unwrap_or_else(|e| panic!("approve {name}: {e}"))
}

/// `wasm` with a custom section appended: the same code under another
/// sha256, so caches keyed by the hash miss and it is compiled anew.
pub fn with_custom_section(wasm: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = wasm.to_vec();
    out.push(0);
    leb(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}
