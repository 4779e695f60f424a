//! Integration tests of the registry, one binary (see the modules).
//!
//! `fixture()` opens the backend `AIFN_TEST_BACKEND` names (`sqlite`, the
//! default, or `postgres`: a real server of this process, see
//! `aifn_test_support::postgres_url`), so the same tests run against both;
//! tests about SQLite itself call `sqlite_fixture()`, and the `postgres`
//! module's tests always run against PostgreSQL.

mod approval;
mod crash;
mod keys;
mod policies;
mod postgres;
mod refusals;
mod source_and_tests;
mod state_machine;
mod storage;
mod tenancy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aifn_registry::{
    AuditSink, Principal, Registry, RegistryOptions, SinkError, Upload, VersionInfo, VersionRef,
};
use aifn_types::{
    FunctionName, Limits, Manifest, ModuleReport, RegistryAction, Role, Subject, TenantId,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The variable that picks the backend of `fixture()`.
const BACKEND_ENV: &str = "AIFN_TEST_BACKEND";

/// A registry in a fresh store, whose records `audit` keeps: a SQLite file
/// in a temporary directory (kept alive with it), or a fresh PostgreSQL
/// database.
pub(crate) struct Fixture {
    pub(crate) dir: TempDir,
    pub(crate) reg: Registry,
    pub(crate) audit: Arc<Recorder>,
    /// The PostgreSQL database's URL; `None` on SQLite.
    pub(crate) url: Option<String>,
}

/// A fixture on the backend `AIFN_TEST_BACKEND` names.
pub(crate) fn fixture() -> Fixture {
    match std::env::var(BACKEND_ENV).as_deref() {
        Err(_) | Ok("" | "sqlite") => sqlite_fixture(),
        Ok("postgres") => postgres_fixture(),
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected sqlite or postgres"),
    }
}

/// A fixture on SQLite, whatever the variable says: for tests about SQLite
/// itself (its file, its pragmas, raw SQL through rusqlite).
pub(crate) fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = Arc::new(Recorder::default());
    let reg = Registry::open(dir.path(), Arc::clone(&audit)).expect("open registry");
    Fixture {
        dir,
        reg,
        audit,
        url: None,
    }
}

/// A fixture on a fresh PostgreSQL database.
pub(crate) fn postgres_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = aifn_test_support::postgres_url();
    let audit = Arc::new(Recorder::default());
    let reg = Registry::open_postgres(&url, &RegistryOptions::default(), Arc::clone(&audit))
        .expect("open registry on PostgreSQL");
    Fixture {
        dir,
        reg,
        audit,
        url: Some(url),
    }
}

impl Fixture {
    /// Another registry on the same store: a second process on the SQLite
    /// file, a second node on the PostgreSQL database.
    pub(crate) fn reopen(&self, audit: impl AuditSink + 'static) -> Registry {
        match &self.url {
            None => Registry::open(self.dir.path(), audit).expect("reopen registry"),
            Some(url) => Registry::open_postgres(url, &RegistryOptions::default(), audit)
                .expect("reopen registry on PostgreSQL"),
        }
    }

    /// Checks the invariants every store must hold, with raw SQL.
    pub(crate) fn check_invariants(&self) {
        match &self.url {
            None => storage::check_invariants(&storage::raw(&self.reg)),
            Some(url) => postgres::check_invariants(url),
        }
    }

    /// One number from raw SQL that both dialects read alike.
    pub(crate) fn count(&self, sql: &str) -> i64 {
        match &self.url {
            None => storage::raw(&self.reg)
                .query_row(sql, [], |r| r.get(0))
                .expect(sql),
            Some(url) => postgres::scalar(url, sql),
        }
    }
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
