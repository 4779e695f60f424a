//! Each use case's rules, obeyed and violated: what agents may see, the
//! manifest's bounds, the input limit, the refusals that are recorded and
//! what a record carries (the catalog, tickets, metrics, retention and the
//! active cache: `operations.rs`).

use aifn_service::{AuditQuery, AuditStream, Decision, InvokeRequest, ServiceError, UploadRequest};
use aifn_types::{OutcomeKind, VersionState};
use serde_json::{Value, json};

use crate::{harness, manifest, returning};

pub(crate) fn upload(
    h: &crate::Harness,
    who: &aifn_service::Principal,
    name: &str,
    module: Vec<u8>,
    m: aifn_types::Manifest,
) -> Result<aifn_service::VersionInfo, ServiceError> {
    h.service.upload(
        who,
        UploadRequest {
            name: name.into(),
            manifest: m,
            module,
            source: None,
        },
    )
}

/// The tenant's registry records, oldest first, as JSON.
fn registry_records(h: &crate::Harness) -> Vec<Value> {
    let q = AuditQuery {
        stream: Some(AuditStream::Registry),
        limit: Some(1000),
        ..AuditQuery::default()
    };
    let mut v: Vec<Value> = h
        .service
        .audit(&h.admin, q)
        .expect("audit")
        .entries
        .iter()
        .map(|e| serde_json::to_value(e).expect("json"))
        .collect();
    v.reverse();
    v
}

#[test]
fn agents_see_active_versions_only() {
    let h = harness(|_| {});
    h.deploy(
        "f",
        returning("1"),
        manifest(json!({"description": "the active one"})),
    );
    upload(
        &h,
        &h.author,
        "f",
        returning("2"),
        manifest(json!({"description": "pending two"})),
    )
    .expect("v2");
    upload(&h, &h.author, "draft", returning("3"), manifest(json!({}))).expect("draft");

    let list = h.service.list_functions(&h.agent).expect("list");
    assert_eq!(list.len(), 1, "{list:?}");
    let f = &list[0];
    assert_eq!(
        (f.name.as_str(), f.active_version, f.latest_version),
        ("f", Some(1), 1)
    );
    assert_eq!(f.latest_state, VersionState::Active);
    assert_eq!(f.description.as_deref(), Some("the active one"));
    assert_eq!((f.counts.active, f.counts.pending), (1, 0));
    let detail = h.service.get_function(&h.agent, "f").expect("detail");
    assert_eq!(
        detail
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(detail.summary.latest_version, 1);
    for refused in [
        h.service.get_function(&h.agent, "draft").map(drop),
        h.service.get_version(&h.agent, "f", 2).map(drop),
        h.service.get_version(&h.agent, "draft", 1).map(drop),
        h.service.list_pending(&h.agent).map(drop),
    ] {
        assert!(
            matches!(refused, Err(ServiceError::NotFound { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(
        h.service
            .get_version(&h.agent, "f", 1)
            .expect("active")
            .version,
        1
    );
    // Pair: the author sees everything.
    let list = h.service.list_functions(&h.author).expect("list");
    assert_eq!(list.len(), 2);
    let f = list.iter().find(|f| f.name.as_str() == "f").expect("f");
    assert_eq!(
        (f.latest_version, f.latest_state, f.counts.pending),
        (2, VersionState::Pending, 1)
    );
    assert_eq!(
        h.service
            .get_function(&h.author, "f")
            .expect("f")
            .versions
            .len(),
        2
    );
    assert_eq!(
        h.service
            .get_version(&h.author, "f", 2)
            .expect("v2")
            .version,
        2
    );
    assert_eq!(h.service.list_pending(&h.author).expect("pending").len(), 2);
}

#[test]
fn manifests_are_bounded_and_input_schemas_are_object_schemas() {
    let h = harness(|_| {});
    let desc = |n: usize| manifest(json!({"description": "d".repeat(n)}));
    for (m, ok) in [
        (desc(4096), true),
        (desc(4097), false),
        (desc(0), false),
        (manifest(json!({"description": "   "})), false),
    ] {
        let r = upload(&h, &h.author, "f", returning("1"), m);
        assert_eq!(r.is_ok(), ok, "{r:?}");
        if let Err(e) = r {
            assert_eq!(
                e,
                ServiceError::InvalidRequest {
                    message: "description must have 1 to 4096 characters".into()
                }
            );
        }
    }
    for schema in [json!({}), json!({"type": "array"}), json!("object")] {
        let r = upload(
            &h,
            &h.author,
            "f",
            returning("1"),
            manifest(json!({"input_schema": schema})),
        );
        let Err(ServiceError::InvalidRequest { message }) = r else {
            panic!("{schema}: {r:?}")
        };
        assert!(
            message.starts_with("input_schema must be an object schema"),
            "{message}"
        );
    }
    let r = upload(
        &h,
        &h.author,
        "f",
        returning("1"),
        manifest(json!({"input_schema": {"type": "object", "minLength": "x"}})),
    );
    assert!(
        matches!(r, Err(ServiceError::InvalidRequest { message }) if message.starts_with("input_schema is not a valid JSON Schema"))
    );
    let r = upload(
        &h,
        &h.author,
        "f",
        returning("1"),
        manifest(json!({"output_schema": {"type": 7}})),
    );
    assert!(
        matches!(r, Err(ServiceError::InvalidRequest { message }) if message.starts_with("output_schema is not a valid JSON Schema"))
    );
    // The memory limit may not be below the module's initial memory (one page).
    let r = upload(
        &h,
        &h.author,
        "f",
        returning("1"),
        manifest(json!({"limits": {"memory_bytes": 65535}})),
    );
    assert!(
        matches!(&r, Err(ServiceError::InvalidRequest { message }) if message.contains("below the module's initial memory of 65536 bytes")),
        "{r:?}"
    );
    upload(
        &h,
        &h.author,
        "f",
        returning("1"),
        manifest(json!({"limits": {"memory_bytes": 65536}})),
    )
    .expect("exactly one page");
}

#[test]
fn the_input_limit_is_exact() {
    let h = harness(|c| c.limits.input_bytes = 64);
    h.deploy("f", returning("1"), manifest(json!({})));
    // `{"p":"…"}` is 8 bytes plus the padding.
    let input = |n: usize| json!({"p": "x".repeat(n)});
    assert_eq!(
        h.invoke("f", input(56)).expect("64 bytes").kind,
        OutcomeKind::Ok
    );
    let r = h.invoke("f", input(57)).expect_err("65 bytes");
    assert_eq!(
        r.error,
        ServiceError::InvalidInput {
            message: "input is 65 bytes, over the limit of 64 bytes".into(),
            violations: Vec::new()
        }
    );
}

#[test]
fn outputs_that_are_not_json_are_invalid_output() {
    let h = harness(|_| {});
    h.deploy("f", returning("{not json"), manifest(json!({})));
    let out = h.invoke("f", json!({})).expect("ran");
    assert_eq!((out.kind, out.output), (OutcomeKind::InvalidOutput, None));
    assert!(
        out.message
            .expect("message")
            .starts_with("output is not one JSON document")
    );
    // A root violation of the output schema names the root.
    h.deploy(
        "g",
        returning("5"),
        manifest(json!({"output_schema": {"type": "string"}})),
    );
    let out = h.invoke("g", json!({})).expect("ran");
    assert_eq!(out.kind, OutcomeKind::InvalidOutput);
    let message = out.message.expect("message");
    assert!(
        message.starts_with("output does not match the output schema (1 violation): (root): "),
        "{message}"
    );
}

#[test]
fn refusals_the_service_decides_are_recorded() {
    let h = harness(|_| {});
    let v = h.deploy("f", returning("1"), manifest(json!({})));
    // Wrong role for each action; an invalid module; a forbidden import.
    assert!(matches!(
        upload(&h, &h.agent, "f", returning("1"), manifest(json!({}))),
        Err(ServiceError::Forbidden { .. })
    ));
    let e = upload(
        &h,
        &h.author,
        "f",
        b"\0asm\x01\0\0\0junk".to_vec(),
        manifest(json!({})),
    )
    .expect_err("not wasm");
    assert!(
        matches!(
            e,
            ServiceError::InvalidModule {
                kind: OutcomeKind::InvalidModule,
                ..
            }
        ),
        "{e:?}"
    );
    let importer = wat::parse_str(r#"(module (import "env" "f" (func)) (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#).expect("wat");
    let e = upload(&h, &h.author, "f", importer, manifest(json!({}))).expect_err("import");
    assert!(
        matches!(
            e,
            ServiceError::InvalidModule {
                kind: OutcomeKind::ForbiddenImport,
                ..
            }
        ),
        "{e:?}"
    );
    let sha = v.sha256.as_str();
    for (who, decision) in [
        (&h.author, Decision::Approve { sha256: sha }),
        (&h.agent, Decision::Reject { sha256: sha }),
        (&h.admin, Decision::Revoke),
    ] {
        let r = h.service.decide(who, ("f", 1), decision, "notes");
        assert!(matches!(r, Err(ServiceError::Forbidden { .. })), "{r:?}");
    }
    // A name that is not one is refused without a record (it cannot be a target).
    let r = h
        .service
        .decide(&h.author, ("Bad Name", 1), Decision::Revoke, "n");
    assert!(
        matches!(r, Err(ServiceError::Forbidden { .. })),
        "the role comes first: {r:?}"
    );
    let r = upload(
        &h,
        &h.agent,
        "Bad Name",
        returning("1"),
        manifest(json!({})),
    );
    assert!(
        matches!(r, Err(ServiceError::Forbidden { .. })),
        "the role comes first: {r:?}"
    );

    let refused: Vec<(String, String, String, Value)> = registry_records(&h)
        .into_iter()
        .filter(|r| !r["refused"].is_null())
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (
                s("action"),
                s("target"),
                r["refused"]["kind"].as_str().unwrap_or_default().to_owned(),
                r["sha256"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, Value)> = [
        ("upload", "f", "forbidden", Value::Null),
        ("upload", "f", "invalid_module", Value::Null),
        ("upload", "f", "forbidden_import", Value::Null),
        ("approve", "f@1", "forbidden", json!(sha)),
        ("reject", "f@1", "forbidden", json!(sha)),
        ("revoke", "f@1", "forbidden", Value::Null),
    ]
    .into_iter()
    .map(|(a, t, k, s)| (a.to_owned(), t.to_owned(), k.to_owned(), s))
    .collect();
    assert_eq!(refused, expected);
    // The records name the actor and the reason.
    let first = registry_records(&h)
        .into_iter()
        .find(|r| !r["refused"].is_null())
        .expect("one");
    assert_eq!(
        (first["actor"].as_str(), first["tenant_id"].as_str()),
        (Some("bot"), Some("acme"))
    );
    assert_eq!(
        first["refused"]["reason"],
        "uploading needs the author role; this key is agent"
    );
    // Pair: the version is untouched and still runs.
    assert_eq!(
        h.invoke("f", json!({})).expect("runs").output,
        Some(json!(1))
    );
}

#[test]
fn refused_manifests_and_oversized_modules_are_recorded_too() {
    let h = harness(|c| c.limits.module_bytes = 100);
    let blank = manifest(json!({"description": " "}));
    let e = upload(&h, &h.author, "f", returning("1"), blank).expect_err("blank");
    assert!(matches!(e, ServiceError::InvalidRequest { .. }), "{e:?}");
    let big = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{}")
             (func (export "aifn_call") (result i32) (i32.const 0)))"#,
        "x".repeat(200)
    ))
    .expect("wat");
    let e = upload(&h, &h.author, "f", big, manifest(json!({}))).expect_err("big");
    assert!(matches!(e, ServiceError::PayloadTooLarge { .. }), "{e:?}");
    let kinds: Vec<Value> = registry_records(&h)
        .into_iter()
        .filter(|r| r["action"] == "upload")
        .map(|r| r["refused"]["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [json!("invalid_request"), json!("payload_too_large")]
    );
}

/// The tenant's execution records, newest first, as JSON.
fn execution_records(h: &crate::Harness) -> Vec<Value> {
    let q = AuditQuery {
        stream: Some(AuditStream::Execution),
        ..AuditQuery::default()
    };
    h.service
        .audit(&h.admin, q)
        .expect("audit")
        .entries
        .iter()
        .map(|e| serde_json::to_value(e).expect("json"))
        .collect()
}

/// The record keeps durations to 0.01 ms.
fn close(recorded: &Value, answered: f64) -> bool {
    recorded
        .as_f64()
        .is_some_and(|r| (r - answered).abs() <= 0.01)
}

#[test]
fn a_record_carries_the_answers_duration_and_only_an_accepted_output() {
    use sha2::Digest as _;
    let h = harness(|_| {});
    h.deploy("ok", returning(r#"{"n":1}"#), manifest(json!({})));
    h.deploy(
        "bad",
        returning("5"),
        manifest(json!({"output_schema": {"type": "string"}})),
    );
    let ok = h.invoke("ok", json!({})).expect("ok");
    let rec = &execution_records(&h)[0];
    assert_eq!(rec["execution_id"], ok.execution_id.as_str());
    // The record's duration is the answer's, in milliseconds.
    assert!(
        close(&rec["duration_ms"], ok.duration_ms),
        "{rec} vs {}",
        ok.duration_ms
    );
    assert!(
        ok.duration_ms > 0.0 && ok.duration_ms < 60_000.0,
        "{}",
        ok.duration_ms
    );
    assert_eq!(
        rec["output_sha256"],
        hex::encode(sha2::Sha256::digest(br#"{"n":1}"#)).as_str()
    );
    // An output the schema refuses is withheld and not recorded either.
    let bad = h.invoke("bad", json!({})).expect("ran");
    // A ticket says what it is: a record pending, or an answer already.
    let call = |who| {
        h.service.start_invoke(
            who,
            InvokeRequest {
                function: "ok".into(),
                input: json!({}),
                user_id: String::new(),
                traceparent: None,
                cancel: None,
            },
        )
    };
    let ticket = call(&h.agent);
    assert_eq!(format!("{ticket:?}"), "InvokeTicket(\"recording\")");
    ticket.wait().expect("ok");
    let refused = call(&h.approver);
    assert_eq!(format!("{refused:?}"), "InvokeTicket(\"done\")");
    refused.wait().expect_err("not an agent");
    assert_eq!(bad.kind, OutcomeKind::InvalidOutput);
    let records = execution_records(&h);
    let rec = records
        .iter()
        .find(|r| r["execution_id"] == bad.execution_id.as_str())
        .expect("the record of the call");
    assert!(rec["output_sha256"].is_null(), "{rec}");
    assert!(
        close(&rec["duration_ms"], bad.duration_ms),
        "{rec} vs {}",
        bad.duration_ms
    );
    // A refusal's record is timed in milliseconds too: more than a
    // microsecond (it looked the function up), less than a minute.
    let started = std::time::Instant::now();
    let refused = h.invoke("missing", json!({})).expect_err("not found");
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rec = &execution_records(&h)[0];
    assert_eq!(
        rec["execution_id"].as_str(),
        refused.execution_id.as_deref()
    );
    let ms = rec["duration_ms"].as_f64().expect("duration");
    assert!(ms > 0.001 && ms <= wall_ms + 0.01, "{ms} within {wall_ms}");
}

#[test]
fn a_module_too_slow_to_compile_is_refused_and_recorded_as_such() {
    let h = harness(|c| c.limits.compile_timeout_ms = 1);
    let body =
        "(local.set $x (i32.add (i32.mul (local.get $x) (i32.const 3)) (i32.const 7)))".repeat(500);
    let funcs = format!("(func (local $x i32) {body})").repeat(20);
    let slow = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) {funcs} (func (export "aifn_call") (result i32) (i32.const 0)))"#
    ))
    .expect("wat");
    let e = upload(&h, &h.author, "slow", slow, manifest(json!({}))).expect_err("too slow");
    assert!(
        matches!(
            e,
            ServiceError::InvalidModule {
                kind: OutcomeKind::CompileTimeout,
                ..
            }
        ),
        "{e:?}"
    );
    let kinds: Vec<Value> = registry_records(&h)
        .into_iter()
        .filter(|r| r["action"] == "upload")
        .map(|r| r["refused"]["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("compile_timeout")]);
}
