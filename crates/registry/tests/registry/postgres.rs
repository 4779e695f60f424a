//! PostgreSQL itself, whatever `AIFN_TEST_BACKEND` says: its migrations,
//! nodes starting at once, connection and corruption errors, the schema's
//! own refusals of raw SQL (`tamper`, the counterparts of the SQLite
//! tamper tests) and writers racing on two nodes (`races`).

mod budgets;
mod races;
mod tamper;

use std::sync::Barrier;

use aifn_registry::{Registry, RegistryError, RegistryOptions};
use aifn_test_support::{postgres_url, psql_at};
use aifn_types::{Role, VersionState};

use crate::{NoAudit, approve, postgres_fixture, principal, subject, tenant, upload};

/// One number from `sql`.
pub(crate) fn scalar(url: &str, sql: &str) -> i64 {
    let (ok, out) = psql_at(url, sql);
    assert!(ok, "{sql}: {out}");
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {out:?}: {e}"))
}

/// The invariants every PostgreSQL registry must hold (those of
/// `storage::check_invariants`; foreign keys are always enforced here).
pub(crate) fn check_invariants(url: &str) {
    let sql = "SELECT \
        (SELECT count(*) FROM versions v LEFT JOIN modules m ON m.sha256 = v.sha256 WHERE m.sha256 IS NULL) \
     || ',' || (SELECT count(*) FROM versions \
                WHERE state NOT IN ('pending','active','rejected','revoked','superseded')) \
     || ',' || (SELECT count(*) FROM (SELECT function_id FROM versions WHERE state = 'active' \
                GROUP BY function_id HAVING count(*) > 1) x) \
     || ',' || (SELECT count(*) FROM (SELECT function_id FROM versions GROUP BY function_id \
                HAVING max(version) <> count(*) OR min(version) <> 1) x) \
     || ',' || (SELECT count(*) FROM versions v WHERE v.state <> 'pending' AND NOT EXISTS \
                (SELECT 1 FROM decisions d WHERE d.version_id = v.id AND d.sha256 = v.sha256)) \
     || ',' || (SELECT count(*) FROM versions v WHERE (SELECT count(*) FROM decisions d \
                WHERE d.version_id = v.id) <> CASE v.state WHEN 'pending' THEN 0 WHEN 'active' THEN 1 \
                WHEN 'rejected' THEN 1 ELSE 2 END) \
     || ',' || (SELECT count(*) FROM functions f \
                WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.function_id = f.id)) \
     || ',' || (SELECT count(*) FROM modules WHERE encode(sha256(bytes), 'hex') <> sha256)";
    let (ok, out) = psql_at(url, sql);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "0,0,0,0,0,0,0,0",
        "orphan versions, bad states, double actives, gaps, undecided, miscounted decisions, \
         empty functions, modules not hashing to their name"
    );
}

/// `sql` fails with an integrity constraint violation (SQLSTATE class 23:
/// a trigger's refusal, a CHECK, a foreign or unique key).
#[track_caller]
pub(crate) fn refused(url: &str, sql: &str) {
    let (ok, out) = psql_at(url, sql);
    assert!(!ok, "accepted: {sql}");
    assert!(out.contains("ERROR:  23"), "{sql}: {out}");
}

pub(crate) fn accepted(url: &str, sql: &str) {
    let (ok, out) = psql_at(url, sql);
    assert!(ok, "{sql}: {out}");
}

fn open(url: &str) -> Registry {
    Registry::open_postgres(url, &RegistryOptions::default(), NoAudit).expect("open")
}

#[test]
fn opens_with_the_current_schema_and_describes_itself_without_secrets() {
    let f = postgres_fixture();
    let url = f.url.as_deref().expect("postgres");
    assert_eq!(scalar(url, "SELECT max(version) FROM schema_migrations"), 5);
    assert_eq!(f.reg.database_path(), None);
    let shown = format!("{:?}", f.reg);
    assert!(shown.starts_with("Registry { postgres: t_"), "{shown}");
    let with_password = url.replace("postgres@", "postgres:hunter2@");
    let reg = open(&with_password);
    assert!(!format!("{reg:?}").contains("hunter2"), "{reg:?}");
    check_invariants(url);
}

#[test]
fn a_newer_schema_is_refused() {
    let f = postgres_fixture();
    let url = f.url.clone().expect("postgres");
    drop(f.reg);
    accepted(&url, "INSERT INTO schema_migrations VALUES (99, 'later')");
    let err =
        Registry::open_postgres(&url, &RegistryOptions::default(), NoAudit).expect_err("too new");
    assert!(
        matches!(
            err,
            RegistryError::SchemaTooNew {
                found: 99,
                supported: 5
            }
        ),
        "{err:?}"
    );
}

#[test]
fn nodes_starting_at_once_migrate_once() {
    let url = postgres_url();
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                open(&url)
            });
        }
    });
    assert_eq!(scalar(&url, "SELECT count(*) FROM schema_migrations"), 5);
    let reg = open(&url);
    let v = upload(&reg, &principal("acme", Role::Author, "alice"), "calc", "x");
    assert_eq!(v.version, 1);
}

#[test]
fn a_size_cap_is_refused_on_postgres() {
    let options = RegistryOptions {
        max_size_bytes: Some(1 << 20),
        ..Default::default()
    };
    let err = Registry::open_postgres(&postgres_url(), &options, NoAudit).expect_err("cap");
    assert!(matches!(err, RegistryError::Storage { .. }), "{err:?}");
}

#[test]
fn an_unreachable_server_is_unavailable() {
    let options = RegistryOptions {
        busy_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let err = Registry::open_postgres("postgresql://nobody@%2Fnonexistent/none", &options, NoAudit)
        .expect_err("no server");
    // Not a verdict on anything: the service answers 503 and retries.
    assert!(matches!(err, RegistryError::Unavailable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "registry database unavailable during connect to database"
    );
}

/// Undoes migrations 3 to 5, back to what an aifn of schema 2 left.
const UNDO_V3: &str = "DROP TABLE budget_windows; \
     DROP TRIGGER decisions_tests_pass ON decisions; \
     DROP FUNCTION aifn_decisions_tests_pass(); DROP FUNCTION aifn_failing_tests(text); \
     DROP TRIGGER versions_source_immutable ON versions; \
     ALTER TABLE decisions DROP COLUMN override_failing_tests; \
     ALTER TABLE versions DROP COLUMN source_sha256, DROP COLUMN source, DROP COLUMN source_language; \
     DELETE FROM schema_migrations WHERE version > 2;";

#[test]
fn a_database_of_schema_2_upgrades_and_keeps_its_decisions() {
    let f = postgres_fixture();
    let url = f.url.clone().expect("postgres");
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    approve(&f.reg, &principal("acme", Role::Approver, "bob"), &v);
    drop(f.reg);
    accepted(&url, UNDO_V3);
    assert_eq!(
        scalar(&url, "SELECT max(version) FROM schema_migrations"),
        2
    );
    let reg = open(&url);
    let read = reg.get_version(&v.tenant, &v.name, 1).expect("kept");
    assert_eq!(read.state, VersionState::Active);
    assert!(!read.decisions[0].override_failing_tests);
    assert_eq!(read.source, None);
    assert_eq!(
        scalar(&url, "SELECT max(version) FROM schema_migrations"),
        5
    );
    check_invariants(&url);
}

/// Undoes migration 2 (after `UNDO_V3`), back to what an aifn of schema 1
/// left.
const UNDO_V2: &str = "DROP TABLE agent_policies; DROP TABLE policy_history; DROP TABLE tenant_settings; \
     DROP FUNCTION aifn_policy_history_next(); \
     DELETE FROM schema_migrations WHERE version > 1;";

#[test]
fn a_database_of_the_first_schema_upgrades_and_keeps_its_data() {
    let f = postgres_fixture();
    let url = f.url.clone().expect("postgres");
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Agent,
            &subject("bot"),
            &subject("setup"),
        )
        .expect("key");
    drop(f.reg);
    accepted(&url, &format!("{UNDO_V3} {UNDO_V2}"));
    assert_eq!(
        scalar(&url, "SELECT max(version) FROM schema_migrations"),
        1
    );
    let reg = open(&url);
    assert!(reg.authenticate(&key.secret).is_ok(), "keys survive");
    let policy = aifn_types::AgentPolicy {
        allow: vec![aifn_types::FunctionPattern::new("*").expect("pattern")],
        ..Default::default()
    };
    let admin = principal("acme", Role::Admin, "carol");
    let set = reg
        .set_policy(&admin, &subject("bot"), policy)
        .expect("set");
    assert_eq!(set.version, 1);
    assert_eq!(
        scalar(&url, "SELECT max(version) FROM schema_migrations"),
        5
    );
}

/// The invocation hot path stays an index lookup as data grows: with
/// sequential scans priced out, the plan of the active lookup uses the
/// one-active index and no scan of a table.
#[test]
fn the_active_lookup_can_use_indexes_only() {
    let f = postgres_fixture();
    let url = f.url.as_deref().expect("postgres");
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    approve(&f.reg, &principal("acme", Role::Approver, "bob"), &v);
    let (ok, plan) = psql_at(
        url,
        "SET enable_seqscan = off; ANALYZE; EXPLAIN SELECT v.id, \
         (SELECT count(*) FROM decisions d WHERE d.version_id = v.id) FROM functions f \
         LEFT JOIN versions v ON v.function_id = f.id AND v.state = 'active' \
         WHERE f.tenant = 'acme' AND f.name = 'calc'",
    );
    assert!(ok, "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(plan.contains("versions_one_active"), "{plan}");
}

/// A stored value that does not read as its type (here a function name
/// changed behind the registry's back) is corruption, never a value that
/// skipped the rules.
#[test]
fn a_row_that_does_not_read_as_its_type_is_corrupt() {
    let f = postgres_fixture();
    let url = f.url.as_deref().expect("postgres");
    upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    accepted(url, "UPDATE functions SET name = 'not a name!'");
    let err = f.reg.list_functions(&tenant("acme")).expect_err("corrupt");
    assert!(matches!(err, RegistryError::Corrupt(_)), "{err:?}");
}

/// As the service uses it: registry calls from `spawn_blocking` threads
/// of the server's own runtime, and the registry dropped inside an async
/// task (its runtime shuts down without blocking there).
#[test]
fn the_registry_serves_blocking_threads_of_another_runtime_and_drops_anywhere() {
    let f = postgres_fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    approve(&f.reg, &principal("acme", Role::Approver, "bob"), &v);
    let reg = std::sync::Arc::new(f.reg);
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    server.block_on(async move {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let reg = std::sync::Arc::clone(&reg);
                tokio::task::spawn_blocking(move || {
                    reg.active(&tenant("acme"), &crate::fname("calc"))
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.expect("join").expect("active").version, 1);
        }
        drop(reg);
    });
}

/// Text is UTF-8 on both backends: a database of another encoding is
/// refused at open, before anything is stored.
#[test]
fn a_database_not_in_utf8_is_refused() {
    let url = postgres_url();
    let ascii = format!("{url}_ascii");
    let db = ascii.rsplit('/').next().expect("db name");
    accepted(
        &url,
        &format!(
            "CREATE DATABASE {db} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        ),
    );
    let err = Registry::open_postgres(&ascii, &RegistryOptions::default(), NoAudit)
        .expect_err("not UTF8");
    assert!(
        matches!(
            err,
            RegistryError::Storage {
                op: "check database encoding",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        scalar(
            &ascii,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'versions'"
        ),
        0
    );
}
