//! Integration tests of the registry, one binary (see the modules).

mod approval;
mod crash;
mod keys;
mod policies;
mod refusals;
mod source_and_tests;
mod state_machine;
mod storage;
mod tenancy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aifn_registry::{AuditSink, Principal, Registry, SinkError, Upload, VersionInfo, VersionRef};
use aifn_types::{
    FunctionName, Limits, Manifest, ModuleReport, RegistryAction, Role, Subject, TenantId,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// A registry in a fresh temporary directory (kept alive with it), whose
/// records `audit` keeps.
pub(crate) struct Fixture {
    pub(crate) dir: TempDir,
    pub(crate) reg: Registry,
    pub(crate) audit: Arc<Recorder>,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = Arc::new(Recorder::default());
    let reg = Registry::open(dir.path(), Arc::clone(&audit)).expect("open registry");
    Fixture { dir, reg, audit }
}

pub(crate) fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

pub(crate) fn fname(s: &str) -> FunctionName {
    FunctionName::new(s).expect("function name")
}

pub(crate) fn subject(s: &str) -> Subject {
    Subject::new(s).expect("subject")
}

pub(crate) fn principal(t: &str, role: Role, who: &str) -> Principal {
    Principal {
        key_id: format!("key-{who}"),
        tenant: tenant(t),
        role,
        subject: subject(who),
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Distinct stand-in module bytes (the registry does not parse wasm).
pub(crate) fn module(seed: &str) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend_from_slice(seed.as_bytes());
    m
}

/// A report on exactly `bytes`.
pub(crate) fn report_for(bytes: &[u8]) -> ModuleReport {
    ModuleReport {
        sha256: sha256_hex(bytes),
        size_bytes: bytes.len() as u64,
        imports: vec![],
        exports: vec![],
        memory: None,
        table: None,
        function_count: 1,
        code_size_bytes: bytes.len() as u64 / 2,
        largest_function_bytes: 1,
        features: vec![],
        uses_wasi: false,
        has_start: false,
        script: None,
    }
}

pub(crate) fn manifest(description: &str) -> Manifest {
    Manifest {
        description: description.to_owned(),
        input_schema: serde_json::json!({"type": "object"}),
        output_schema: None,
        limits: Default::default(),
        capture: None,
        output_guard: None,
        tests: Vec::new(),
    }
}

/// Accepts every record and does nothing (tests only).
pub(crate) struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _: &RegistryAction) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Keeps every record, or refuses them all while `fail(true)`.
#[derive(Default)]
pub(crate) struct Recorder {
    records: Mutex<Vec<RegistryAction>>,
    failing: AtomicBool,
}

impl Recorder {
    /// The records kept since the last `take`.
    pub(crate) fn take(&self) -> Vec<RegistryAction> {
        std::mem::take(&mut *self.records.lock().expect("recorder lock"))
    }

    /// From now on refuses (`true`) or keeps (`false`) every record.
    pub(crate) fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl AuditSink for Recorder {
    fn record(&self, action: &RegistryAction) -> Result<(), SinkError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("audit disk unavailable".into());
        }
        self.records
            .lock()
            .expect("recorder lock")
            .push(action.clone());
        Ok(())
    }
}

pub(crate) fn upload_bytes(
    reg: &Registry,
    author: &Principal,
    name: &str,
    bytes: &[u8],
) -> VersionInfo {
    let up = Upload {
        name: fname(name),
        manifest: manifest("test function"),
        module: bytes,
        report: report_for(bytes),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    reg.upload(author, up, &Limits::default()).expect("upload")
}

pub(crate) fn upload(reg: &Registry, author: &Principal, name: &str, seed: &str) -> VersionInfo {
    upload_bytes(reg, author, name, &module(seed))
}

pub(crate) fn target(v: &VersionInfo) -> VersionRef {
    VersionRef {
        tenant: v.tenant.clone(),
        name: v.name.clone(),
        version: v.version,
    }
}

pub(crate) fn approve(reg: &Registry, approver: &Principal, v: &VersionInfo) -> VersionInfo {
    reg.approve(
        approver,
        &target(v),
        &v.sha256,
        "looked at every import",
        false,
    )
    .expect("approve")
}
