//! The database file: settings, migrations, size cap, schema guards. Most
//! of these are about SQLite itself (`sqlite_fixture`); the PostgreSQL
//! counterparts are in the `postgres` module.

use aifn_registry::{DATABASE_FILE, Registry, RegistryError, RegistryOptions, Upload};
use aifn_types::{Limits, Role, VersionState};
use rusqlite::Connection;

use crate::{
    NoAudit, approve, fixture, fname, manifest, module, principal, report_for, sha256_hex,
    sqlite_fixture, tenant, upload, upload_bytes,
};

/// A raw connection to a SQLite registry's file.
pub(crate) fn raw(reg: &Registry) -> Connection {
    Connection::open(reg.database_path().expect("a SQLite registry")).expect("raw connection")
}

/// The invariants every reopened database must hold.
pub(crate) fn check_invariants(conn: &Connection) {
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok");
    let fk: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("fk");
    assert_eq!(fk, 0, "foreign key violations");
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM versions v LEFT JOIN modules m ON m.sha256 = v.sha256 WHERE m.sha256 IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("orphans");
    assert_eq!(orphans, 0, "versions without their module");
    let bad_states: i64 = conn
        .query_row(
            "SELECT count(*) FROM versions WHERE state NOT IN ('pending','active','rejected','revoked','superseded')",
            [],
            |r| r.get(0),
        )
        .expect("states");
    assert_eq!(bad_states, 0);
    let double_active: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT function_id FROM versions WHERE state = 'active' \
             GROUP BY function_id HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .expect("actives");
    assert_eq!(double_active, 0, "two active versions of one function");
    let gaps: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT function_id FROM versions GROUP BY function_id \
             HAVING max(version) <> count(*) OR min(version) <> 1)",
            [],
            |r| r.get(0),
        )
        .expect("gaps");
    assert_eq!(gaps, 0, "version numbers with gaps");
    let undecided: i64 = conn
        .query_row(
            "SELECT count(*) FROM versions v WHERE v.state <> 'pending' AND NOT EXISTS \
             (SELECT 1 FROM decisions d WHERE d.version_id = v.id AND d.sha256 = v.sha256)",
            [],
            |r| r.get(0),
        )
        .expect("decisions");
    assert_eq!(undecided, 0, "state changes without a decision");
    // Each state is reached by exactly its decisions: none for pending, one
    // for active and rejected, two for revoked and superseded.
    let miscounted: i64 = conn
        .query_row(
            "SELECT count(*) FROM versions v WHERE (SELECT count(*) FROM decisions d WHERE d.version_id = v.id) <> \
             CASE v.state WHEN 'pending' THEN 0 WHEN 'active' THEN 1 WHEN 'rejected' THEN 1 ELSE 2 END",
            [],
            |r| r.get(0),
        )
        .expect("decision counts");
    assert_eq!(miscounted, 0, "decisions that do not match the state");
    let empty: i64 = conn
        .query_row(
            "SELECT count(*) FROM functions f WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.function_id = f.id)",
            [],
            |r| r.get(0),
        )
        .expect("empty functions");
    assert_eq!(empty, 0, "functions without a version");
    let mut stmt = conn
        .prepare("SELECT sha256, bytes FROM modules")
        .expect("modules");
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .expect("query");
    for row in rows {
        let (sha, bytes) = row.expect("row");
        assert_eq!(sha256_hex(&bytes), sha, "module does not hash to its name");
    }
}

/// SQLite-specific: the file, WAL and `user_version`.
#[test]
fn opens_a_wal_database_with_the_current_schema() {
    let f = sqlite_fixture();
    assert_eq!(
        f.reg.database_path(),
        Some(f.dir.path().join(DATABASE_FILE).as_path())
    );
    let conn = raw(&f.reg);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, 4);
    check_invariants(&conn);
}

/// SQLite-specific: the file's path.
#[test]
fn a_path_with_an_extension_is_the_file_and_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("custom.db");
    let v = {
        let reg = Registry::open(&path, NoAudit).expect("open");
        let v = upload(&reg, &principal("acme", Role::Author, "alice"), "calc", "x");
        approve(&reg, &principal("acme", Role::Approver, "bob"), &v);
        v
    };
    assert!(path.is_file());
    let reg = Registry::open(&path, NoAudit).expect("reopen");
    let active = reg
        .active(&tenant("acme"), &fname("calc"))
        .expect("active after reopen");
    assert_eq!(
        (active.version, active.sha256.as_str()),
        (1, v.sha256.as_str())
    );
    assert_eq!(reg.module_bytes(&v.sha256).expect("bytes"), module("x"));
}

/// SQLite-specific: the data directory.
#[test]
fn a_missing_data_directory_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var").join("aifn");
    let reg = Registry::open(&data, NoAudit).expect("open");
    let file = reg.database_path().expect("a file");
    assert_eq!(file, data.join(DATABASE_FILE));
    assert!(file.is_file());
}

/// SQLite-specific: `user_version` (see `postgres` for its counterpart).
#[test]
fn a_newer_schema_is_refused() {
    let f = sqlite_fixture();
    let path = f.reg.database_path().expect("a file").to_owned();
    raw(&f.reg)
        .pragma_update(None, "user_version", 99)
        .expect("bump");
    drop(f.reg);
    let err = Registry::open(&path, NoAudit).expect_err("too new");
    assert!(
        matches!(
            err,
            RegistryError::SchemaTooNew {
                found: 99,
                supported: 4
            }
        ),
        "{err:?}"
    );
}

#[test]
fn modules_are_stored_once_by_content_and_checked_on_read() {
    let f = fixture();
    let bytes = module("shared");
    let a = upload_bytes(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "one",
        &bytes,
    );
    let b = upload_bytes(
        &f.reg,
        &principal("globex", Role::Author, "gina"),
        "two",
        &bytes,
    );
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(f.count("SELECT count(*) FROM modules"), 1);
    assert_eq!(f.reg.module_bytes(&a.sha256).expect("bytes"), bytes);
    let missing = sha256_hex(b"nothing");
    let err = f.reg.module_bytes(&missing).expect_err("missing");
    assert!(
        matches!(&err, RegistryError::ModuleNotFound { sha256 } if *sha256 == missing),
        "{err:?}"
    );
}

/// SQLite-specific: raw SQL through rusqlite (see `postgres` for its
/// counterpart).
#[test]
fn the_schema_refuses_tampering() {
    let f = sqlite_fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let conn = raw(&f.reg);
    conn.pragma_update(None, "foreign_keys", true).expect("fk");
    let refused = |sql: &str| {
        let err = conn.execute_batch(sql).expect_err(sql);
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation),
            "{sql}: {err}"
        );
    };
    // Activation without an approve decision bound to the hash.
    refused("UPDATE versions SET state = 'active'");
    // A decision bound to another hash.
    refused(&format!(
        "INSERT INTO decisions (version_id, action, actor, at, notes, sha256) \
         SELECT id, 'approve', 'eve', 'now', 'x', '{}' FROM versions",
        sha256_hex(b"other")
    ));
    // Swapping the module of a version, or its bytes.
    refused(&format!(
        "UPDATE versions SET sha256 = '{}'",
        sha256_hex(b"other")
    ));
    refused("UPDATE modules SET bytes = x'00'");
    // Skipping the state machine.
    refused("UPDATE versions SET state = 'bogus'");
    refused("DELETE FROM versions");
    // A version with no module.
    refused(&format!(
        "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, manifest, report) \
         SELECT function_id, 2, '{}', 'eve', 'now', 'pending', '', '{{}}', '{{}}' FROM versions",
        sha256_hex(b"other")
    ));
    drop(conn);
    let after = f.reg.get_version(&v.tenant, &v.name, 1).expect("get");
    assert_eq!(
        (after.state, after.sha256.as_str(), after.decisions.len()),
        (VersionState::Pending, v.sha256.as_str(), 0)
    );
    check_invariants(&raw(&f.reg));
}

/// SQLite-specific: its size cap (`max_page_count`).
#[test]
fn a_full_database_refuses_writes_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let author = principal("acme", Role::Author, "alice");
    let options = RegistryOptions {
        max_size_bytes: Some(256 * 1024),
        ..Default::default()
    };
    let reg = Registry::open_with(dir.path(), &options, NoAudit).expect("open");
    let big = |i: u32| -> Vec<u8> {
        // Incompressible-ish and distinct, so each upload needs new pages.
        (0..40 * 1024u32)
            .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i * 7919) >> 13) as u8)
            .collect()
    };
    let mut stored = 0;
    let err = loop {
        let bytes = big(stored + 1);
        let up = Upload {
            name: fname("big"),
            manifest: manifest("d"),
            module: &bytes,
            report: report_for(&bytes),
            tests: Vec::new(),
            source: None,
            runs_on: None,
            expected_version: None,
        };
        match reg.upload(&author, up, &Limits::default()) {
            Ok(v) => {
                stored += 1;
                assert_eq!(v.version, stored);
                assert!(stored < 20, "the size cap was never hit");
            }
            Err(e) => break (e, bytes),
        }
    };
    let (err, refused_bytes) = err;
    assert!(matches!(err, RegistryError::DiskFull), "{err:?}");
    assert_eq!(err.to_string(), "registry storage is full");
    assert!(stored >= 1, "nothing fit at all");
    // Nothing of the failed upload is there; everything before it is.
    let detail = reg
        .get_function(&tenant("acme"), &fname("big"))
        .expect("get");
    assert_eq!(detail.summary.latest_version, stored);
    assert!(matches!(
        reg.module_bytes(&sha256_hex(&refused_bytes)),
        Err(RegistryError::ModuleNotFound { .. })
    ));
    // Reads still work, and small writes that fit still do.
    assert_eq!(
        reg.list_pending(&tenant("acme")).expect("pending").len(),
        stored as usize
    );
    check_invariants(&raw(&reg));
    drop(reg);
    // Without the cap the next upload takes the next number.
    let reg = Registry::open(dir.path(), NoAudit).expect("reopen");
    let v = upload_bytes(&reg, &author, "big", &refused_bytes);
    assert_eq!(v.version, stored + 1);
    check_invariants(&raw(&reg));
}

#[test]
fn storage_errors_do_not_show_sql() {
    // Storage failures carry SQL in their source only.
    let err = RegistryError::Storage {
        op: "read module",
        source: "SELECT bytes FROM modules: boom".into(),
    };
    assert_eq!(
        err.to_string(),
        "registry storage failed during read module"
    );
    assert_eq!(err.kind(), None);
    let source = std::error::Error::source(&err).expect("source");
    assert!(source.to_string().contains("SELECT"));
}

#[test]
fn a_registry_is_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Registry>();
}

/// SQLite-specific: the path (see `postgres` for its counterpart).
#[test]
fn the_registry_describes_itself_by_its_path_only() {
    let f = crate::sqlite_fixture();
    let shown = format!("{:?}", f.reg);
    assert!(shown.starts_with("Registry { path: "), "{shown}");
    assert!(shown.ends_with(", .. }"), "{shown}");
}
