//! Schema migrations, applied when the writer opens.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::AuditError;
use crate::canon::ChainFormat;

/// Schema migrations; `PRAGMA user_version` is the number applied. The SQL
/// is kept portable (no AUTOINCREMENT, no SQLite-only types).
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the chained entries and the unchained captures.
    "CREATE TABLE audit_entries (
        seq INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        tenant_id TEXT,
        time_ms BIGINT NOT NULL,
        function TEXT,
        agent_id TEXT,
        user_id TEXT,
        outcome TEXT,
        execution_id TEXT,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_entries_tenant ON audit_entries (tenant_id, seq);
    CREATE INDEX audit_entries_stream ON audit_entries (stream, seq);
    CREATE TABLE audit_captures (
        seq BIGINT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        input BLOB NOT NULL,
        output BLOB,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX audit_captures_execution ON audit_captures (tenant_id, execution_id);
    CREATE INDEX audit_captures_expiry ON audit_captures (expires_ms);",
    // 2: the stream index only for host-level rows (no tenant), so that an
    // execution record updates one index, not two. Tenant queries use the
    // tenant index; `latest` and host queries say `tenant_id IS NULL`.
    "DROP INDEX audit_entries_stream;
    CREATE INDEX audit_entries_host ON audit_entries (stream, seq) WHERE tenant_id IS NULL;",
    // 3: chain format 2 (the body's digest is chained) for every record
    // appended from here on; the records already there keep format 1, so
    // their hashes and checkpoints stay valid. And the lookup of an
    // execution by id (only execution records have one).
    "CREATE TABLE audit_meta (
        key TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    INSERT INTO audit_meta (key, value)
        SELECT 'chain_format_2_from', COALESCE(MAX(seq), 0) + 1 FROM audit_entries;
    CREATE INDEX audit_entries_execution ON audit_entries (tenant_id, execution_id)
        WHERE execution_id IS NOT NULL;",
];

/// The schema version that brought chain format 2.
const FORMAT_2_SCHEMA: i64 = 3;

/// The chain format boundary of a database at schema `version`. A database
/// from before migration 3 is all format 1. A boundary row that is missing
/// or not an integer reads as "all format 1" too, so deleting it is a
/// verify finding (the format 2 records no longer hash), not an error.
pub(super) fn read_format(
    conn: &Connection,
    path: &Path,
    version: i64,
) -> Result<ChainFormat, AuditError> {
    if version < FORMAT_2_SCHEMA {
        return Ok(ChainFormat {
            format_2_from: None,
        });
    }
    let value: Option<SqlValue> = conn
        .query_row(
            "SELECT value FROM audit_meta WHERE key = 'chain_format_2_from'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| AuditError::db(path, "read chain format", e))?;
    let format_2_from = match value {
        Some(SqlValue::Integer(i)) => Some(u64::try_from(i).unwrap_or(0)),
        _ => None,
    };
    Ok(ChainFormat { format_2_from })
}

/// The schema version of an open database.
pub(super) fn user_version(conn: &Connection, path: &Path) -> Result<i64, AuditError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| AuditError::db(path, "read user_version", e))
}

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), AuditError> {
    let e = |op| move |err| AuditError::db(path, op, err);
    let version = user_version(conn, path)?;
    let supported = MIGRATIONS.len() as i64;
    if !(0..=supported).contains(&version) {
        return Err(AuditError::Schema {
            database: path.display().to_string(),
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e("begin migration"))?;
        tx.execute_batch(sql).map_err(e("migrate"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(e("set user_version"))?;
        tx.commit().map_err(e("commit migration"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aifn_types::{
        AuditTarget, FunctionName, RegistryAction, RegistryActionKind, Subject, TenantId,
    };

    use aifn_types::Timestamp;
    use rusqlite::params;

    use super::*;
    use crate::Stream;
    use crate::canon::{GENESIS, chain_hash, decode_hash};
    use crate::prepare::{prepare_registry, prepare_security};
    use crate::record::{SecurityEvent, SecurityReason};
    use crate::sqlite::SqliteStore;
    use crate::sqlite::chain::INSERT;
    use crate::store::AuditStore;

    fn plan(store: &SqliteStore, sql: &str) -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .expect("plan rows");
        rows.map(|r| r.expect("plan row"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn a_version_1_database_is_migrated_keeps_its_rows_and_uses_the_host_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite3");
        let security = SecurityEvent {
            time: Timestamp::now(),
            route: "/v1/functions".into(),
            reason: SecurityReason::MissingKey,
            remote_addr: None,
            node: String::new(),
        };
        let registry = RegistryAction {
            tenant_id: TenantId::new("acme").expect("tenant"),
            actor: Subject::new("alice").expect("actor"),
            action: RegistryActionKind::Upload,
            target: AuditTarget::Version {
                name: FunctionName::new("echo").expect("name"),
                version: 1,
            },
            sha256: None,
            notes: None,
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        };
        {
            // A database as the first release left it, with one record.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0]).expect("migration 1");
            conn.pragma_update(None, "user_version", 1)
                .expect("version");
            drop(conn);
            let mut v1 = SqliteStore::open_reader(&path).expect("v1 readable");
            assert_eq!(v1.head().expect("head"), None);
        }
        {
            let conn = Connection::open(&path).expect("open");
            let entry = prepare_security(security.clone(), "n").expect("entry");
            let hash = chain_hash(&GENESIS, 1, &entry.body);
            conn.execute(
                INSERT,
                params![
                    1,
                    entry.cols.stream,
                    entry.cols.tenant_id,
                    entry.cols.time_ms,
                    None::<String>,
                    None::<String>,
                    None::<String>,
                    None::<String>,
                    None::<String>,
                    entry.body,
                    hex::encode(GENESIS),
                    hex::encode(hash)
                ],
            )
            .expect("v1 row");
        }
        let mut store = SqliteStore::open_writer(&path, None).expect("migrates");
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let appended = store
            .append(&[
                prepare_registry(&registry, "n", Timestamp::now()).expect("entry"),
                prepare_security(security, "n").expect("entry"),
            ])
            .expect("append after migration");
        assert_eq!(appended.iter().map(|a| a.seq).collect::<Vec<_>>(), [2, 3]);
        let latest = store
            .latest(Stream::Security)
            .expect("latest")
            .expect("a security row");
        assert_eq!(latest.seq, 3);
        assert!(store.latest(Stream::System).expect("latest").is_none());
        assert_eq!(
            store
                .latest(Stream::Registry)
                .expect("latest")
                .map(|r| r.seq),
            Some(2)
        );
        let host = plan(
            &store,
            "SELECT seq FROM audit_entries WHERE tenant_id IS NULL AND stream = 'system' ORDER BY seq DESC LIMIT 1",
        );
        assert!(host.contains("audit_entries_host"), "{host}");
        let tenant = plan(
            &store,
            "SELECT seq FROM audit_entries WHERE tenant_id = 'acme' ORDER BY seq DESC LIMIT 1",
        );
        assert!(tenant.contains("audit_entries_tenant"), "{tenant}");
        // Migration 3: the one record before it stays format 1, the rest
        // are format 2; an execution is found by id through its index.
        assert_eq!(store.format().format_2_from, Some(2));
        let rows = store.scan(0, 10).expect("scan");
        let hash = |i: usize| decode_hash(rows[i].hash.as_deref().expect("hash")).expect("hex");
        assert_eq!(
            hash(0),
            chain_hash(&GENESIS, 1, rows[0].body.as_deref().expect("body"))
        );
        let format = store.format();
        assert_eq!(
            hash(1),
            format.hash(&hash(0), 2, rows[1].body.as_deref().expect("body"))
        );
        assert_ne!(
            hash(1),
            chain_hash(&hash(0), 2, rows[1].body.as_deref().expect("body"))
        );
        let lookup = plan(
            &store,
            "SELECT seq FROM audit_entries WHERE tenant_id = 'acme' AND stream = 'execution' AND execution_id = 'x' ORDER BY seq ASC LIMIT 1",
        );
        assert!(lookup.contains("audit_entries_execution"), "{lookup}");
    }

    #[test]
    fn a_fresh_database_is_format_2_from_the_first_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite3");
        let store = SqliteStore::open_writer(&path, None).expect("create");
        assert_eq!(store.format().format_2_from, Some(1));
        drop(store);
        let reader = SqliteStore::open_reader(&path).expect("reader");
        assert_eq!(reader.format().format_2_from, Some(1));
    }

    #[test]
    fn a_missing_or_mistyped_boundary_reads_as_format_1_and_the_writer_refuses_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.sqlite3");
        drop(SqliteStore::open_writer(&path, None).expect("create"));
        let conn = Connection::open(&path).expect("open");
        conn.execute("UPDATE audit_meta SET value = 'x'", [])
            .expect("retype");
        assert_eq!(
            read_format(&conn, &path, 3).expect("read").format_2_from,
            None
        );
        conn.execute("DELETE FROM audit_meta", []).expect("delete");
        assert_eq!(
            read_format(&conn, &path, 3).expect("read").format_2_from,
            None
        );
        // Pair: before migration 3 there is no table to read at all.
        assert_eq!(
            read_format(&conn, &path, 2).expect("read").format_2_from,
            None
        );
        conn.execute(
            "INSERT INTO audit_meta VALUES ('chain_format_2_from', 7)",
            [],
        )
        .expect("restore");
        assert_eq!(
            read_format(&conn, &path, 3).expect("read").format_2_from,
            Some(7)
        );
        conn.execute("DELETE FROM audit_meta", []).expect("delete");
        drop(conn);
        assert!(matches!(
            SqliteStore::open_writer(&path, None),
            Err(AuditError::Corrupt { seq: 0, .. })
        ));
        assert_eq!(
            SqliteStore::open_reader(&path)
                .expect("reader")
                .format()
                .format_2_from,
            None
        );
    }
}
