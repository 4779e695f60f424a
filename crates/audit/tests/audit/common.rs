use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aifn_audit::{AuditConfig, AuditLog, ExecutionRecord};
use aifn_types::{AuditTarget, OutcomeKind, RegistryAction, RegistryActionKind, Subject, TenantId};
use sha2::{Digest, Sha256};

/// 2026-11-22T10:00:00.000Z
pub(crate) const T0_MS: u64 = 1_795_341_600_000;

pub(crate) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0_MS)
}

/// A config with count-based checkpoints only (no timers in tests).
pub(crate) fn config(dir: &Path, every: u64) -> AuditConfig {
    let mut cfg = AuditConfig::in_dir(dir, "node-1");
    cfg.checkpoint_every_records = every;
    cfg.checkpoint_interval = Duration::ZERO;
    cfg
}

pub(crate) fn open(cfg: &AuditConfig) -> AuditLog {
    AuditLog::open(cfg.clone()).expect("open audit log")
}

pub(crate) fn exec(tenant: &str, function: &str, i: u64) -> ExecutionRecord {
    let mut rec = ExecutionRecord {
        execution_id: format!("{tenant}-{function}-{i:04}"),
        time: (t0() + Duration::from_secs(i)).into(),
        tenant_id: tenant.into(),
        agent_id: format!("agent-{}", i % 2),
        user_id: "user-1".into(),
        function: function.into(),
        version: Some(1),
        module_sha256: Some("ab".repeat(32)),
        outcome: if i.is_multiple_of(3) {
            OutcomeKind::FuelExhausted
        } else {
            OutcomeKind::Ok
        },
        error_message: None,
        duration_ms: 1.5,
        fuel_used: 1000 + i,
        memory_peak_bytes: 65536,
        input_sha256: String::new(),
        input_size: 0,
        output_sha256: None,
        output_size: 0,
        input_summary: serde_json::Value::Null,
        node: String::new(),
        admission: None,
        findings: Vec::new(),
        traceparent: None,
        cancelled: false,
    };
    rec.set_input(format!(r#"{{"days":{i},"name":"secret-{i}"}}"#).as_bytes());
    rec.set_output(Some(br#"{"ok":true}"#));
    rec
}

pub(crate) fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

/// A registry action; `target` as records write it (`name@version`, ...).
pub(crate) fn registry(
    tenant_id: &str,
    action: RegistryActionKind,
    target: &str,
) -> RegistryAction {
    RegistryAction {
        tenant_id: tenant(tenant_id),
        actor: Subject::new("alice").expect("actor"),
        action,
        target: AuditTarget::parse(action, target).expect("target"),
        sha256: Some("cd".repeat(32)),
        notes: Some("looks fine".into()),
        refused: None,
        before: None,
        after: None,
    }
}

/// Appends `n` execution records for tenant `t` one at a time; returns the seqs.
pub(crate) fn fill(log: &AuditLog, tenant: &str, n: u64) -> Vec<u64> {
    (0..n)
        .map(|i| {
            log.record_execution(exec(tenant, "leave_days", i), None)
                .expect("record")
                .seq
        })
        .collect()
}

pub(crate) fn db(cfg: &AuditConfig) -> rusqlite::Connection {
    rusqlite::Connection::open(&cfg.db_path).expect("open raw db")
}

pub(crate) fn public_key(cfg: &AuditConfig) -> [u8; 32] {
    let text = std::fs::read_to_string(&cfg.signing_key_path).expect("read key");
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).expect("hex key");
    ed25519_dalek::SigningKey::from_bytes(&secret)
        .verifying_key()
        .to_bytes()
}

/// The chain hash, computed independently of the crate.
pub(crate) fn chain_hash(prev_hex: &str, seq: u64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(hex::decode(prev_hex).expect("hex"));
    h.update(seq.to_be_bytes());
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

pub(crate) fn checkpoint_lines(cfg: &AuditConfig) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&cfg.checkpoint_path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("checkpoint json"))
        .collect()
}
