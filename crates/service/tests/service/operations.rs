//! The operations around calls: the tool catalog in either format, a
//! ticket that resolves once, the metrics, retention and the active-version
//! cache's lifetime.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aifn_service::{AuditQuery, InvokeRequest, ServiceError, ToolDefinition, ToolFormat};
use aifn_types::OutcomeKind;
use serde_json::json;

use crate::use_cases::upload;
use crate::{harness, manifest, returning};

#[test]
fn the_tool_catalog_is_for_agents_in_either_format() {
    let h = harness(|_| {});
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    h.deploy(
        "f",
        returning("1"),
        manifest(json!({"description": "adds", "input_schema": schema})),
    );
    upload(
        &h,
        &h.author,
        "pending",
        returning("1"),
        manifest(json!({})),
    )
    .expect("pending");
    let tools = h
        .service
        .tools(&h.agent, ToolFormat::OpenAi)
        .expect("tools");
    assert_eq!(
        serde_json::to_value(&tools).expect("json"),
        json!([{"type": "function", "function": {"name": "f", "description": "adds", "parameters": schema}}])
    );
    let tools = h
        .service
        .tools(&h.agent, ToolFormat::Anthropic)
        .expect("tools");
    assert!(
        matches!(&tools[..], [ToolDefinition::Anthropic(t)] if t.input_schema == schema && t.description == "adds")
    );
    assert_eq!(ToolFormat::default(), ToolFormat::OpenAi);
    for who in [&h.author, &h.approver, &h.admin] {
        assert!(matches!(
            h.service.tools(who, ToolFormat::OpenAi),
            Err(ServiceError::Forbidden { .. })
        ));
        assert!(h.service.authorize_tools(who).is_err());
    }
    assert!(h.service.authorize_tools(&h.agent).is_ok());
    for (who, ok) in [
        (&h.admin, true),
        (&h.approver, true),
        (&h.author, false),
        (&h.agent, false),
    ] {
        assert_eq!(h.service.authorize_audit(who).is_ok(), ok);
        assert_eq!(h.service.audit(who, AuditQuery::default()).is_ok(), ok);
    }
}

#[test]
fn a_ticket_resolves_once() {
    let h = harness(|_| {});
    h.deploy("f", returning("1"), manifest(json!({})));
    let ticket = h.service.start_invoke(
        &h.agent,
        InvokeRequest {
            function: "f".into(),
            input: json!({}),
            user_id: String::new(),
            traceparent: None,
            cancel: None,
        },
    );
    let mut ticket = pin!(ticket);
    let mut cx = Context::from_waker(Waker::noop());
    let first = loop {
        match ticket.as_mut().poll(&mut cx) {
            Poll::Ready(r) => break r,
            Poll::Pending => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    };
    assert_eq!(first.expect("ran").output, Some(json!(1)));
    let Poll::Ready(Err(again)) = ticket.as_mut().poll(&mut cx) else {
        panic!("a second poll answers at once")
    };
    assert!(
        matches!(again.error, ServiceError::Internal { .. }),
        "{again:?}"
    );
    // A refused call's ticket resolves to the refusal.
    let refused = h.service.start_invoke(
        &h.approver,
        InvokeRequest {
            function: "f".into(),
            input: json!({}),
            user_id: String::new(),
            traceparent: None,
            cancel: None,
        },
    );
    assert!(
        matches!(refused.wait(), Err(r) if matches!(r.error, ServiceError::Forbidden { .. }) && r.execution_id.is_some())
    );
}

#[test]
fn the_metrics_count_every_attempt_and_type_each_series() {
    let h = harness(|_| {});
    h.deploy("f", returning("1"), manifest(json!({})));
    h.invoke("f", json!({})).expect("ok");
    h.invoke("nope", json!({})).expect_err("not found");
    assert_eq!(
        (
            h.service.metrics().count(OutcomeKind::Ok),
            h.service.metrics().count(OutcomeKind::NotFound)
        ),
        (1, 1)
    );
    let text = h.service.metrics_text();
    for line in [
        "aifn_invocations_total{outcome=\"ok\"} 1",
        "aifn_invocations_total{outcome=\"not_found\"} 1",
        "# TYPE aifn_audit_records_total counter",
        "# TYPE aifn_audit_commits_total counter",
        "# TYPE aifn_audit_healthy gauge",
        "aifn_audit_healthy 1",
        "# TYPE aifn_cached_modules gauge",
        "aifn_in_flight 0",
        "aifn_invocation_duration_seconds_count 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    let records: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("aifn_audit_records_total "))
        .and_then(|v| v.parse().ok())
        .expect("records");
    assert!(records >= 4, "upload, approve and two calls: {records}");
    assert_eq!(h.service.ready(), Ok(()));
}

#[test]
fn retention_prunes_only_when_set() {
    let h = harness(|_| {});
    h.deploy("f", returning("1"), manifest(json!({})));
    assert_eq!(h.service.apply_retention().expect("no retention"), 0);
    let h = harness(|c| c.audit.retention_days = Some(0));
    h.deploy("f", returning("1"), manifest(json!({})));
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(h.service.apply_retention().expect("retention") > 0);
    h.service.close().expect("close");
}

/// A registry audit sink for a second registry on the same database,
/// standing in for another node (whose records are not under test here).
struct OtherNode;

impl aifn_registry::AuditSink for OtherNode {
    fn record(&self, _: &aifn_types::RegistryAction) -> Result<(), aifn_registry::SinkError> {
        Ok(())
    }
}

#[test]
fn a_change_made_elsewhere_is_seen_once_the_cache_ttl_has_passed() {
    let ttl = std::time::Duration::from_millis(1500);
    let h = harness(|c| c.active_cache_ms = 1500);
    h.deploy("f", returning("1"), manifest(json!({})));
    assert_eq!(h.invoke("f", json!({})).expect("v1").version, 1);
    // The same bytes as a new version: the same sha256, another number.
    let v2 = upload(&h, &h.author, "f", returning("1"), manifest(json!({}))).expect("v2");
    let other = aifn_registry::Registry::open(h.dir.path(), OtherNode).expect("registry");
    let target = aifn_registry::VersionRef {
        tenant: h.approver.tenant.clone(),
        name: aifn_types::FunctionName::new("f").expect("name"),
        version: 2,
    };
    other
        .approve(
            &h.approver,
            &target,
            &v2.sha256,
            "approved on another node",
            false,
        )
        .expect("approve elsewhere");
    // Within the TTL the cached v1 still answers (no registry query)...
    assert_eq!(h.invoke("f", json!({})).expect("cached").version, 1);
    // ...and once it has passed, v2 does.
    std::thread::sleep(ttl + std::time::Duration::from_millis(100));
    assert_eq!(h.invoke("f", json!({})).expect("v2").version, 2);
    // A revocation elsewhere is seen the same way.
    other
        .revoke(&h.approver, &target, "revoked on another node")
        .expect("revoke elsewhere");
    std::thread::sleep(ttl + std::time::Duration::from_millis(100));
    let r = h.invoke("f", json!({})).expect_err("revoked");
    assert!(matches!(r.error, ServiceError::NotActive { .. }), "{r:?}");
}
