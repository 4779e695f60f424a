//! Schema migrations, applied when the writer opens.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::AuditError;

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
];

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), AuditError> {
    let e = |op| move |err| AuditError::db(path, op, err);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(e("read user_version"))?;
    let supported = MIGRATIONS.len() as i64;
    if !(0..=supported).contains(&version) {
        return Err(AuditError::Schema {
            path: path.to_owned(),
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
    use crate::canon::GENESIS;
    use crate::canon::chain_hash;
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
    }
}
