//! Manifest tests (their rules, their results, approval with failing
//! ones and its override, the database's own refusal), the expected
//! version of an upload, and source uploads.

use aifn_registry::{Registry, RegistryError, Upload, VersionInfo};
use aifn_types::{
    Limits, Manifest, ManifestTest, OutcomeKind, RefusalKind, RegistryActionKind, Role, Source,
    SourceLanguage, TestResult, VersionState,
};
use rusqlite::Connection;
use serde_json::json;

use crate::storage::check_invariants;
use crate::{
    fixture, fname, manifest, module, principal, report_for, sha256_hex, sqlite_fixture, target,
    tenant, upload,
};

/// Undoes migration 3, back to what an aifn of schema 2 left.
pub(crate) const UNDO_V3: &str = "DROP TRIGGER decisions_tests_pass; \
     DROP TRIGGER versions_source_immutable; \
     ALTER TABLE decisions DROP COLUMN override_failing_tests; \
     ALTER TABLE versions DROP COLUMN source_sha256; \
     ALTER TABLE versions DROP COLUMN source; \
     ALTER TABLE versions DROP COLUMN source_language; \
     PRAGMA user_version = 2;";

fn raw(reg: &Registry) -> Connection {
    crate::storage::raw(reg)
}

fn test(name: &str) -> ManifestTest {
    ManifestTest {
        name: name.to_owned(),
        input: json!({"x": 1}),
        expect_output: Some(json!({"y": 2})),
        expect_kind: None,
        expect_output_schema: None,
    }
}

fn result(name: &str, passed: bool) -> TestResult {
    TestResult {
        name: name.to_owned(),
        passed,
        expected: "output".to_owned(),
        kind: OutcomeKind::Ok,
        output_sha256: Some(sha256_hex(b"{\"y\":2}")),
        fuel_used: 10,
        duration_ms: 0.5,
        message: (!passed).then(|| "output differs".to_owned()),
    }
}

fn with_tests(tests: Vec<ManifestTest>) -> Manifest {
    Manifest {
        tests,
        ..manifest("tested function")
    }
}

/// Uploads `seed` with tests named and passing as given.
pub(crate) fn upload_tested(reg: &Registry, seed: &str, tests: &[(&str, bool)]) -> VersionInfo {
    let bytes = module(seed);
    let up = Upload {
        name: fname("calc"),
        manifest: with_tests(tests.iter().map(|(n, _)| test(n)).collect()),
        module: &bytes,
        report: report_for(&bytes),
        tests: tests.iter().map(|(n, p)| result(n, *p)).collect(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    reg.upload(
        &principal("acme", Role::Author, "alice"),
        up,
        &Limits::default(),
    )
    .expect("upload")
}

#[test]
fn test_results_are_stored_in_the_report() {
    let f = fixture();
    let v = upload_tested(&f.reg, "a", &[("adds", true), ("rounds", false)]);
    assert_eq!(
        v.report.tests,
        vec![result("adds", true), result("rounds", false)]
    );
    assert_eq!(v.report.failing_tests(), vec!["rounds"]);
    let read = f.reg.get_version(&v.tenant, &v.name, 1).expect("get");
    assert_eq!(read.report.tests, v.report.tests);
    assert_eq!(read.manifest.tests.len(), 2);
}

#[test]
fn approval_with_a_failing_test_is_refused_and_recorded() {
    let f = fixture();
    let v = upload_tested(&f.reg, "a", &[("adds", true), ("rounds", false)]);
    f.audit.take();
    let bob = principal("acme", Role::Approver, "bob");
    let err = f
        .reg
        .approve(&bob, &target(&v), &v.sha256, "looks fine", false)
        .expect_err("failing test");
    assert!(
        matches!(&err, RegistryError::FailingTests { names } if names == &["rounds"]),
        "{err:?}"
    );
    let says = err.to_string();
    assert!(
        says.contains("rounds") && says.contains("override"),
        "{says}"
    );
    assert_eq!(err.refusal(), Some(RefusalKind::Conflict));
    let recs = f.audit.take();
    assert_eq!(recs.len(), 1);
    let refusal = recs[0].refused.as_ref().expect("recorded as refused");
    assert_eq!(refusal.kind, RefusalKind::Conflict);
    assert!(!recs[0].override_failing_tests);
    let after = f.reg.get_version(&v.tenant, &v.name, 1).expect("get");
    assert_eq!(
        (after.state, after.decisions.len()),
        (VersionState::Pending, 0)
    );
}

#[test]
fn the_override_approves_and_is_recorded() {
    let f = fixture();
    let v = upload_tested(&f.reg, "a", &[("rounds", false)]);
    f.audit.take();
    let bob = principal("acme", Role::Approver, "bob");
    let active = f
        .reg
        .approve(
            &bob,
            &target(&v),
            &v.sha256,
            "rounding is a known upstream bug",
            true,
        )
        .expect("override");
    assert_eq!(active.state, VersionState::Active);
    assert!(active.decisions[0].override_failing_tests);
    let recs = f.audit.take();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].action, RegistryActionKind::Approve);
    assert!(recs[0].override_failing_tests && recs[0].refused.is_none());
    // The decision reads back with its override, and serializes it.
    let read = f.reg.get_version(&v.tenant, &v.name, 1).expect("get");
    assert!(read.decisions[0].override_failing_tests);
    let shown = serde_json::to_value(&read.decisions[0]).expect("json");
    assert_eq!(shown["override_failing_tests"], json!(true));
    f.check_invariants();
}

#[test]
fn an_override_with_nothing_failing_is_recorded_as_none() {
    let f = fixture();
    let v = upload_tested(&f.reg, "a", &[("adds", true)]);
    f.audit.take();
    let bob = principal("acme", Role::Approver, "bob");
    let active = f
        .reg
        .approve(&bob, &target(&v), &v.sha256, "all green", true)
        .expect("approve");
    assert!(!active.decisions[0].override_failing_tests);
    let recs = f.audit.take();
    assert!(!recs[0].override_failing_tests);
    let shown = serde_json::to_value(&active.decisions[0]).expect("json");
    assert_eq!(shown.get("override_failing_tests"), None);
    // Passing tests need no override at all.
    let v2 = upload_tested(&f.reg, "b", &[("adds", true)]);
    f.reg
        .approve(&bob, &target(&v2), &v2.sha256, "all green", false)
        .expect("approve without override");
}

/// SQLite-specific: raw SQL through rusqlite (see `postgres` for its
/// counterpart).
#[test]
fn the_database_refuses_an_approval_of_failing_tests_without_the_override() {
    let f = sqlite_fixture();
    let failing = upload_tested(&f.reg, "a", &[("rounds", false)]);
    let conn = raw(&f.reg);
    let insert = |version: u32, flag: u8| {
        conn.execute(
            "INSERT INTO decisions (version_id, action, actor, at, notes, sha256, override_failing_tests) \
             SELECT v.id, 'approve', 'eve', '2030-01-01T00:00:00Z', 'x', v.sha256, ?2 FROM versions v WHERE v.version = ?1",
            rusqlite::params![version, flag],
        )
    };
    let err = insert(1, 0).expect_err("raw approve without override");
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation),
        "{err}"
    );
    assert!(err.to_string().contains("needs the override"), "{err}");
    // The flag is 0 or 1, nothing else.
    assert!(insert(1, 2).is_err());
    // With the override it goes in (the code path would also record it).
    assert_eq!(insert(1, 1).expect("with override"), 1);
    // A version whose tests pass needs none.
    upload_tested(&f.reg, "b", &[("adds", true)]);
    assert_eq!(insert(2, 0).expect("passing tests"), 1);
    drop(conn);
    let read = f
        .reg
        .get_version(&failing.tenant, &failing.name, 1)
        .expect("get");
    assert!(read.decisions[0].override_failing_tests);
}

#[test]
fn manifest_tests_follow_their_rules() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bytes = module("a");
    let try_tests = |tests: Vec<ManifestTest>| {
        let results = tests.iter().map(|t| result(&t.name, true)).collect();
        f.reg.upload(
            &author,
            Upload {
                name: fname("calc"),
                manifest: with_tests(tests),
                module: &bytes,
                report: report_for(&bytes),
                tests: results,
                source: None,
                runs_on: None,
                expected_version: None,
            },
            &Limits::default(),
        )
    };
    let two = ManifestTest {
        expect_kind: Some(OutcomeKind::Ok),
        ..test("both")
    };
    let none = ManifestTest {
        expect_output: None,
        ..test("neither")
    };
    let too_many = (0..=Manifest::MAX_TESTS)
        .map(|i| test(&format!("t{i}")))
        .collect();
    for (tests, says) in [
        (too_many, "at most 32 tests"),
        (vec![test("same"), test("same")], "two tests are named"),
        (vec![test("")], "1 to 64 characters"),
        (vec![test("   ")], "1 to 64 characters"),
        (vec![test(&"n".repeat(65))], "1 to 64 characters"),
        (vec![two], "exactly one of"),
        (vec![none], "exactly one of"),
    ] {
        let err = try_tests(tests).expect_err(says);
        assert!(
            matches!(&err, RegistryError::InvalidManifest(m) if m.contains(says)),
            "{says}: {err:?}"
        );
    }
    assert!(
        f.reg
            .list_functions(&tenant("acme"))
            .expect("list")
            .is_empty()
    );
    // The limits themselves are allowed.
    let most = (0..Manifest::MAX_TESTS)
        .map(|i| test(&format!("{i:0>64}")))
        .collect();
    assert_eq!(
        try_tests(most)
            .expect("32 tests, 64-character names")
            .version,
        1
    );
    let kind = ManifestTest {
        expect_output: None,
        expect_kind: Some(OutcomeKind::FuelExhausted),
        ..test("spins")
    };
    let schema = ManifestTest {
        expect_output: None,
        expect_output_schema: Some(json!({"type": "object"})),
        ..test("shape")
    };
    assert_eq!(try_tests(vec![kind, schema]).expect("kinds").version, 2);
}

#[test]
fn results_must_be_those_of_the_manifest_tests() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bytes = module("a");
    let up = |names: &[&str]| Upload {
        name: fname("calc"),
        manifest: with_tests(vec![test("one"), test("two")]),
        module: &bytes,
        report: report_for(&bytes),
        tests: names.iter().map(|n| result(n, true)).collect(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    for names in [&[][..], &["one"], &["two", "one"], &["one", "two", "three"]] {
        let err = f
            .reg
            .upload(&author, up(names), &Limits::default())
            .expect_err("mismatched results");
        assert!(matches!(err, RegistryError::InvalidManifest(_)), "{err:?}");
    }
    f.reg
        .upload(&author, up(&["one", "two"]), &Limits::default())
        .expect("matching results");
}

#[test]
fn next_version_and_the_expected_version() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let (t, name) = (tenant("acme"), fname("calc"));
    assert_eq!(f.reg.next_version(&t, &name).expect("next"), 1);
    upload(&f.reg, &author, "calc", "a");
    assert_eq!(f.reg.next_version(&t, &name).expect("next"), 2);
    // Another tenant's function of the same name numbers on its own.
    assert_eq!(
        f.reg.next_version(&tenant("globex"), &name).expect("next"),
        1
    );
    let bytes = module("b");
    let up = |expected| Upload {
        name: fname("calc"),
        manifest: manifest("d"),
        module: &bytes,
        report: report_for(&bytes),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: Some(expected),
    };
    f.audit.take();
    let err = f
        .reg
        .upload(&author, up(1), &Limits::default())
        .expect_err("taken");
    assert!(
        matches!(
            err,
            RegistryError::VersionRace {
                expected: 1,
                next: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.refusal(), Some(RefusalKind::Conflict));
    let recs = f.audit.take();
    assert!(recs[0].refused.is_some(), "a race is recorded as refused");
    assert_eq!(f.reg.next_version(&t, &name).expect("nothing stored"), 2);
    let v = f
        .reg
        .upload(&author, up(2), &Limits::default())
        .expect("expected number");
    assert_eq!(v.version, 2);
}

#[test]
fn a_source_upload_stores_its_source() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let text = "(module (func (export \"run\")))\n";
    let source = Source {
        language: SourceLanguage::Wat,
        text: text.to_owned(),
    };
    let bytes = module("from source");
    let v = f
        .reg
        .upload(
            &author,
            Upload {
                name: fname("calc"),
                manifest: manifest("d"),
                module: &bytes,
                report: report_for(&bytes),
                tests: Vec::new(),
                source: Some(source.clone()),
                runs_on: None,
                expected_version: None,
            },
            &Limits::default(),
        )
        .expect("upload");
    let info = v.source.as_ref().expect("source info");
    assert_eq!(info.language, SourceLanguage::Wat);
    assert_eq!(info.sha256, sha256_hex(text.as_bytes()));
    assert_eq!(info.size_bytes, text.len() as u64);
    assert_eq!(f.reg.source(&target(&v)).expect("source"), Some(source));
    let listed = f
        .reg
        .get_function(&v.tenant, &v.name)
        .expect("get")
        .versions;
    assert_eq!(listed[0].source, v.source);
    // A module upload has none, and says so in JSON by leaving it out.
    let plain = upload(&f.reg, &author, "calc", "plain");
    assert_eq!(plain.source, None);
    assert_eq!(f.reg.source(&target(&plain)).expect("none"), None);
    let shown = serde_json::to_value(&plain).expect("json");
    assert_eq!(shown.get("source"), None);
    let err = f
        .reg
        .source(&aifn_registry::VersionRef {
            version: 9,
            ..target(&plain)
        })
        .expect_err("no such version");
    assert!(
        matches!(
            err,
            RegistryError::NotFound {
                version: Some(9),
                ..
            }
        ),
        "{err:?}"
    );
}

/// SQLite-specific: raw SQL through rusqlite (see `postgres` for its
/// counterpart).
#[test]
fn the_schema_keeps_sources_whole_and_immutable() {
    let f = sqlite_fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let conn = raw(&f.reg);
    let refused = |sql: &str| {
        let err = conn.execute_batch(sql).expect_err(sql);
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation),
            "{sql}: {err}"
        );
    };
    let sha = sha256_hex(b"text");
    refused(&format!(
        "UPDATE versions SET source_language = 'wat', source = 'text', source_sha256 = '{sha}'"
    ));
    let insert = |language: &str, text: &str, sha256: &str| {
        format!(
            "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, \
             manifest, report, source_language, source, source_sha256) \
             SELECT function_id, 2, sha256, 'eve', 'now', 'pending', '', '{{}}', '{{}}', {language}, {text}, {sha256} \
             FROM versions"
        )
    };
    let quoted = format!("'{sha}'");
    refused(&insert("'wat'", "NULL", "NULL"));
    refused(&insert("NULL", "'text'", &quoted));
    refused(&insert("'wat'", "'text'", "NULL"));
    refused(&insert("'c'", "'text'", &quoted));
    // Schema 4 knows JavaScript too; a whole source of it is accepted.
    conn.execute_batch(&format!(
        "BEGIN; {}; ROLLBACK;",
        insert("'javascript'", "'text'", &quoted)
    ))
    .expect("a javascript source");
    refused(&insert("'wat'", "'text'", "'ABC'"));
    drop(conn);
    assert_eq!(f.reg.source(&target(&v)).expect("untouched"), None);
    assert_eq!(f.reg.next_version(&v.tenant, &v.name).expect("next"), 2);
}

/// SQLite-specific: its migrations (see `postgres` for its counterpart).
#[test]
fn a_database_of_schema_2_upgrades_and_keeps_its_decisions() {
    let f = sqlite_fixture();
    let path = f.reg.database_path().expect("a file").to_owned();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    crate::approve(&f.reg, &principal("acme", Role::Approver, "bob"), &v);
    drop(f.reg);
    let conn = Connection::open(&path).expect("raw");
    conn.execute_batch(UNDO_V3).expect("back to schema 2");
    drop(conn);
    let reg = Registry::open(&path, crate::NoAudit).expect("upgrade");
    let read = reg.get_version(&v.tenant, &v.name, 1).expect("kept");
    assert_eq!(read.state, VersionState::Active);
    assert!(!read.decisions[0].override_failing_tests);
    assert_eq!(read.source, None);
    let version: u32 = raw(&reg)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, 4);
    check_invariants(&raw(&reg));
    drop(f.dir);
}
