//! The output guard through a real service: `flag` answers and records the
//! findings, `block` withholds the output as `output_blocked`, a manifest
//! raises or lowers the tenant's mode, tenant patterns are named, and the
//! values themselves are never recorded, logged or answered.

use aifn_service::{AuditQuery, ServiceError};
use aifn_types::{GuardMode, GuardPattern, GuardSettings, OutcomeKind};
use serde_json::{Value, json};

use crate::{Harness, harness, manifest, returning};

const SSN: &str = "123-45-6789";
const CARD: &str = "4111 1111 1111 1111";
const LEAK: &str = r#"{"name":"Dana","ssn":"123-45-6789","pay":{"card":"4111 1111 1111 1111"}}"#;
const MASKED: &str = r#"{"name":"Dana","ssn":"***-**-6789","pay":{"card":"XXXX-XXXX-XXXX-1111"}}"#;

fn set_guard(h: &Harness, mode: GuardMode, patterns: &[(&str, &str)]) {
    h.service
        .set_output_guard(
            &h.admin,
            GuardSettings {
                mode,
                patterns: patterns
                    .iter()
                    .map(|(n, r)| GuardPattern {
                        name: (*n).into(),
                        regex: (*r).into(),
                    })
                    .collect(),
            },
        )
        .expect("the admin sets the output guard");
}

/// The invocation record of `execution_id`, as JSON.
fn record(h: &Harness, execution_id: &str) -> Value {
    let page = h
        .service
        .audit(&h.admin, AuditQuery::default())
        .expect("audit");
    let v = serde_json::to_value(&page).expect("json");
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["execution_id"] == execution_id)
        .cloned()
        .expect("the call's record")
}

/// Nothing the service keeps or shows holds a leaked value.
fn assert_no_values(h: &Harness) {
    let page = h
        .service
        .audit(&h.admin, AuditQuery::default())
        .expect("audit");
    let everything = format!(
        "{}\n{}",
        serde_json::to_string(&page).expect("json"),
        h.service.metrics_text()
    );
    for value in [SSN, CARD, "4111111111111111"] {
        assert!(!everything.contains(value), "{value} was recorded");
    }
}

#[test]
fn flag_mode_answers_and_records_kinds_and_paths_only() {
    let h = harness(|_| {});
    h.deploy("leaky", returning(LEAK), manifest(json!({})));
    h.deploy("masked", returning(MASKED), manifest(json!({})));
    // The default mode is flag.
    let out = h.invoke("leaky", json!({})).expect("runs");
    assert_eq!(out.kind, OutcomeKind::Ok);
    assert_eq!(
        out.output.as_ref().map(|o| o["ssn"].clone()),
        Some(json!(SSN))
    );
    let rec = record(&h, &out.execution_id);
    assert_eq!(rec["outcome"], "ok");
    assert_eq!(
        rec["findings"],
        json!([
            {"kind": "ssn", "path": "/ssn"},
            {"kind": "payment_card", "path": "/pay/card"}
        ])
    );
    // Masked values are no findings.
    let clean = h.invoke("masked", json!({})).expect("runs");
    assert_eq!(clean.kind, OutcomeKind::Ok);
    assert_eq!(record(&h, &clean.execution_id).get("findings"), None);
    assert_no_values(&h);
}

#[test]
fn block_mode_withholds_a_leaking_output_and_answers_a_clean_one() {
    let h = harness(|_| {});
    set_guard(&h, GuardMode::Block, &[]);
    h.deploy("leaky", returning(LEAK), manifest(json!({})));
    h.deploy("masked", returning(MASKED), manifest(json!({})));
    let out = h.invoke("leaky", json!({})).expect("ran");
    assert_eq!(out.kind, OutcomeKind::OutputBlocked);
    assert_eq!(out.output, None);
    let message = out.message.clone().unwrap_or_default();
    assert!(
        message.contains("ssn") && message.contains("payment_card"),
        "{message}"
    );
    let rec = record(&h, &out.execution_id);
    assert_eq!(rec["outcome"], "output_blocked");
    assert_eq!(rec["findings"].as_array().map(Vec::len), Some(2), "{rec}");
    assert_eq!(h.service.metrics().count(OutcomeKind::OutputBlocked), 1);
    let clean = h.invoke("masked", json!({})).expect("runs");
    assert_eq!(clean.kind, OutcomeKind::Ok);
    assert!(clean.output.is_some());
    assert_no_values(&h);
}

#[test]
fn a_manifest_raises_the_tenants_mode_to_block() {
    let h = harness(|_| {});
    h.deploy(
        "strict",
        returning(LEAK),
        manifest(json!({"output_guard": "block"})),
    );
    h.deploy("default", returning(LEAK), manifest(json!({})));
    let strict = h.invoke("strict", json!({})).expect("ran");
    assert_eq!(strict.kind, OutcomeKind::OutputBlocked);
    assert_eq!(strict.output, None);
    // The tenant's flag still holds for a function without an override.
    let default = h.invoke("default", json!({})).expect("runs");
    assert_eq!(default.kind, OutcomeKind::Ok);
    assert_no_values(&h);
}

#[test]
fn a_manifest_lowers_the_tenants_mode_to_off() {
    let h = harness(|_| {});
    set_guard(&h, GuardMode::Block, &[]);
    h.deploy(
        "trusted",
        returning(LEAK),
        manifest(json!({"output_guard": "off"})),
    );
    h.deploy(
        "flagged",
        returning(LEAK),
        manifest(json!({"output_guard": "flag"})),
    );
    h.deploy("default", returning(LEAK), manifest(json!({})));
    let trusted = h.invoke("trusted", json!({})).expect("runs");
    assert_eq!(trusted.kind, OutcomeKind::Ok);
    assert_eq!(record(&h, &trusted.execution_id).get("findings"), None);
    let flagged = h.invoke("flagged", json!({})).expect("runs");
    assert_eq!(flagged.kind, OutcomeKind::Ok);
    assert!(record(&h, &flagged.execution_id)["findings"].is_array());
    let default = h.invoke("default", json!({})).expect("ran");
    assert_eq!(default.kind, OutcomeKind::OutputBlocked);
}

#[test]
fn tenant_patterns_are_found_by_name_and_a_bad_one_is_refused() {
    let h = harness(|_| {});
    set_guard(&h, GuardMode::Flag, &[("employee_id", r"\bEMP-\d{6}\b")]);
    h.deploy(
        "hr",
        returning(r#"{"who":["EMP-104200"],"ok":"EMP-1"}"#),
        manifest(json!({})),
    );
    let out = h.invoke("hr", json!({})).expect("runs");
    assert_eq!(
        record(&h, &out.execution_id)["findings"],
        json!([{"kind": "pattern", "path": "/who/0", "pattern": "employee_id"}])
    );
    for (name, regex) in [
        ("employee_id", "(unclosed"),
        ("Bad-Name", "x"),
        ("all", ".*"),
    ] {
        let e = h
            .service
            .set_output_guard(
                &h.admin,
                GuardSettings {
                    mode: GuardMode::Block,
                    patterns: vec![GuardPattern {
                        name: name.into(),
                        regex: regex.into(),
                    }],
                },
            )
            .expect_err("refused");
        assert!(matches!(e, ServiceError::InvalidRequest { .. }), "{e:?}");
    }
    // The refused settings changed nothing: still flag, still the pattern.
    let settings = h.service.tenant(&h.admin).expect("tenant").settings;
    assert_eq!(settings.output_guard.mode, GuardMode::Flag);
    assert_eq!(settings.output_guard.patterns.len(), 1);
}

#[test]
fn only_the_admin_sets_the_output_guard() {
    let h = harness(|_| {});
    for who in [&h.agent, &h.author, &h.approver] {
        let e = h
            .service
            .set_output_guard(who, GuardSettings::default())
            .expect_err("not an admin");
        assert!(matches!(e, ServiceError::Forbidden { .. }), "{e:?}");
    }
    assert!(
        h.service
            .set_output_guard(&h.admin, GuardSettings::default())
            .is_ok()
    );
}

#[test]
fn a_blocked_output_is_not_captured_and_an_answered_one_is() {
    let h = harness(|_| {});
    set_guard(&h, GuardMode::Block, &[]);
    let capture = json!({"capture": {"retention_days": 1}});
    h.deploy("leaky", returning(LEAK), manifest(capture.clone()));
    h.deploy("masked", returning(MASKED), manifest(capture));
    let blocked = h.invoke("leaky", json!({"n": 1})).expect("ran");
    assert_eq!(blocked.kind, OutcomeKind::OutputBlocked);
    let clean = h.invoke("masked", json!({"n": 2})).expect("ran");
    assert_eq!(clean.kind, OutcomeKind::Ok);

    let db = h
        .service
        .config()
        .layout()
        .expect("layout")
        .audit_config()
        .db_path;
    let conn = rusqlite::Connection::open(db).expect("audit db");
    let output = |execution_id: &str| -> (Vec<u8>, Option<Vec<u8>>) {
        conn.query_row(
            "SELECT input, output FROM audit_captures WHERE execution_id = ?1",
            [execution_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("a capture row")
    };
    // The input is captured either way; the blocked output nowhere.
    let (input, out) = output(&blocked.execution_id);
    assert_eq!((input, out), (br#"{"n":1}"#.to_vec(), None));
    let (_, out) = output(&clean.execution_id);
    assert_eq!(out.as_deref(), Some(MASKED.as_bytes()));
}
