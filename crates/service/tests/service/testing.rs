//! Manifest tests at upload, approval with failing tests and its
//! override, test runs (who may, what is recorded, the hourly cap), and
//! uploads from WAT source.

use std::sync::Arc;
use std::time::Duration;

use aifn_service::{
    AuditStream, Credential, DataDir, Decision, LocalAdmin, ManualClock, Principal, ServiceError,
    TestRunRequest, UploadRequest, VersionInfo,
};
use aifn_test_support::ECHO_WAT;
use aifn_types::{Manifest, OutcomeKind, Role, Source, SourceLanguage, Subject, TenantId};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Harness, harness, harness_at, manifest, origin};

fn echo() -> Vec<u8> {
    wat::parse_str(ECHO_WAT).expect("wat")
}

fn upload(
    h: &Harness,
    name: &str,
    module: Vec<u8>,
    m: Manifest,
) -> Result<VersionInfo, ServiceError> {
    h.service.upload(
        &h.author,
        UploadRequest {
            name: name.into(),
            manifest: m,
            module,
            source: None,
        },
    )
}

/// An echo whose manifest has one passing and one failing test (and a
/// passing kind test).
fn upload_tested(h: &Harness, name: &str) -> VersionInfo {
    let m = manifest(json!({"tests": [
        {"name": "echoes", "input": {"x": 1}, "expect_output": {"x": 1}},
        {"name": "doubles", "input": {"x": 1}, "expect_output": {"x": 2}},
        {"name": "runs", "input": {"x": 1}, "expect_kind": "ok"},
    ]}));
    upload(h, name, echo(), m).expect("upload")
}

/// A key of `role` for `subject` in `tenant`, made by the operator.
pub(crate) fn key_for(h: &Harness, tenant: &str, role: Role, subject: &str) -> Principal {
    let admin = LocalAdmin::open(DataDir::new(h.dir.path(), "test")).expect("local admin");
    let key = admin
        .create_key(
            &TenantId::new(tenant).expect("tenant"),
            role,
            &Subject::new(subject).expect("subject"),
            &Subject::new("test").expect("subject"),
        )
        .expect("key");
    admin.close().expect("close");
    h.service
        .authenticate(&Credential::ApiKey(key.secret), origin("/test"))
        .expect("authenticates")
}

fn test_runs(h: &Harness) -> Vec<Value> {
    h.entries(AuditStream::Execution)
        .into_iter()
        .filter(|e| e["run"] == "test_run")
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn manifest_tests_run_at_upload_and_are_recorded_as_test_runs() {
    let h = harness(|_| {});
    let v = upload_tested(&h, "echo");
    let tests = &v.report.tests;
    let summary: Vec<_> = tests
        .iter()
        .map(|t| (t.name.as_str(), t.passed, t.expected.as_str(), t.kind))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("echoes", true, "output", OutcomeKind::Ok),
            ("doubles", false, "output", OutcomeKind::Ok),
            ("runs", true, "kind ok", OutcomeKind::Ok),
        ]
    );
    assert_eq!(
        tests[0].output_sha256.as_deref(),
        Some(sha256_hex(br#"{"x":1}"#).as_str())
    );
    assert!(tests[0].fuel_used > 0 && tests[0].message.is_none());
    let why = tests[1].message.as_deref().expect("why it failed");
    assert!(why.contains("/x"), "{why}");
    assert_eq!(v.report.failing_tests(), vec!["doubles"]);
    // Each run is in the audit log as a test run of version 1 by the
    // uploader, and none is an invocation.
    let recorded = test_runs(&h);
    assert_eq!(recorded.len(), 3);
    for rec in &recorded {
        assert_eq!(
            (&rec["agent_id"], &rec["user_id"], &rec["version"]),
            (&json!("alice"), &json!("alice"), &json!(1))
        );
        assert_eq!(rec["module_sha256"], json!(v.sha256));
    }
    let mut names: Vec<_> = recorded.iter().map(|r| r["test_name"].clone()).collect();
    names.sort_by_key(|n| n.to_string());
    assert_eq!(
        names,
        vec![json!("doubles"), json!("echoes"), json!("runs")]
    );
    let metrics = h.service.metrics();
    assert_eq!(metrics.count(OutcomeKind::Ok), 0);
    assert_eq!(metrics.test_run_count(OutcomeKind::Ok), 3);
    let text = h.service.metrics_text();
    assert!(
        text.contains("aifn_test_runs_total{outcome=\"ok\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("aifn_invocations_total{outcome=\"ok\"} 0\n"),
        "{text}"
    );
}

#[test]
fn tests_expecting_a_refusal_or_a_schema_are_judged_like_invocations() {
    let h = harness(|_| {});
    let m = manifest(json!({
    "input_schema": {"type": "object", "required": ["x"]},
    "tests": [
        {"name": "refuses", "input": {}, "expect_kind": "invalid_input"},
        {"name": "shaped", "input": {"x": 1},
         "expect_output_schema": {"type": "object", "required": ["x"]}},
        {"name": "misshaped", "input": {"x": 1},
         "expect_output_schema": {"type": "object", "required": ["y"]}},
        {"name": "not_refused", "input": {"x": 1}, "expect_kind": "invalid_input"},
    ]}));
    let v = upload(&h, "echo", echo(), m).expect("upload");
    let passed: Vec<_> = v.report.tests.iter().map(|t| t.passed).collect();
    assert_eq!(passed, vec![true, true, false, false]);
    assert_eq!(v.report.tests[0].kind, OutcomeKind::InvalidInput);
    assert_eq!(v.report.tests[0].fuel_used, 0);
    let refusal = test_runs(&h)
        .into_iter()
        .find(|r| r["test_name"] == "refuses")
        .expect("the refused test run is recorded");
    assert_eq!(refusal["outcome"], "invalid_input");
}

#[test]
fn manifest_test_rules_are_checked_before_anything_runs() {
    let h = harness(|_| {});
    for (tests, says) in [
        (
            json!([{"name": "a", "input": {}, "expect_kind": "ok"},
                   {"name": "a", "input": {}, "expect_kind": "ok"}]),
            "two tests are named",
        ),
        (
            json!([{"name": "a", "input": {}, "expect_kind": "ok", "expect_output": 1}]),
            "exactly one of",
        ),
        (
            json!([{"name": "a", "input": {}, "expect_output_schema": {"type": 12}}]),
            "expect_output_schema of test \"a\" is not a valid JSON Schema",
        ),
    ] {
        let e = upload(&h, "echo", echo(), manifest(json!({"tests": tests}))).expect_err(says);
        assert!(
            matches!(&e, ServiceError::InvalidRequest { message } if message.contains(says)),
            "{says}: {e:?}"
        );
    }
    assert!(test_runs(&h).is_empty(), "nothing ran");
    // A well-formed set is accepted.
    let ok = json!([{"name": "a", "input": {}, "expect_output_schema": {"type": "object"}}]);
    assert!(upload(&h, "echo", echo(), manifest(json!({"tests": ok}))).is_ok());
}

#[test]
fn approval_is_refused_while_a_test_fails_and_allowed_with_the_override() {
    let h = harness(|_| {});
    let v = upload_tested(&h, "echo");
    let e = h
        .service
        .decide(
            &h.approver,
            ("echo", 1),
            Decision::Approve { sha256: &v.sha256 },
            "looks right",
        )
        .expect_err("a test fails");
    let ServiceError::Conflict { message } = &e else {
        panic!("{e:?}")
    };
    assert!(
        message.contains("doubles") && message.contains("override"),
        "{message}"
    );
    let active = h
        .service
        .decide(
            &h.approver,
            ("echo", 1),
            Decision::ApproveOverridingTests { sha256: &v.sha256 },
            "doubling is not this function's job; the test is wrong",
        )
        .expect("override");
    assert!(active.decisions[0].override_failing_tests);
    let approvals: Vec<_> = h
        .entries(AuditStream::Registry)
        .into_iter()
        .filter(|r| r["action"] == "approve")
        .collect();
    // Newest first: the overriding approval, then the refused one.
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[0]["override_failing_tests"], json!(true));
    assert_eq!(approvals[0].get("refused"), None);
    assert_eq!(approvals[1]["refused"]["kind"], "conflict");
    assert_eq!(approvals[1].get("override_failing_tests"), None);
    assert_eq!(
        h.invoke("echo", json!({"x": 5})).expect("runs").output,
        Some(json!({"x": 5}))
    );
}

#[test]
fn a_test_run_on_a_pending_version_is_recorded_with_who_ran_it() {
    let h = harness(|_| {});
    let v = upload(&h, "echo", echo(), manifest(json!({}))).expect("upload");
    let out = h
        .service
        .test_run(
            &h.approver,
            ("echo", v.version),
            TestRunRequest {
                input: json!({"q": "hi"}),
                user_id: Some("u-42".into()),
            },
        )
        .expect("runs while pending");
    assert_eq!((out.kind, out.version), (OutcomeKind::Ok, 1));
    assert_eq!(out.output, Some(json!({"q": "hi"})));
    let rec = h.record(&out.execution_id);
    assert_eq!(
        (
            &rec["run"],
            &rec["agent_id"],
            &rec["user_id"],
            &rec["outcome"]
        ),
        (
            &json!("test_run"),
            &json!("bob"),
            &json!("u-42"),
            &json!("ok")
        )
    );
    assert_eq!(rec.get("test_name"), None);
    assert_eq!(rec.get("admission"), None, "no gateway decision");
    // The author runs their own version; the user defaults to them.
    let own = h
        .service
        .test_run(
            &h.author,
            ("echo", 1),
            TestRunRequest {
                input: json!({}),
                user_id: None,
            },
        )
        .expect("the author's own version");
    assert_eq!(h.record(&own.execution_id)["user_id"], "alice");
    assert_eq!(
        h.service.metrics().count(OutcomeKind::Ok),
        0,
        "not invocations"
    );
    // Still pending, and no agent can call it.
    assert_eq!(
        h.invoke("echo", json!({})).expect_err("not active").error,
        ServiceError::NotActive {
            name: "echo".into()
        }
    );
}

#[test]
fn test_runs_are_for_approvers_and_the_versions_author_only() {
    let h = harness(|_| {});
    upload(&h, "echo", echo(), manifest(json!({}))).expect("upload");
    let dave = key_for(&h, "acme", Role::Author, "dave");
    let stranger = key_for(&h, "globex", Role::Approver, "gina");
    let run = |who: &Principal, version: u32| {
        h.service.test_run(
            who,
            ("echo", version),
            TestRunRequest {
                input: json!({}),
                user_id: None,
            },
        )
    };
    for who in [&dave, &h.agent, &h.admin] {
        let refused = run(who, 1).expect_err("forbidden");
        assert!(
            matches!(refused.error, ServiceError::Forbidden { .. }),
            "{}: {:?}",
            who.subject,
            refused.error
        );
        let rec = h.record(refused.execution_id.as_deref().expect("recorded"));
        assert_eq!(
            (&rec["run"], &rec["outcome"]),
            (&json!("test_run"), &json!("forbidden"))
        );
    }
    // Another tenant's approver finds nothing; a missing version neither.
    let other = run(&stranger, 1).expect_err("another tenant");
    assert!(
        matches!(other.error, ServiceError::NotFound { .. }),
        "{other:?}"
    );
    let missing = run(&h.approver, 9).expect_err("no version 9");
    assert!(
        matches!(missing.error, ServiceError::NotFound { .. }),
        "{missing:?}"
    );
    assert!(run(&h.approver, 1).is_ok());
}

#[test]
fn a_test_run_input_is_checked_like_an_invocations() {
    let h = harness(|_| {});
    let m = manifest(json!({"input_schema": {"type": "object", "required": ["x"]}}));
    upload(&h, "echo", echo(), m).expect("upload");
    let refused = h
        .service
        .test_run(
            &h.approver,
            ("echo", 1),
            TestRunRequest {
                input: json!({"y": 1}),
                user_id: None,
            },
        )
        .expect_err("schema");
    assert!(
        matches!(&refused.error, ServiceError::InvalidInput { violations, .. } if !violations.is_empty()),
        "{refused:?}"
    );
    let rec = h.record(refused.execution_id.as_deref().expect("recorded"));
    assert_eq!(
        (&rec["run"], &rec["outcome"]),
        (&json!("test_run"), &json!("invalid_input"))
    );
}

#[test]
fn test_runs_per_tenant_and_hour_are_capped() {
    let clock = Arc::new(ManualClock::at_an_hour());
    let h = harness_at(clock.clone(), |c| c.tenant.test_runs_per_hour = 2);
    upload(&h, "echo", echo(), manifest(json!({}))).expect("upload");
    let run = || {
        h.service.test_run(
            &h.approver,
            ("echo", 1),
            TestRunRequest {
                input: json!({}),
                user_id: None,
            },
        )
    };
    run().expect("first");
    clock.advance(Duration::from_secs(600));
    run().expect("second");
    let refused = run().expect_err("third in the hour");
    assert_eq!(
        refused.error,
        ServiceError::RateLimited {
            retry_after: Duration::from_secs(3000),
            scope: "test_runs"
        }
    );
    let rec = h.record(refused.execution_id.as_deref().expect("recorded"));
    assert_eq!(
        (&rec["run"], &rec["outcome"]),
        (&json!("test_run"), &json!("rate_limited"))
    );
    // Agents' invocations are not held to it, and the next hour starts again.
    h.deploy("live", echo(), manifest(json!({})));
    assert!(h.invoke("live", json!({})).is_ok());
    clock.advance(Duration::from_secs(3000));
    run().expect("the next hour");
}

#[test]
fn manifest_tests_count_against_the_hourly_test_runs_all_or_none() {
    let clock = Arc::new(ManualClock::at_an_hour());
    let h = harness_at(clock.clone(), |c| c.tenant.test_runs_per_hour = 3);
    let tests = |n: usize| {
        let t: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("t{i}"), "input": {"x": i}, "expect_kind": "ok"}))
            .collect();
        manifest(json!({ "tests": t }))
    };
    // Two fit; three more do not (2 + 3 > 3), and nothing runs or is stored.
    upload(&h, "echo", echo(), tests(2)).expect("two test runs fit");
    let e = upload(&h, "echo", echo(), tests(3)).expect_err("over the hour's test runs");
    assert!(
        matches!(
            e,
            ServiceError::RateLimited {
                scope: "test_runs",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(test_runs(&h).len(), 2, "the refused upload ran none");
    let uploads: Vec<Value> = h
        .entries(AuditStream::Registry)
        .into_iter()
        .filter(|r| r["action"] == "upload")
        .collect();
    // Newest first: the refusal, recorded as such, then the stored upload.
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    assert_eq!(uploads[0]["refused"]["kind"], "rate_limited");
    assert_eq!(uploads[1].get("refused"), None);
    // One more still fits, a manifest without tests always does, and the
    // next hour starts again.
    upload(&h, "echo", echo(), tests(1)).expect("the third");
    upload(&h, "echo", echo(), tests(0)).expect("no tests to run");
    clock.advance(Duration::from_secs(3600));
    let v = upload(&h, "echo", echo(), tests(3)).expect("the next hour");
    assert_eq!(v.version, 4);
}

#[test]
fn an_upload_from_wat_source_builds_and_keeps_its_source() {
    let h = harness(|_| {});
    let source = Source {
        language: SourceLanguage::Wat,
        text: ECHO_WAT.to_owned(),
    };
    let up = |module: Vec<u8>, source: Option<Source>| {
        h.service.upload(
            &h.author,
            UploadRequest {
                name: "echo".into(),
                manifest: manifest(json!({"tests": [
                    {"name": "echoes", "input": {"x": 1}, "expect_output": {"x": 1}}]})),
                module,
                source,
            },
        )
    };
    let v = up(Vec::new(), Some(source.clone())).expect("source upload");
    assert_eq!(
        v.sha256,
        sha256_hex(&echo()),
        "the module built from the text"
    );
    let info = v.source.as_ref().expect("source info");
    assert_eq!(
        (info.language, info.sha256.as_str(), info.size_bytes),
        (
            SourceLanguage::Wat,
            sha256_hex(ECHO_WAT.as_bytes()).as_str(),
            ECHO_WAT.len() as u64
        )
    );
    assert!(
        v.report.tests[0].passed,
        "its tests ran on the built module"
    );
    assert_eq!(
        h.service.source(&h.approver, ("echo", 1)).expect("read"),
        source
    );
    // A module upload has no source.
    let plain = up(echo(), None).expect("module upload");
    assert_eq!(plain.source, None);
    // Exactly one of the two.
    for (module, source, says) in [
        (echo(), Some(source.clone()), "not both"),
        (Vec::new(), None, "is required"),
    ] {
        let e = up(module, source).expect_err(says);
        assert!(
            matches!(&e, ServiceError::InvalidRequest { message } if message.contains(says)),
            "{e:?}"
        );
    }
    let broken = Source {
        language: SourceLanguage::Wat,
        text: "(module (func $f (i32.bogus)))".to_owned(),
    };
    let e = up(Vec::new(), Some(broken)).expect_err("does not build");
    assert!(
        matches!(&e, ServiceError::InvalidModule { kind: OutcomeKind::InvalidModule, message }
            if message.starts_with("the WAT source does not build")),
        "{e:?}"
    );
    let huge = Source {
        language: SourceLanguage::Wat,
        text: format!("(module) ;; {}", "x".repeat(Source::MAX_BYTES)),
    };
    let e = up(Vec::new(), Some(huge)).expect_err("too large");
    assert!(matches!(e, ServiceError::PayloadTooLarge { .. }), "{e:?}");
    let refused: Vec<_> = h
        .entries(AuditStream::Registry)
        .into_iter()
        .filter(|r| r["action"] == "upload" && r.get("refused").is_some())
        .collect();
    assert_eq!(refused.len(), 4, "each refused upload is recorded");
}

#[test]
fn an_upload_whose_test_runs_cannot_be_recorded_fails_and_stores_nothing() {
    // A real quota on the audit database: once full, no record fits.
    let h = harness(|c| c.audit.max_db_bytes = Some(96 * 1024));
    h.deploy("f", echo(), manifest(json!({})));
    let mut ran = 0;
    while h.invoke("f", json!({"padding": "x".repeat(200)})).is_ok() {
        ran += 1;
        assert!(ran < 10_000, "the quota never filled");
    }
    let m = manifest(json!({"tests": [
        {"name": "echoes", "input": {"x": 1}, "expect_output": {"x": 1}},
    ]}));
    let e = upload(&h, "g", echo(), m).expect_err("no test run without its record");
    assert!(matches!(e, ServiceError::Unavailable { .. }), "{e:?}");
    let names: Vec<String> = h
        .service
        .list_functions(&h.author)
        .expect("list")
        .into_iter()
        .map(|f| f.name.to_string())
        .collect();
    assert_eq!(names, ["f"], "nothing of g is stored");
}

#[test]
fn test_runs_share_the_tenants_concurrency_with_invocations() {
    // No slot for the tenant: a test run is refused as an invocation is,
    // and recorded.
    let h = harness(|c| c.tenant.max_concurrent = 0);
    upload(&h, "echo", echo(), manifest(json!({}))).expect("upload");
    let refused = h
        .service
        .test_run(
            &h.approver,
            ("echo", 1),
            TestRunRequest {
                input: json!({}),
                user_id: None,
            },
        )
        .expect_err("no slot");
    assert!(
        matches!(
            refused.error,
            ServiceError::RateLimited {
                scope: "tenant concurrency",
                ..
            }
        ),
        "{refused:?}"
    );
    let rec = h.record(refused.execution_id.as_deref().expect("recorded"));
    assert_eq!(
        (&rec["run"], &rec["outcome"]),
        (&json!("test_run"), &json!("rate_limited"))
    );
    // An upload whose tests find no slot is refused, not stored with a
    // failing test.
    let m = manifest(json!({"tests": [{"name": "runs", "input": {}, "expect_kind": "ok"}]}));
    let e = upload(&h, "echo", echo(), m).expect_err("no slot for its test");
    assert!(matches!(e, ServiceError::RateLimited { .. }), "{e:?}");
    let f = h.service.get_function(&h.author, "echo").expect("echo");
    assert_eq!(f.versions.len(), 1, "only the first version is stored");
    // Pair: with a slot it runs.
    let h = harness(|_| {});
    upload(&h, "echo", echo(), manifest(json!({}))).expect("upload");
    let out = h
        .service
        .test_run(
            &h.approver,
            ("echo", 1),
            TestRunRequest {
                input: json!({"a": 1}),
                user_id: None,
            },
        )
        .expect("runs");
    assert_eq!(out.output, Some(json!({"a": 1})));
}
