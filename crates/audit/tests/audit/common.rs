use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aifn_audit::{AuditConfig, AuditLog, ExecutionRecord};
use aifn_types::{
    AuditTarget, OutcomeKind, RegistryAction, RegistryActionKind, RunKind, Subject, TenantId,
};
use sha2::{Digest, Sha256};

/// 2026-11-22T10:00:00.000Z
pub(crate) const T0_MS: u64 = 1_795_341_600_000;

pub(crate) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0_MS)
}

/// The variable that picks the backend of `config()`.
const BACKEND_ENV: &str = "AIFN_TEST_BACKEND";

/// True when `AIFN_TEST_BACKEND` asks for PostgreSQL.
pub(crate) fn on_postgres() -> bool {
    match std::env::var(BACKEND_ENV).as_deref() {
        Err(_) | Ok("" | "sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected sqlite or postgres"),
    }
}

/// A config with count-based checkpoints only (no timers in tests), on
/// the backend `AIFN_TEST_BACKEND` names: the files in `dir` and, on
/// PostgreSQL, the records in a fresh database.
pub(crate) fn config(dir: &Path, every: u64) -> AuditConfig {
    let mut cfg = sqlite_config(dir, every);
    if on_postgres() {
        cfg.postgres = Some(
            aifn_test_support::postgres_url()
                .parse()
                .expect("test database URL"),
        );
    }
    cfg
}

/// [`config`] on SQLite whatever the variable says: for tests of SQLite
/// itself (its file, its size cap, databases older releases wrote).
pub(crate) fn sqlite_config(dir: &Path, every: u64) -> AuditConfig {
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
        run: RunKind::Invocation,
        test_name: None,
        replay_of: None,
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
        override_failing_tests: false,
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

/// The log's database opened behind its back, on either backend, for
/// tests that read or tamper with rows. Statements are SQLite's dialect
/// where the two agree, with `?N` parameters (`$N` on PostgreSQL).
pub(crate) enum Raw {
    Sqlite(rusqlite::Connection),
    Postgres(tokio::runtime::Runtime, tokio_postgres::Client),
}

/// A statement parameter, as rusqlite's `params!` gives it.
pub(crate) type Param<'a> = &'a dyn rusqlite::ToSql;

/// The SQLite file itself, for tests of SQLite only (`sqlite_config`).
pub(crate) fn sqlite_db(cfg: &AuditConfig) -> rusqlite::Connection {
    assert!(cfg.postgres.is_none(), "an SQLite-only test on PostgreSQL");
    rusqlite::Connection::open(&cfg.db_path).expect("open raw db")
}

pub(crate) fn db(cfg: &AuditConfig) -> Raw {
    let Some(url) = &cfg.postgres else {
        return Raw::Sqlite(rusqlite::Connection::open(&cfg.db_path).expect("open raw db"));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    });
    Raw::Postgres(rt, client)
}

/// rusqlite's value of a parameter, as a PostgreSQL one.
fn pg_value(p: Param<'_>) -> Box<dyn tokio_postgres::types::ToSql + Sync> {
    use rusqlite::types::{ToSqlOutput, Value, ValueRef};
    match p.to_sql().expect("parameter") {
        ToSqlOutput::Borrowed(ValueRef::Integer(i)) | ToSqlOutput::Owned(Value::Integer(i)) => {
            Box::new(i)
        }
        ToSqlOutput::Borrowed(ValueRef::Text(t)) => {
            Box::new(String::from_utf8_lossy(t).into_owned())
        }
        ToSqlOutput::Owned(Value::Text(t)) => Box::new(t),
        ToSqlOutput::Borrowed(ValueRef::Null) | ToSqlOutput::Owned(Value::Null) => {
            Box::new(Option::<String>::None)
        }
        other => panic!("unsupported parameter {other:?}"),
    }
}

/// `?N` placeholders as PostgreSQL's `$N`.
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl Raw {
    /// Runs one statement; the rows it changed.
    pub(crate) fn execute(&self, sql: &str, p: &[Param<'_>]) -> Result<usize, String> {
        match self {
            Raw::Sqlite(c) => c.execute(sql, p).map_err(|e| e.to_string()),
            Raw::Postgres(rt, c) => {
                let values: Vec<_> = p.iter().map(|v| pg_value(*v)).collect();
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    values.iter().map(|b| &**b).collect();
                rt.block_on(c.execute(&dollars(sql), &refs))
                    .map(|n| n as usize)
                    .map_err(|e| format!("{e:?}"))
            }
        }
    }

    /// Runs several statements, in one session.
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<(), String> {
        match self {
            Raw::Sqlite(c) => c.execute_batch(sql).map_err(|e| e.to_string()),
            Raw::Postgres(rt, c) => rt.block_on(c.batch_execute(sql)).map_err(|e| e.to_string()),
        }
    }

    /// Every row, each column as text (integers in decimal).
    pub(crate) fn rows(&self, sql: &str, p: &[Param<'_>]) -> Result<Vec<Vec<String>>, String> {
        match self {
            Raw::Sqlite(c) => {
                let mut stmt = c.prepare(sql).map_err(|e| e.to_string())?;
                let n = stmt.column_count();
                stmt.query_map(p, |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                                rusqlite::types::ValueRef::Text(t) => {
                                    String::from_utf8_lossy(t).into_owned()
                                }
                                rusqlite::types::ValueRef::Null => String::new(),
                                other => format!("{other:?}"),
                            })
                        })
                        .collect()
                })
                .map_err(|e| e.to_string())?
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())
            }
            Raw::Postgres(rt, c) => {
                let values: Vec<_> = p.iter().map(|v| pg_value(*v)).collect();
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    values.iter().map(|b| &**b).collect();
                let rows = rt
                    .block_on(c.query(&dollars(sql), &refs))
                    .map_err(|e| format!("{e:?}"))?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match r.try_get::<_, Option<i64>>(i) {
                                Ok(v) => v.map(|v| v.to_string()).unwrap_or_default(),
                                Err(_) => r
                                    .try_get::<_, Option<String>>(i)
                                    .ok()
                                    .flatten()
                                    .unwrap_or_default(),
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }

    /// The first row.
    pub(crate) fn row(&self, sql: &str, p: &[Param<'_>]) -> Result<Vec<String>, String> {
        self.rows(sql, p)?
            .into_iter()
            .next()
            .ok_or_else(|| format!("no row: {sql}"))
    }

    /// The first column of the first row.
    pub(crate) fn one(&self, sql: &str, p: &[Param<'_>]) -> Result<String, String> {
        Ok(self.row(sql, p)?.swap_remove(0))
    }
}

pub(crate) fn signing_key(cfg: &AuditConfig) -> ed25519_dalek::SigningKey {
    let text = std::fs::read_to_string(&cfg.signing_key_path).expect("read key");
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).expect("hex key");
    ed25519_dalek::SigningKey::from_bytes(&secret)
}

pub(crate) fn public_key(cfg: &AuditConfig) -> [u8; 32] {
    signing_key(cfg).verifying_key().to_bytes()
}

/// The chain hash of format 2 (every record appended since migration 3),
/// computed independently of the crate: the body's digest is chained.
pub(crate) fn chain_hash(prev_hex: &str, seq: u64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(hex::decode(prev_hex).expect("hex"));
    h.update(seq.to_be_bytes());
    h.update(Sha256::digest(body.as_bytes()));
    hex::encode(h.finalize())
}

/// The chain hash of format 1 (records made before migration 3).
pub(crate) fn chain_hash_v1(prev_hex: &str, seq: u64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(hex::decode(prev_hex).expect("hex"));
    h.update(seq.to_be_bytes());
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// The schema as the release before chain format 2 left it (migrations 1
/// and 2, `user_version` 2), copied so the fixture does not depend on the
/// crate's current migrations.
const SCHEMA_V2: &str = "CREATE TABLE audit_entries (
        seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, tenant_id TEXT,
        time_ms BIGINT NOT NULL, function TEXT, agent_id TEXT, user_id TEXT,
        outcome TEXT, execution_id TEXT, body TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE INDEX audit_entries_tenant ON audit_entries (tenant_id, seq);
    CREATE TABLE audit_captures (seq BIGINT PRIMARY KEY, tenant_id TEXT NOT NULL,
        execution_id TEXT NOT NULL, input BLOB NOT NULL, output BLOB,
        expires_ms BIGINT NOT NULL);
    CREATE INDEX audit_captures_execution ON audit_captures (tenant_id, execution_id);
    CREATE INDEX audit_captures_expiry ON audit_captures (expires_ms);
    CREATE INDEX audit_entries_host ON audit_entries (stream, seq) WHERE tenant_id IS NULL;
    PRAGMA user_version = 2;";

/// A database as the previous release wrote it: execution records of the
/// given tenants (one per entry, in order), chained with format 1, with
/// bodies and columns as the log writes them.
pub(crate) fn legacy_db(cfg: &AuditConfig, tenants: &[&str]) {
    std::fs::create_dir_all(cfg.db_path.parent().expect("parent")).expect("mkdir");
    let conn = rusqlite::Connection::open(&cfg.db_path).expect("create db");
    conn.execute_batch(SCHEMA_V2).expect("schema v2");
    let mut prev = "00".repeat(32);
    for (i, t) in tenants.iter().enumerate() {
        let seq = i as u64 + 1;
        let mut rec = exec(t, "leave_days", seq);
        rec.node = cfg.node.clone();
        let mut v = serde_json::to_value(&rec).expect("json");
        v["stream"] = "execution".into();
        let body = canonical(&v);
        let hash = chain_hash_v1(&prev, seq, &body);
        conn.execute(
            "INSERT INTO audit_entries (seq, stream, tenant_id, time_ms, function, agent_id,
                user_id, outcome, execution_id, body, prev_hash, hash)
             VALUES (?1, 'execution', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            rusqlite::params![
                seq as i64,
                rec.tenant_id,
                rec.time.unix_ms(),
                rec.function,
                rec.agent_id,
                rec.user_id,
                rec.outcome.as_str(),
                rec.execution_id,
                body,
                prev,
                hash
            ],
        )
        .expect("legacy row");
        prev = hash;
    }
}

/// Canonical JSON as the log writes it: keys sorted, no whitespace.
pub(crate) fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(k).expect("key"),
                        canonical(&map[k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => serde_json::to_string(other).expect("json"),
    }
}

pub(crate) fn checkpoint_lines(cfg: &AuditConfig) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&cfg.checkpoint_path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("checkpoint json"))
        .collect()
}
