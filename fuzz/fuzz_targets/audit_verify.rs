//! Audit verification of mutated logs. A small valid audit log (execution,
//! registry and security records of two tenants, a prune, signed
//! checkpoints, closed) is copied afresh for every input; fuzz-chosen
//! mutations are applied to its SQLite rows (edit, retype, null, delete,
//! duplicate, renumber, swap, rehash the chain like an attacker who knows
//! the formula), to the raw database file, and to the checkpoint file; then
//! `aifn_audit::verify` runs with the trusted public key.
//!
//! The property: a mutation that is a no-op (the same typed rows, the same
//! checkpoint bytes and no raw change to the database file) always
//! verifies; any other mutation verifies only if no record covered by a
//! trusted checkpoint changed. That last clause is the documented limit of
//! a log verified from its own files: records after the newest surviving
//! checkpoint are chained but not signed, so deleting the newest checkpoint
//! lines uncovers the tail (see SECURITY.md). Everything a trusted
//! checkpoint covers must be byte-identical, or verification fails.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aifn_audit::{AuditConfig, AuditLog, ExecutionRecord, SecurityEvent, SecurityReason, verify};
use aifn_types::{AuditTarget, FunctionName, OutcomeKind, RegistryAction, RegistryActionKind, Subject, TenantId};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rusqlite::types::Value as SqlValue;
use sha2::{Digest, Sha256};

const COLUMNS: [&str; 12] =
    ["seq", "stream", "tenant_id", "time_ms", "function", "agent_id", "user_id", "outcome", "execution_id", "body", "prev_hash", "hash"];

struct Template {
    files: Vec<(String, Vec<u8>)>,
    public_key: [u8; 32],
    work: PathBuf,
    rows: Vec<Row>,
}

/// One row as stored: seq and every column's typed value (hash columns
/// normalised to lowercase when they are hex, since the verifier decodes
/// them).
type Row = (i64, Vec<SqlValue>);

fn base_dir() -> PathBuf {
    if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }
}

fn config(dir: &Path) -> AuditConfig {
    let mut cfg = AuditConfig::in_dir(dir, "fuzz-node");
    cfg.checkpoint_every_records = 4;
    cfg.checkpoint_interval = Duration::ZERO;
    cfg
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_795_341_600_000)
}

fn exec(tenant: &str, i: u64) -> ExecutionRecord {
    let mut rec = ExecutionRecord {
        execution_id: format!("{tenant}-{i:04}"),
        time: (t0() + Duration::from_secs(i * 60)).into(),
        tenant_id: tenant.into(),
        agent_id: format!("agent-{}", i % 2),
        user_id: "user-1".into(),
        function: "leave_days".into(),
        version: Some(1),
        module_sha256: Some("ab".repeat(32)),
        outcome: if i % 3 == 0 { OutcomeKind::FuelExhausted } else { OutcomeKind::Ok },
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
        run: Default::default(),
        test_name: None,
        replay_of: None,
    };
    rec.set_input(format!(r#"{{"days":{i}}}"#).as_bytes());
    rec.set_output(Some(br#"{"ok":true}"#));
    rec
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("aifn-fuzz-audit-tpl-").tempdir_in(base_dir()).expect("tempdir");
        let cfg = config(dir.path());
        let log = AuditLog::open(cfg.clone()).expect("open");
        for i in 0..6 {
            log.record_execution(exec(if i % 2 == 0 { "acme" } else { "globex" }, i), None).expect("record");
        }
        // The first records are old enough to prune: the chain then starts at an anchor.
        log.prune(t0() + Duration::from_secs(150), "retention").expect("prune");
        log.record_registry(&RegistryAction {
            tenant_id: TenantId::new("acme").expect("tenant"),
            actor: Subject::new("alice").expect("actor"),
            action: RegistryActionKind::Approve,
            target: AuditTarget::Version { name: FunctionName::new("leave_days").expect("name"), version: 1 },
            sha256: Some("cd".repeat(32)),
            notes: Some("looks fine".into()),
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        })
        .expect("registry");
        log.record_security(SecurityEvent {
            time: (t0() + Duration::from_secs(900)).into(),
            route: "/v1/functions".into(),
            reason: SecurityReason::UnknownKey,
            remote_addr: Some("127.0.0.1:4000".into()),
            node: String::new(),
        })
        .expect("security");
        for i in 6..12 {
            log.record_execution(exec("acme", i), None).expect("record");
        }
        log.close().expect("close");
        drop(log);
        let report = verify(&cfg, None).expect("verify");
        assert!(report.is_ok() && report.checkpointed_seq == report.last_seq, "template: {report:?}");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir.path()).expect("read dir") {
            let entry = entry.expect("entry");
            files.push((entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).expect("read")));
        }
        // Every checkpoint line names the public key; the template's are genuine.
        let lines = std::fs::read_to_string(&cfg.checkpoint_path).expect("checkpoints");
        let first: serde_json::Value = serde_json::from_str(lines.lines().next().expect("a checkpoint")).expect("json");
        let mut public_key = [0u8; 32];
        hex::decode_to_slice(first["public_key"].as_str().expect("key"), &mut public_key).expect("hex");
        let rows = dump(&cfg.db_path).expect("dump");
        let work = tempfile::Builder::new().prefix("aifn-fuzz-audit-").tempdir_in(base_dir()).expect("tempdir").keep();
        Template { files, public_key, work, rows }
    })
}

fn normalise(col: usize, v: SqlValue) -> SqlValue {
    match (col, v) {
        (10 | 11, SqlValue::Text(s)) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            SqlValue::Text(s.to_ascii_lowercase())
        }
        (_, v) => v,
    }
}

fn dump(db: &Path) -> rusqlite::Result<Vec<Row>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(&format!("SELECT {} FROM audit_entries ORDER BY seq", COLUMNS.join(", ")))?;
    let rows = stmt.query_map([], |r| {
        let mut vals = Vec::with_capacity(COLUMNS.len());
        for i in 0..COLUMNS.len() {
            vals.push(normalise(i, r.get::<_, SqlValue>(i)?));
        }
        let seq = match &vals[0] {
            SqlValue::Integer(i) => *i,
            _ => i64::MIN,
        };
        Ok((seq, vals))
    })?;
    rows.collect()
}

#[derive(Debug, Arbitrary)]
enum Cell {
    Text(String),
    Blob(Vec<u8>),
    Int(i64),
    Real(f64),
    Null,
}

#[derive(Debug, Arbitrary)]
enum RowEdit {
    Set { seq: u8, col: u8, value: Cell },
    /// XOR one byte of a text column (kept as text when still UTF-8).
    Flip { seq: u8, col: u8, pos: u16, xor: u8 },
    /// Replace a known token in the body, e.g. an outcome or a tenant.
    Replace { seq: u8, from: u8, to: u8 },
    Delete { seq: u8 },
    Duplicate { seq: u8, new_seq: i8 },
    Renumber { seq: u8, new_seq: i8 },
    Swap { a: u8, b: u8 },
    /// Recompute prev_hash/hash from `seq` on, as an attacker who knows the
    /// chain formula (but not the signing key) would.
    Rehash { seq: u8 },
}

#[derive(Debug, Arbitrary)]
enum FileEdit {
    DbByte { pos: u16, xor: u8 },
    CheckpointByte { pos: u16, xor: u8 },
    CheckpointTruncate { len: u16 },
    CheckpointDeleteLine { line: u8 },
    CheckpointDuplicateLine { line: u8 },
    CheckpointSwapLines { a: u8, b: u8 },
    CheckpointAppend { bytes: Vec<u8> },
    CheckpointField { line: u8, field: u8, value: Cell },
}

#[derive(Debug, Arbitrary)]
struct Plan {
    rows: Vec<RowEdit>,
    files: Vec<FileEdit>,
}

const TOKENS: [&str; 8] = ["\"ok\"", "\"fuel_exhausted\"", "acme", "globex", "agent-0", "agent-1", "leave_days", "1795341"];

fn to_sql(c: &Cell) -> SqlValue {
    match c {
        Cell::Text(s) => SqlValue::Text(s.clone()),
        Cell::Blob(b) => SqlValue::Blob(b.clone()),
        Cell::Int(i) => SqlValue::Integer(*i),
        Cell::Real(f) => SqlValue::Real(*f),
        Cell::Null => SqlValue::Null,
    }
}

fn seqs(conn: &rusqlite::Connection) -> Vec<i64> {
    conn.prepare("SELECT seq FROM audit_entries ORDER BY seq")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, i64>(0))?.collect())
        .unwrap_or_default()
}

fn pick(seqs: &[i64], i: u8) -> i64 {
    if seqs.is_empty() { 1 } else { seqs[usize::from(i) % seqs.len()] }
}

fn apply_row(conn: &rusqlite::Connection, e: &RowEdit) {
    let all = seqs(conn);
    let col = |c: u8| COLUMNS[usize::from(c) % COLUMNS.len()];
    // Failures (constraints, types) leave the row as it was: the dump decides.
    let _ = match e {
        RowEdit::Set { seq, col: c, value } => conn.execute(
            &format!("UPDATE audit_entries SET {} = ?1 WHERE seq = ?2", col(*c)),
            rusqlite::params![to_sql(value), pick(&all, *seq)],
        ),
        RowEdit::Flip { seq, col: c, pos, xor } => {
            let s = pick(&all, *seq);
            let name = col(*c);
            let current: rusqlite::Result<SqlValue> =
                conn.query_row(&format!("SELECT {name} FROM audit_entries WHERE seq = ?1"), [s], |r| r.get(0));
            match current {
                Ok(SqlValue::Text(t)) if !t.is_empty() => {
                    let mut b = t.into_bytes();
                    let i = usize::from(*pos) % b.len();
                    b[i] ^= xor;
                    let v = match String::from_utf8(b) {
                        Ok(s) => SqlValue::Text(s),
                        Err(e) => SqlValue::Blob(e.into_bytes()),
                    };
                    conn.execute(&format!("UPDATE audit_entries SET {name} = ?1 WHERE seq = ?2"), rusqlite::params![v, s])
                }
                _ => Ok(0),
            }
        }
        RowEdit::Replace { seq, from, to } => conn.execute(
            "UPDATE audit_entries SET body = replace(body, ?1, ?2) WHERE seq = ?3",
            rusqlite::params![TOKENS[usize::from(*from) % TOKENS.len()], TOKENS[usize::from(*to) % TOKENS.len()], pick(&all, *seq)],
        ),
        RowEdit::Delete { seq } => conn.execute("DELETE FROM audit_entries WHERE seq = ?1", [pick(&all, *seq)]),
        RowEdit::Duplicate { seq, new_seq } => conn.execute(
            &format!(
                "INSERT INTO audit_entries ({cols}) SELECT ?1, {rest} FROM audit_entries WHERE seq = ?2",
                cols = COLUMNS.join(", "),
                rest = COLUMNS[1..].join(", ")
            ),
            rusqlite::params![i64::from(*new_seq) + all.last().copied().unwrap_or(0) / 2, pick(&all, *seq)],
        ),
        RowEdit::Renumber { seq, new_seq } => conn.execute(
            "UPDATE audit_entries SET seq = ?1 WHERE seq = ?2",
            rusqlite::params![i64::from(*new_seq) + all.last().copied().unwrap_or(0) / 2, pick(&all, *seq)],
        ),
        RowEdit::Swap { a, b } => {
            let (a, b) = (pick(&all, *a), pick(&all, *b));
            let rest = COLUMNS[1..].join(", ");
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS temp.swap;
                 CREATE TEMP TABLE swap AS SELECT seq, {rest} FROM audit_entries WHERE seq IN ({a}, {b});
                 UPDATE audit_entries SET ({rest}) = (SELECT {rest} FROM swap WHERE swap.seq = {a} + {b} - audit_entries.seq)
                 WHERE seq IN ({a}, {b});"
            ))
            .map(|()| 0)
        }
        RowEdit::Rehash { seq } => rehash(conn, pick(&all, *seq)),
    };
}

fn rehash(conn: &rusqlite::Connection, from: i64) -> rusqlite::Result<usize> {
    let prev: Option<String> = conn
        .query_row("SELECT hash FROM audit_entries WHERE seq < ?1 ORDER BY seq DESC LIMIT 1", [from], |r| r.get(0))
        .ok();
    let mut prev: [u8; 32] = match prev {
        Some(h) => {
            let mut b = [0u8; 32];
            if hex::decode_to_slice(&h, &mut b).is_err() {
                return Ok(0);
            }
            b
        }
        // The chain's first record keeps the link it has (genesis or the prune anchor).
        None => {
            let p: String = conn.query_row("SELECT prev_hash FROM audit_entries WHERE seq = ?1", [from], |r| r.get(0))?;
            let mut b = [0u8; 32];
            if hex::decode_to_slice(&p, &mut b).is_err() {
                return Ok(0);
            }
            b
        }
    };
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT seq, body FROM audit_entries WHERE seq >= ?1 ORDER BY seq")?
        .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?
        .filter_map(Result::ok)
        .collect();
    for (seq, body) in rows {
        let mut h = Sha256::new();
        h.update(prev);
        h.update((seq as u64).to_be_bytes());
        // Chain format 2: the template is a fresh log, every record is.
        h.update(Sha256::digest(body.as_bytes()));
        let hash: [u8; 32] = h.finalize().into();
        conn.execute(
            "UPDATE audit_entries SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![hex::encode(prev), hex::encode(hash), seq],
        )?;
        prev = hash;
    }
    Ok(1)
}

fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn apply_file(db: &Path, checkpoints: &Path, e: &FileEdit) {
    let mut cp = std::fs::read(checkpoints).unwrap_or_default();
    match e {
        FileEdit::DbByte { pos, xor } => {
            let mut b = std::fs::read(db).unwrap_or_default();
            if !b.is_empty() {
                let i = usize::from(*pos) % b.len();
                b[i] ^= xor;
                let _ = std::fs::write(db, b);
            }
            return;
        }
        FileEdit::CheckpointByte { pos, xor } => {
            if !cp.is_empty() {
                let i = usize::from(*pos) % cp.len();
                cp[i] ^= xor;
            }
        }
        FileEdit::CheckpointTruncate { len } => cp.truncate(usize::from(*len) % (cp.len() + 1)),
        FileEdit::CheckpointDeleteLine { line } => {
            let mut l = lines_of(&cp);
            if !l.is_empty() {
                l.remove(usize::from(*line) % l.len());
            }
            cp = l.concat();
        }
        FileEdit::CheckpointDuplicateLine { line } => {
            let mut l = lines_of(&cp);
            if !l.is_empty() {
                let x = l[usize::from(*line) % l.len()].clone();
                l.push(x);
            }
            cp = l.concat();
        }
        FileEdit::CheckpointSwapLines { a, b } => {
            let mut l = lines_of(&cp);
            if !l.is_empty() {
                let n = l.len();
                l.swap(usize::from(*a) % n, usize::from(*b) % n);
            }
            cp = l.concat();
        }
        FileEdit::CheckpointAppend { bytes } => cp.extend_from_slice(bytes),
        FileEdit::CheckpointField { line, field, value } => {
            let mut l = lines_of(&cp);
            if !l.is_empty() {
                let n = usize::from(*line) % l.len();
                if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&l[n]) {
                    let names = ["seq", "hash", "time", "node", "public_key", "signature", "extra"];
                    let name = names[usize::from(*field) % names.len()];
                    v[name] = match value {
                        Cell::Text(s) => serde_json::json!(s),
                        Cell::Blob(b) => serde_json::json!(hex::encode(b)),
                        Cell::Int(i) => serde_json::json!(i),
                        Cell::Real(f) => serde_json::json!(f),
                        Cell::Null => serde_json::Value::Null,
                    };
                    l[n] = format!("{v}\n").into_bytes();
                }
            }
            cp = l.concat();
        }
    }
    let _ = std::fs::write(checkpoints, cp);
}

fuzz_target!(|data: &[u8]| {
    let t = template();
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return };
    if plan.rows.len() + plan.files.len() > 8 {
        return;
    }

    // A fresh copy of the template.
    let _ = std::fs::remove_dir_all(&t.work);
    std::fs::create_dir_all(&t.work).expect("work dir");
    for (name, bytes) in &t.files {
        std::fs::write(t.work.join(name), bytes).expect("copy");
    }
    let cfg = config(&t.work);

    if !plan.rows.is_empty() {
        let conn = rusqlite::Connection::open(&cfg.db_path).expect("open copy");
        for e in &plan.rows {
            apply_row(&conn, e);
        }
        drop(conn);
    }
    let db_before_raw = std::fs::read(&cfg.db_path).ok();
    for e in &plan.files {
        apply_file(&cfg.db_path, &cfg.checkpoint_path, e);
    }
    // A raw byte change may leave every row readable by a table scan (so
    // `dump` sees no change) and still corrupt a page that verification
    // reads through an index: that is not a no-op, and an error is right.
    let raw_db_changed = std::fs::read(&cfg.db_path).ok() != db_before_raw;

    let checkpoints_before = t.files.iter().find(|(n, _)| n == "audit-checkpoints.jsonl").map(|(_, b)| b.clone());
    let checkpoints_after = std::fs::read(&cfg.checkpoint_path).ok();
    let rows_after = dump(&cfg.db_path);
    let noop = !raw_db_changed && checkpoints_before == checkpoints_after && rows_after.as_ref().is_ok_and(|r| *r == t.rows);

    let report = verify(&cfg, Some(&t.public_key));
    if noop {
        let r = report.expect("an unchanged log verifies");
        assert!(r.is_ok(), "false alarm on an unchanged log: {r:?}");
        return;
    }
    let Ok(report) = report else { return };
    if !report.is_ok() {
        return;
    }
    // It verified: every record a trusted checkpoint covers must be the original.
    let covered = report.checkpointed_seq.unwrap_or(0) as i64;
    let rows_after = rows_after.unwrap_or_else(|e| panic!("verified, but the rows cannot be read back: {e}; plan {plan:?}"));
    let signed = |rows: &[Row]| rows.iter().filter(|(s, _)| *s <= covered).cloned().collect::<Vec<_>>();
    assert_eq!(
        signed(&rows_after),
        signed(&t.rows),
        "a mutated log verifies although records up to the checkpointed seq {covered} changed; plan {plan:?}; report {report:?}"
    );
});
