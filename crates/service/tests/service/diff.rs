//! Complete diffs between versions, each kind of change through real
//! uploads (and an unchanged pair that gives an empty diff); which
//! versions a diff compares; and reading a version's module and source.

use aifn_service::{
    DiffRelation, FieldChange, JsonChangeKind, Principal, ServiceError, TestChangeKind,
    UploadRequest, VersionDiff, VersionInfo,
};
use aifn_types::{Manifest, Source, SourceLanguage};
use serde_json::{Value, json};

use crate::{Harness, harness, manifest, returning};

fn upload_as(h: &Harness, name: &str, module: Vec<u8>, m: Manifest) -> VersionInfo {
    h.service
        .upload(
            &h.author,
            UploadRequest {
                name: name.into(),
                manifest: m,
                module,
                source: None,
            },
        )
        .expect("upload")
}

fn upload_source(h: &Harness, name: &str, text: &str, m: Manifest) -> VersionInfo {
    h.service
        .upload(
            &h.author,
            UploadRequest {
                name: name.into(),
                manifest: m,
                module: Vec::new(),
                source: Some(Source {
                    language: SourceLanguage::Wat,
                    text: text.into(),
                }),
            },
        )
        .expect("upload source")
}

/// The one diff of `name@version` against the previous version.
fn against_previous(h: &Harness, who: &Principal, name: &str, version: u32) -> VersionDiff {
    let report = h.service.diff(who, (name, version), None).expect("diff");
    assert_eq!(report.version, version);
    let mut previous: Vec<_> = report
        .diffs
        .into_iter()
        .filter(|d| d.relation == DiffRelation::Previous)
        .collect();
    assert_eq!(previous.len(), 1, "{previous:?}");
    previous.remove(0)
}

/// Uploads `a` then `b` as a fresh function; the diff of `b` against `a`.
fn pair(h: &Harness, name: &str, a: (Vec<u8>, Manifest), b: (Vec<u8>, Manifest)) -> VersionDiff {
    upload_as(h, name, a.0, a.1);
    let v = upload_as(h, name, b.0, b.1);
    against_previous(h, &h.approver, name, v.version)
}

/// The diff with everything cleared but the hashes and `keep`'s fields,
/// to assert that nothing else changed.
fn only(d: &VersionDiff, keep: impl FnOnce(&VersionDiff, &mut VersionDiff)) -> bool {
    let mut bare = VersionDiff::between(d.relation, (&dummy(), None), (&dummy(), None));
    bare.against = d.against;
    bare.sha256 = d.sha256.clone();
    keep(d, &mut bare);
    &bare == d
}

/// A version with nothing in it, for [`only`].
fn dummy() -> VersionInfo {
    serde_json::from_value(json!({
        "tenant": "acme", "name": "x", "version": 1, "sha256": "00", "author": "a",
        "uploaded_at": "2024-01-01T00:00:00Z", "state": "pending",
        "manifest": {"description": "d", "input_schema": {"type": "object"}},
        "report": {"module": {"sha256": "00", "size_bytes": 0, "imports": [], "exports": [],
            "memory": null, "table": null, "function_count": 0, "code_size_bytes": 0,
            "largest_function_bytes": 0, "features": [], "uses_wasi": false, "has_start": false},
            "requested_limits": {}, "effective_limits": {}, "diff": null},
        "decisions": []
    }))
    .expect("a version")
}

fn field(name: &str, before: Option<u64>, after: Option<u64>) -> FieldChange {
    FieldChange {
        field: name.into(),
        before,
        after,
    }
}

#[test]
fn an_unchanged_pair_gives_an_empty_diff() {
    let h = harness(|_| {});
    let d = pair(
        &h,
        "f",
        (returning("1"), manifest(json!({}))),
        (returning("1"), manifest(json!({}))),
    );
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(d.sha256.before, d.sha256.after);
    assert_eq!((d.against, d.relation), (1, DiffRelation::Previous));
    // Pair: a new description alone is a change, and the only one.
    let v3 = upload_as(
        &h,
        "f",
        returning("1"),
        manifest(json!({"description": "new words"})),
    );
    let d = against_previous(&h, &h.approver, "f", v3.version);
    assert!(!d.is_empty());
    let desc = d.description.clone().expect("description changed");
    assert_eq!(
        (desc.before.as_str(), desc.after.as_str()),
        ("test function", "new words")
    );
    assert!(
        only(&d, |d, b| b.description = d.description.clone()),
        "{d:?}"
    );
}

#[test]
fn schema_changes_are_listed_at_their_nested_paths() {
    let h = harness(|_| {});
    let v1 = json!({"input_schema": {"type": "object",
        "properties": {"a": {"type": "string"}, "old": {"type": "number"}}, "required": ["a"]}});
    let v2 = json!({"input_schema": {"type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}}, "required": ["a", "b"]},
        "output_schema": {"type": "object", "properties": {"total": {"type": "number"}}}});
    let d = pair(
        &h,
        "f",
        (returning("{}"), manifest(v1)),
        (returning("{}"), manifest(v2.clone())),
    );
    let changes: Vec<_> = d
        .input_schema
        .iter()
        .map(|c| (c.path.as_str(), c.change))
        .collect();
    assert_eq!(
        changes,
        [
            ("/properties/a/type", JsonChangeKind::Changed),
            ("/properties/b", JsonChangeKind::Added),
            ("/properties/old", JsonChangeKind::Removed),
            ("/required/1", JsonChangeKind::Added),
        ]
    );
    assert_eq!(d.input_schema[0].before, Some(json!("string")));
    assert_eq!(d.input_schema[0].after, Some(json!("integer")));
    assert_eq!(d.input_schema[2].before, Some(json!({"type": "number"})));
    // The output schema appeared: one addition of the whole schema.
    assert_eq!(d.output_schema.len(), 1, "{:?}", d.output_schema);
    assert_eq!(
        (d.output_schema[0].path.as_str(), d.output_schema[0].change),
        ("", JsonChangeKind::Added)
    );
    assert!(
        only(&d, |d, b| {
            b.input_schema = d.input_schema.clone();
            b.output_schema = d.output_schema.clone();
        }),
        "{d:?}"
    );
    // Changed at a nested path, then removed.
    let mut v3 = v2.clone();
    v3["output_schema"]["properties"]["total"]["minimum"] = json!(0);
    let v = upload_as(&h, "f", returning("{}"), manifest(v3.clone()));
    let d = against_previous(&h, &h.approver, "f", v.version);
    assert!(d.input_schema.is_empty(), "{d:?}");
    let changes: Vec<_> = d
        .output_schema
        .iter()
        .map(|c| (c.path.as_str(), c.change))
        .collect();
    assert_eq!(
        changes,
        [("/properties/total/minimum", JsonChangeKind::Added)]
    );
    let mut v4 = v3;
    v4.as_object_mut().map(|m| m.remove("output_schema"));
    let v = upload_as(&h, "f", returning("{}"), manifest(v4));
    let d = against_previous(&h, &h.approver, "f", v.version);
    let changes: Vec<_> = d
        .output_schema
        .iter()
        .map(|c| (c.path.as_str(), c.change))
        .collect();
    assert_eq!(changes, [("", JsonChangeKind::Removed)]);
}

#[test]
fn limits_capture_and_the_output_guard() {
    let h = harness(|_| {});
    let host_fuel = h.service.config().limits.fuel;
    let d = pair(
        &h,
        "f",
        (
            returning("1"),
            manifest(json!({"limits": {"timeout_ms": 500}})),
        ),
        (
            returning("1"),
            manifest(json!({"limits": {"fuel": 1000, "timeout_ms": 500},
                "capture": {"retention_days": 7}, "output_guard": "block"})),
        ),
    );
    assert_eq!(d.requested_limits, [field("fuel", None, Some(1000))]);
    assert_eq!(
        d.effective_limits,
        [field("fuel", Some(host_fuel), Some(1000))]
    );
    let capture = d.capture.clone().expect("capture changed");
    assert_eq!(
        (capture.before, capture.after),
        (Value::Null, json!({"retention_days": 7}))
    );
    let guard = d.output_guard.clone().expect("guard changed");
    assert_eq!((guard.before, guard.after), (Value::Null, json!("block")));
    assert!(
        only(&d, |d, b| {
            b.requested_limits = d.requested_limits.clone();
            b.effective_limits = d.effective_limits.clone();
            b.capture = d.capture.clone();
            b.output_guard = d.output_guard.clone();
        }),
        "{d:?}"
    );
    // Pair: the same settings again are no change.
    let v = upload_as(
        &h,
        "f",
        returning("1"),
        manifest(json!({"limits": {"fuel": 1000, "timeout_ms": 500},
            "capture": {"retention_days": 7}, "output_guard": "block"})),
    );
    assert!(against_previous(&h, &h.approver, "f", v.version).is_empty());
}

/// A module with the given imports (by name, in `aifn`) and body bits.
fn module(imports: &[&str], extra: &str, memory_pages: u32) -> Vec<u8> {
    let imports: String = imports
        .iter()
        .map(|name| match *name {
            "output_write" => r#"(import "aifn" "output_write" (func (param i32 i32)))"#,
            "context_len" => r#"(import "aifn" "context_len" (func (result i32)))"#,
            other => panic!("no import {other} here"),
        })
        .collect();
    wat::parse_str(format!(
        r#"(module {imports}
             (memory (export "memory") {memory_pages})
             {extra}
             (func (export "aifn_call") (result i32) (i32.const 0)))"#
    ))
    .expect("wat")
}

#[test]
fn imports_exports_features_memory_table_and_sizes() {
    let h = harness(|_| {});
    let m = || manifest(json!({}));
    let d = pair(
        &h,
        "f",
        (module(&["output_write"], "", 1), m()),
        (
            module(
                &["context_len"],
                r#"(table 2 funcref)
                   (func (export "helper") (memory.fill (i32.const 0) (i32.const 0) (i32.const 0)))
                   (func $init) (start $init)"#,
                2,
            ),
            m(),
        ),
    );
    assert_eq!(d.imports_added, ["aifn.context_len"]);
    assert_eq!(d.imports_removed, ["aifn.output_write"]);
    assert_eq!(d.exports_added, ["helper"]);
    assert!(d.exports_removed.is_empty());
    assert_eq!(d.features_added, ["bulk_memory"]);
    assert!(d.features_removed.is_empty());
    let memory = d.memory.clone().expect("memory changed");
    assert_eq!(memory.before["min_pages"], 1);
    assert_eq!(memory.after["min_pages"], 2);
    let table = d.table.clone().expect("table changed");
    assert_eq!(
        (table.before.clone(), table.after["min"].clone()),
        (Value::Null, json!(2))
    );
    let start = d.has_start.clone().expect("start changed");
    assert!(!start.before && start.after);
    let sizes: Vec<&str> = d.sizes.iter().map(|s| s.field.as_str()).collect();
    assert!(sizes.contains(&"size_bytes"), "{sizes:?}");
    assert!(sizes.contains(&"function_count"), "{sizes:?}");
    let count = d
        .sizes
        .iter()
        .find(|s| s.field == "function_count")
        .expect("count");
    assert_eq!((count.before, count.after), (Some(1), Some(3)));
    assert_ne!(d.sha256.before, d.sha256.after);
    assert!(d.description.is_none() && d.input_schema.is_empty() && d.tests.is_empty());
    // Pair: the reverse change lists the same things the other way round.
    let back = upload_as(&h, "f", module(&["output_write"], "", 1), m());
    let r = against_previous(&h, &h.approver, "f", back.version);
    assert_eq!(r.imports_added, ["aifn.output_write"]);
    assert_eq!(r.imports_removed, ["aifn.context_len"]);
    assert_eq!(r.exports_removed, ["helper"]);
    assert_eq!(r.features_removed, ["bulk_memory"]);
    // And the same module again is no change at all.
    let same = upload_as(&h, "f", module(&["output_write"], "", 1), m());
    assert!(against_previous(&h, &h.approver, "f", same.version).is_empty());
}

#[test]
fn tests_added_removed_redefined_and_with_changed_results() {
    let h = harness(|_| {});
    let tests = |a_expects: Value, b_input: Value, third: &str| {
        manifest(json!({"tests": [
            {"name": "a", "input": {}, "expect_output": a_expects},
            {"name": "b", "input": b_input, "expect_kind": "ok"},
            {"name": third, "input": {}, "expect_kind": "ok"},
        ]}))
    };
    let v1 = upload_as(&h, "f", returning("1"), tests(json!(1), json!({}), "gone"));
    assert!(
        v1.report.tests.iter().all(|t| t.passed),
        "{:?}",
        v1.report.tests
    );
    // v2: the same test a, but the code now answers 2 (a fails); b has
    // another input; `gone` is replaced by `new`.
    let v2 = upload_as(
        &h,
        "f",
        returning("2"),
        tests(json!(1), json!({"x": 1}), "new"),
    );
    let d = against_previous(&h, &h.approver, "f", v2.version);
    let kinds: Vec<_> = d
        .tests
        .iter()
        .map(|t| (t.name.as_str(), t.change))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a", TestChangeKind::ResultChanged),
            ("b", TestChangeKind::DefinitionChanged),
            ("new", TestChangeKind::Added),
            ("gone", TestChangeKind::Removed),
        ]
    );
    let a = &d.tests[0];
    assert_eq!(a.before.as_ref().map(|r| r.passed), Some(true));
    assert_eq!(a.after.as_ref().map(|r| r.passed), Some(false));
    assert!(a.definition.is_empty());
    assert_eq!(d.tests[1].definition[0].path, "/input/x");
    assert!(d.tests[3].after.is_none() && d.tests[3].before.is_some());
    // Pair: the same tests on the same code are no change.
    let v3 = upload_as(
        &h,
        "f",
        returning("2"),
        tests(json!(1), json!({"x": 1}), "new"),
    );
    assert!(against_previous(&h, &h.approver, "f", v3.version).is_empty());
}

const WAT_V1: &str = r#"(module
  (import "aifn" "output_write" (func $o (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "1")
  (func (export "aifn_call") (result i32)
    (call $o (i32.const 0) (i32.const 1))
    (i32.const 0)))
"#;

#[test]
fn a_source_upload_is_diffed_line_by_line() {
    let h = harness(|_| {});
    upload_source(&h, "f", WAT_V1, manifest(json!({})));
    let v2_text = WAT_V1.replace(r#"(data (i32.const 0) "1")"#, r#"(data (i32.const 0) "2")"#);
    let v2 = upload_source(&h, "f", &v2_text, manifest(json!({})));
    let d = against_previous(&h, &h.approver, "f", v2.version);
    let s = d.source.clone().expect("a source diff");
    assert_eq!((s.lines_added, s.lines_removed), (1, 1));
    assert!(s.unified.starts_with("--- f@1\n+++ f@2\n"), "{}", s.unified);
    assert!(
        s.unified.contains(r#"-  (data (i32.const 0) "1")"#),
        "{}",
        s.unified
    );
    assert!(
        s.unified.contains(r#"+  (data (i32.const 0) "2")"#),
        "{}",
        s.unified
    );
    // Pair: the same text again has no source diff (nor any other).
    let v3 = upload_source(&h, "f", &v2_text, manifest(json!({})));
    let d = against_previous(&h, &h.approver, "f", v3.version);
    assert!(d.source.is_none() && d.is_empty(), "{d:?}");
    // A module upload after a source upload: the whole text is removed.
    let v4 = upload_as(
        &h,
        "f",
        wat::parse_str(&v2_text).expect("wat"),
        manifest(json!({})),
    );
    let d = against_previous(&h, &h.approver, "f", v4.version);
    let s = d.source.expect("a source diff");
    assert_eq!((s.lines_added, s.lines_removed), (0, 7));
    assert!(s.unified.contains("+++ f@4 (no source)"), "{}", s.unified);
}

#[test]
fn a_diff_compares_with_the_previous_and_the_active_version() {
    let h = harness(|_| {});
    h.deploy("f", returning("1"), manifest(json!({})));
    upload_as(&h, "f", returning("2"), manifest(json!({})));
    upload_as(&h, "f", returning("3"), manifest(json!({})));
    let rel = |version, against| {
        h.service
            .diff(&h.approver, ("f", version), against)
            .expect("diff")
            .diffs
            .iter()
            .map(|d| (d.against, d.relation))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rel(3, None),
        [(2, DiffRelation::Previous), (1, DiffRelation::Active)]
    );
    // The active version is the previous one: one diff.
    assert_eq!(rel(2, None), [(1, DiffRelation::Previous)]);
    // The first version is the active one: nothing to compare with.
    assert_eq!(rel(1, None), []);
    assert_eq!(rel(3, Some(1)), [(1, DiffRelation::Chosen)]);
    assert_eq!(rel(1, Some(3)), [(3, DiffRelation::Chosen)]);
    for (version, against) in [(9, None), (3, Some(9)), (3, Some(0))] {
        let e = h
            .service
            .diff(&h.approver, ("f", version), against)
            .expect_err("no such version");
        assert!(matches!(e, ServiceError::NotFound { .. }), "{e:?}");
    }
    let e = h
        .service
        .diff(&h.author, ("nope", 1), None)
        .expect_err("no function");
    assert!(matches!(e, ServiceError::NotFound { .. }), "{e:?}");
}

#[test]
fn agents_never_diff_versions() {
    let h = harness(|_| {});
    h.deploy("f", returning("1"), manifest(json!({})));
    h.deploy("f", returning("2"), manifest(json!({})));
    upload_as(&h, "f", returning("3"), manifest(json!({})));
    // A diff shows code and versions agents never see: refused, even of
    // the active version against itself.
    for (version, against) in [(2, None), (2, Some(2)), (3, None), (2, Some(1))] {
        let e = h
            .service
            .diff(&h.agent, ("f", version), against)
            .expect_err("agents do not diff");
        assert!(matches!(e, ServiceError::Forbidden { .. }), "{e:?}");
    }
    // Pair: every other role diffs them.
    for who in [&h.author, &h.approver, &h.admin] {
        let d = h.service.diff(who, ("f", 2), None).expect("diff");
        assert_eq!(d.diffs.len(), 1, "{who:?}");
        h.service.diff(who, ("f", 3), Some(1)).expect("diff");
    }
}

#[test]
fn a_versions_module_and_source_are_read_by_authors_approvers_and_admins() {
    let h = harness(|_| {});
    let bytes = returning("1");
    upload_as(&h, "f", bytes.clone(), manifest(json!({})));
    upload_source(&h, "f", WAT_V1, manifest(json!({})));
    for who in [&h.author, &h.approver, &h.admin] {
        assert_eq!(h.service.module(who, ("f", 1)).expect("module"), bytes);
        assert_eq!(
            h.service.module(who, ("f", 2)).expect("module"),
            wat::parse_str(WAT_V1).expect("wat")
        );
        let s = h.service.source(who, ("f", 2)).expect("source");
        assert_eq!((s.language, s.text.as_str()), (SourceLanguage::Wat, WAT_V1));
        // A module upload has no source.
        let e = h.service.source(who, ("f", 1)).expect_err("no source");
        assert!(matches!(e, ServiceError::NotFound { .. }), "{e:?}");
        let e = h.service.module(who, ("f", 3)).expect_err("no version");
        assert!(matches!(e, ServiceError::NotFound { .. }), "{e:?}");
    }
    // Agents run functions; they do not read them, active or not.
    h.deploy("g", returning("1"), manifest(json!({})));
    for (name, v) in [("f", 1), ("g", 1), ("nope", 1)] {
        let e = h.service.module(&h.agent, (name, v)).expect_err("agent");
        assert!(matches!(e, ServiceError::Forbidden { .. }), "{e:?}");
        let e = h.service.source(&h.agent, (name, v)).expect_err("agent");
        assert!(matches!(e, ServiceError::Forbidden { .. }), "{e:?}");
    }
}
