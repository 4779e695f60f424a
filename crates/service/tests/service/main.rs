//! The service's use cases in-process: invocation rules, caches, and
//! failing closed when the audit log cannot write.

mod budgets;
mod bundle;
mod cache;
mod diff;
mod guard;
mod javascript;
mod operations;
mod policies;
mod replay;
mod testing;
mod use_cases;

use std::sync::Arc;

use aifn_service::{
    Clock, Credential, Decision, InvokeRequest, LocalAdmin, Origin, Principal, Service,
    ServiceConfig, ServiceError, SystemClock, UploadRequest, VersionInfo,
};
use aifn_test_support::TempService;
use aifn_types::{Manifest, OutcomeKind, Role, Subject, TenantId};
use serde_json::{Value, json};

pub(crate) struct Harness {
    pub(crate) service: Service,
    pub(crate) author: Principal,
    pub(crate) approver: Principal,
    pub(crate) agent: Principal,
    pub(crate) admin: Principal,
    /// A second agent of the tenant, with no policy.
    pub(crate) rover: Principal,
    pub(crate) dir: tempfile::TempDir,
}

fn principal(admin: &LocalAdmin, service: &Service, role: Role, subject: &str) -> Principal {
    let key = admin
        .create_key(
            &TenantId::new("acme").expect("tenant"),
            role,
            &Subject::new(subject).expect("subject"),
            &Subject::new("test").expect("subject"),
        )
        .expect("key");
    service
        .authenticate(&Credential::ApiKey(key.secret.clone()), origin("/test"))
        .expect("authenticates")
}

pub(crate) fn harness(tune: impl FnOnce(&mut ServiceConfig)) -> Harness {
    harness_at(Arc::new(SystemClock), tune)
}

/// [`harness`] whose budgets count in `clock`.
pub(crate) fn harness_at(clock: Arc<dyn Clock>, tune: impl FnOnce(&mut ServiceConfig)) -> Harness {
    let TempService {
        service,
        admin,
        dir,
    } = TempService::open_with_clock(&std::env::temp_dir(), clock, tune);
    let h = Harness {
        author: principal(&admin, &service, Role::Author, "alice"),
        approver: principal(&admin, &service, Role::Approver, "bob"),
        agent: principal(&admin, &service, Role::Agent, "bot"),
        admin: principal(&admin, &service, Role::Admin, "carol"),
        rover: principal(&admin, &service, Role::Agent, "rover"),
        service,
        dir,
    };
    admin.close().expect("close");
    // Deny by default: the agent is granted every function, as an admin
    // does; the tests of policies take it back.
    h.grant(&h.agent, &["*"]);
    h
}

pub(crate) fn manifest(extra: Value) -> Manifest {
    let mut m = json!({"description": "test function", "input_schema": {"type": "object"}});
    if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(m).expect("manifest")
}

/// Writes `output` (a JSON literal) and returns 0.
pub(crate) fn returning(output: &str) -> Vec<u8> {
    let escaped = output.replace('\\', "\\\\").replace('"', "\\\"");
    wat::parse_str(format!(
        r#"(module (import "aifn" "output_write" (func $o (param i32 i32)))
             (memory (export "memory") 1) (data (i32.const 0) "{escaped}")
             (func (export "aifn_call") (result i32) (call $o (i32.const 0) (i32.const {})) (i32.const 0)))"#,
        output.len()
    ))
    .expect("wat")
}

impl Harness {
    /// Sets the policy of `agent` to allow `patterns`, as the admin.
    pub(crate) fn grant(&self, agent: &Principal, patterns: &[&str]) -> aifn_service::PolicyInfo {
        let policy = aifn_types::AgentPolicy {
            allow: patterns
                .iter()
                .map(|p| aifn_types::FunctionPattern::new(*p).expect("pattern"))
                .collect(),
            ..Default::default()
        };
        self.service
            .set_policy(&self.admin, &agent.subject, policy)
            .expect("set policy")
    }

    pub(crate) fn deploy(&self, name: &str, module: Vec<u8>, manifest: Manifest) -> VersionInfo {
        let v = self
            .service
            .upload(
                &self.author,
                UploadRequest {
                    name: name.into(),
                    manifest,
                    module,
                    source: None,
                },
            )
            .expect("upload");
        self.service
            .decide(
                &self.approver,
                (name, v.version),
                Decision::Approve { sha256: &v.sha256 },
                "ok",
            )
            .expect("approve")
    }

    pub(crate) fn invoke(
        &self,
        name: &str,
        input: Value,
    ) -> Result<aifn_service::InvokeOutcome, aifn_service::Refused> {
        self.invoke_as(&self.agent, name, input)
    }

    /// An invocation of `name` with an empty input by the agent `who`.
    pub(crate) fn invoke_as(
        &self,
        who: &Principal,
        name: &str,
        input: Value,
    ) -> Result<aifn_service::InvokeOutcome, aifn_service::Refused> {
        self.service.invoke(
            who,
            InvokeRequest {
                function: name.into(),
                input,
                user_id: "u".into(),
                traceparent: None,
                cancel: None,
            },
        )
    }

    /// The tenant's newest records of one stream (up to 1,000), newest
    /// first, as JSON.
    pub(crate) fn entries(&self, stream: aifn_service::AuditStream) -> Vec<Value> {
        let q = aifn_service::AuditQuery {
            stream: Some(stream),
            limit: Some(1000),
            ..aifn_service::AuditQuery::default()
        };
        let page = self.service.audit(&self.admin, q).expect("audit");
        page.entries
            .iter()
            .map(|e| serde_json::to_value(e).expect("json"))
            .collect()
    }

    /// The audit record of one execution, as JSON.
    pub(crate) fn record(&self, execution_id: &str) -> Value {
        self.entries(aifn_service::AuditStream::Execution)
            .into_iter()
            .find(|e| e["execution_id"] == execution_id)
            .unwrap_or_else(|| panic!("no record of {execution_id}"))
    }
}

#[test]
fn a_new_approval_supersedes_and_takes_effect_at_once() {
    let h = harness(|_| {});
    h.deploy("f", returning("[1]"), manifest(json!({})));
    assert_eq!(
        h.invoke("f", json!({})).expect("runs").output,
        Some(json!([1]))
    );
    let v2 = h.deploy("f", returning("[2]"), manifest(json!({})));
    assert_eq!(v2.version, 2);
    // The cached v1 is dropped on approval; the very next call runs v2.
    let out = h.invoke("f", json!({})).expect("runs");
    assert_eq!((out.version, out.output), (2, Some(json!([2]))));
}

#[test]
fn an_output_that_breaks_the_declared_output_schema_is_invalid_output() {
    let h = harness(|_| {});
    let schema = json!({"output_schema": {"type": "object", "required": ["total"]}});
    h.deploy(
        "good",
        returning(r#"{"total":3}"#),
        manifest(schema.clone()),
    );
    h.deploy("bad", returning(r#"{"sum":3}"#), manifest(schema));
    assert_eq!(
        h.invoke("good", json!({})).expect("runs").kind,
        OutcomeKind::Ok
    );
    let bad = h.invoke("bad", json!({})).expect("runs");
    assert_eq!(bad.kind, OutcomeKind::InvalidOutput);
    assert_eq!(bad.output, None);
    assert!(
        bad.message.as_deref().is_some_and(|m| m.contains("total")),
        "{bad:?}"
    );
}

#[test]
fn uploads_with_bad_manifests_are_refused_and_store_nothing() {
    let h = harness(|_| {});
    let up = |m: Manifest, module: Vec<u8>| {
        h.service.upload(
            &h.author,
            UploadRequest {
                name: "f".into(),
                manifest: m,
                module,
                source: None,
            },
        )
    };
    let e = up(
        manifest(json!({"input_schema": {"type": 12}})),
        returning("1"),
    )
    .expect_err("bad schema");
    assert!(matches!(e, ServiceError::InvalidRequest { .. }), "{e:?}");
    let e = up(
        manifest(json!({"limits": {"timeout_ms": 999_999}})),
        returning("1"),
    )
    .expect_err("over the maximum");
    assert!(
        matches!(e, ServiceError::InvalidRequest { ref message } if message.contains("timeout_ms")),
        "{e:?}"
    );
    let e = up(
        manifest(json!({"limits": {"memory_bytes": 1024}})),
        returning("1"),
    )
    .expect_err("below initial memory");
    assert!(
        matches!(e, ServiceError::InvalidRequest { ref message } if message.contains("initial memory")),
        "{e:?}"
    );
    let e = up(manifest(json!({"description": "  "})), returning("1")).expect_err("no description");
    assert!(matches!(e, ServiceError::InvalidRequest { .. }), "{e:?}");
    let e = up(manifest(json!({})), b"\0asm garbage".to_vec()).expect_err("not wasm");
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
    assert!(matches!(
        h.service.get_function(&h.author, "f"),
        Err(ServiceError::NotFound { .. })
    ));
    // The same upload with a sound manifest is accepted.
    assert!(
        up(
            manifest(json!({"limits": {"timeout_ms": 500}})),
            returning("1")
        )
        .is_ok()
    );
}

#[test]
fn only_agents_invoke_and_the_refusal_is_recorded() {
    let h = harness(|_| {});
    h.deploy("f", returning("1"), manifest(json!({})));
    let r = h
        .service
        .invoke(
            &h.author,
            InvokeRequest {
                function: "f".into(),
                input: json!({}),
                user_id: String::new(),
                traceparent: None,
                cancel: None,
            },
        )
        .expect_err("authors do not invoke");
    assert!(matches!(r.error, ServiceError::Forbidden { .. }));
    let id = r.execution_id.expect("recorded");
    let page = h
        .service
        .audit(&h.admin, aifn_service::AuditQuery::default())
        .expect("audit");
    let v = serde_json::to_value(&page).expect("json");
    let rec = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["execution_id"] == id.as_str())
        .expect("the refusal's record");
    assert_eq!(rec["outcome"], "forbidden");
    assert_eq!(rec["agent_id"], "alice");
}

#[test]
fn when_the_audit_log_cannot_write_calls_fail_closed() {
    // A real quota on the audit database: once full, no record can be written.
    let h = harness(|c| c.audit.max_db_bytes = Some(96 * 1024));
    h.deploy(
        "f",
        returning(r#"{"secret":"result"}"#),
        manifest(json!({})),
    );
    let mut ran_ok = 0;
    let refused = loop {
        match h.invoke("f", json!({"padding": "x".repeat(200)})) {
            Ok(out) => {
                assert_eq!(out.output, Some(json!({"secret": "result"})));
                ran_ok += 1;
                assert!(ran_ok < 10_000, "the quota never filled");
            }
            Err(r) => break r,
        }
    };
    assert!(ran_ok > 0);
    // The call whose record failed gets no output, only an unavailable error.
    assert!(
        matches!(refused.error, ServiceError::Unavailable { .. }),
        "{refused:?}"
    );
    assert_eq!(
        h.service.ready(),
        Err(ServiceError::Unavailable {
            message: "the audit log cannot write".into()
        })
    );
    // While it cannot write, no result leaves without its record: calls are
    // refused before running, or (when a small refusal record still fits
    // and the log reports healthy again) run and have their output withheld.
    for _ in 0..5 {
        let r = h
            .invoke("f", json!({"padding": "x".repeat(200)}))
            .expect_err("no output while the log is full");
        assert!(matches!(r.error, ServiceError::Unavailable { .. }), "{r:?}");
    }
    let ok_before = h.service.metrics().count(OutcomeKind::Ok);
    assert_eq!(ok_before, ran_ok, "no call ran without its record");
}

/// Drives a future on this thread; the waker unparks it.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => return out,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

#[test]
fn an_awaited_ticket_answers_only_with_a_durable_record_and_fails_closed_without_one() {
    let h = harness(|c| c.audit.max_db_bytes = Some(96 * 1024));
    h.deploy("f", returning(r#"{"n":1}"#), manifest(json!({})));
    let call = || {
        h.service.start_invoke(
            &h.agent,
            InvokeRequest {
                function: "f".into(),
                input: json!({"padding": "x".repeat(200)}),
                user_id: "u".into(),
                traceparent: None,
                cancel: None,
            },
        )
    };
    // Obeyed: the answer is the call's, and its record is there to read.
    let out = block_on(call()).expect("ran");
    assert_eq!(out.output, Some(json!({"n": 1})));
    let page = h
        .service
        .audit(&h.admin, aifn_service::AuditQuery::default())
        .expect("audit");
    assert!(
        page.entries
            .iter()
            .any(|e| serde_json::to_value(e).expect("json")["execution_id"]
                == out.execution_id.as_str()),
        "the awaited call's record is in the log"
    );
    // Violated: once the quota is full, an awaited call gets no output.
    let mut ran_ok = 1;
    let refused = loop {
        match block_on(call()) {
            Ok(_) => {
                ran_ok += 1;
                assert!(ran_ok < 10_000, "the quota never filled");
            }
            Err(r) => break r,
        }
    };
    assert!(
        matches!(refused.error, ServiceError::Unavailable { .. }),
        "{refused:?}"
    );
    assert_eq!(h.service.metrics().count(OutcomeKind::Ok), ran_ok);
}

#[test]
fn unauthenticated_attempts_are_refused_with_a_reason() {
    let h = harness(|_| {});
    for (credential, reason) in [
        (Credential::Missing, "missing key"),
        (Credential::Malformed, "malformed key"),
        (Credential::ApiKey("nonsense".into()), "malformed key"),
        (
            Credential::ApiKey(
                "aifn_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000"
                    .into(),
            ),
            "unknown key",
        ),
    ] {
        let e = h
            .service
            .authenticate(
                &credential,
                Origin {
                    route: "/v1/functions",
                    remote: Some("127.0.0.1:1".parse().expect("addr")),
                },
            )
            .expect_err("refused");
        assert_eq!(e, ServiceError::Unauthenticated { reason });
    }
    // Each attempt is counted as an unauthenticated invocation attempt.
    assert_eq!(h.service.metrics().count(OutcomeKind::Unauthenticated), 4);
    assert!(
        h.service
            .metrics_text()
            .contains("aifn_invocations_total{outcome=\"unauthenticated\"} 4")
    );
}

/// The route of a test's requests, with no peer.
fn origin(route: &str) -> Origin<'_> {
    Origin {
        route,
        remote: None,
    }
}
