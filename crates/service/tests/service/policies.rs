//! The gateway's policy decision, obeyed and violated: allowlists, prefix
//! patterns, deny over allow, deny by default, open mode, lowered limits,
//! changes audited and effective at the next call, the policy routes
//! closed to agents, the catalog per agent, and the invocation record.

use aifn_service::{InvokeRequest, Principal, ServiceError, ToolDefinition, ToolFormat};
use aifn_types::{
    AgentPolicy, FunctionLimits, FunctionPattern, OutcomeKind, RejectReason, Subject, TenantMode,
};
use serde_json::{Value, json};

use crate::{Harness, harness, manifest, returning};

fn patterns(p: &[&str]) -> Vec<FunctionPattern> {
    p.iter()
        .map(|s| FunctionPattern::new(*s).expect("pattern"))
        .collect()
}

fn set(h: &Harness, who: &Principal, allow: &[&str], deny: &[&str]) -> u64 {
    let policy = AgentPolicy {
        allow: patterns(allow),
        deny: patterns(deny),
        ..AgentPolicy::default()
    };
    h.service
        .set_policy(&h.admin, &who.subject, policy)
        .expect("set policy")
        .version
}

/// The reason the gateway gave, and the record of the refusal.
fn rejected(h: &Harness, who: &Principal, name: &str) -> (RejectReason, Value) {
    let r = h.invoke_as(who, name, json!({})).expect_err("rejected");
    assert_eq!(r.error.kind().as_str(), "forbidden", "{r:?}");
    let reason = r.error.reason().expect("a gateway reason");
    let rec = h.record(&r.execution_id.expect("recorded"));
    assert_eq!(rec["outcome"], "forbidden");
    assert_eq!(rec["admission"]["decision"], "reject");
    assert_eq!(rec["admission"]["reason"], reason.as_str());
    // Rejected before anything else: no version was even looked up.
    assert!(rec["module_sha256"].is_null(), "{rec}");
    (reason, rec)
}

fn deploy_three(h: &Harness) {
    for name in ["leave_days", "leave_left", "payroll"] {
        h.deploy(name, returning("1"), manifest(json!({})));
    }
}

#[test]
fn an_allowlist_admits_its_names_and_prefixes_and_nothing_else() {
    let h = harness(|_| {});
    deploy_three(&h);
    let version = set(&h, &h.agent, &["leave_*"], &[]);
    for name in ["leave_days", "leave_left"] {
        let out = h.invoke(name, json!({})).expect("allowed");
        let rec = h.record(&out.execution_id);
        assert_eq!(
            rec["admission"],
            json!({"decision": "allow", "allowed_by": "policy", "policy_version": version})
        );
    }
    let (reason, rec) = rejected(&h, &h.agent, "payroll");
    assert_eq!(reason, RejectReason::NotAllowed);
    assert_eq!(rec["admission"]["policy_version"], version);
    // A function that does not exist is not allowed either (not not_found:
    // the decision comes before the lookup and tells nothing).
    assert_eq!(rejected(&h, &h.agent, "nope").0, RejectReason::NotAllowed);
    assert_eq!(
        rejected(&h, &h.agent, "Bad Name").0,
        RejectReason::NotAllowed
    );
    // An exact name admits exactly that name.
    set(&h, &h.agent, &["leave_days"], &[]);
    assert!(h.invoke("leave_days", json!({})).is_ok());
    assert_eq!(
        rejected(&h, &h.agent, "leave_left").0,
        RejectReason::NotAllowed
    );
}

#[test]
fn deny_wins_over_allow() {
    let h = harness(|_| {});
    deploy_three(&h);
    set(&h, &h.agent, &["*"], &["leave_l*"]);
    assert!(h.invoke("leave_days", json!({})).is_ok());
    assert!(h.invoke("payroll", json!({})).is_ok());
    let (reason, _) = rejected(&h, &h.agent, "leave_left");
    assert_eq!(reason, RejectReason::Denied);
}

#[test]
fn an_agent_without_a_policy_invokes_nothing() {
    let h = harness(|_| {});
    deploy_three(&h);
    let (reason, rec) = rejected(&h, &h.rover, "payroll");
    assert_eq!(reason, RejectReason::NotAllowed);
    assert_eq!(rec["admission"].get("policy_version"), None, "{rec}");
    // Deleting a policy takes everything back at the next call.
    assert!(h.invoke("payroll", json!({})).is_ok());
    h.service
        .delete_policy(&h.admin, &h.agent.subject)
        .expect("delete");
    assert_eq!(
        rejected(&h, &h.agent, "payroll").0,
        RejectReason::NotAllowed
    );
}

#[test]
fn open_mode_admits_agents_without_a_policy_and_says_so() {
    let h = harness(|_| {});
    deploy_three(&h);
    set(&h, &h.agent, &["leave_*"], &["leave_left"]);
    let t = h
        .service
        .set_tenant_mode(&h.admin, TenantMode::Open)
        .expect("open");
    assert_eq!((t.settings.mode, t.version), (TenantMode::Open, 1));
    assert_eq!(
        h.service.open_tenants().expect("open tenants"),
        vec![h.admin.tenant.clone()]
    );
    let out = h.invoke_as(&h.rover, "payroll", json!({})).expect("open");
    let rec = h.record(&out.execution_id);
    assert_eq!(
        rec["admission"],
        json!({"decision": "allow", "allowed_by": "open_mode"})
    );
    // An agent with a policy is still held to it.
    assert_eq!(
        rejected(&h, &h.agent, "payroll").0,
        RejectReason::NotAllowed
    );
    assert_eq!(rejected(&h, &h.agent, "leave_left").0, RejectReason::Denied);
    // Back to the allowlist: effective at the next call.
    h.service
        .set_tenant_mode(&h.admin, TenantMode::Allowlist)
        .expect("allowlist");
    assert_eq!(
        rejected(&h, &h.rover, "payroll").0,
        RejectReason::NotAllowed
    );
    assert!(h.service.open_tenants().expect("open tenants").is_empty());
}

/// Counts to `n` in a loop, then outputs `1`.
fn counting(n: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (import "aifn" "output_write" (func $o (param i32 i32)))
             (memory (export "memory") 1) (data (i32.const 0) "1")
             (func (export "aifn_call") (result i32) (local $i i32)
               (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if $l (i32.lt_u (local.get $i) (i32.const {n}))))
               (call $o (i32.const 0) (i32.const 1)) (i32.const 0)))"#
    ))
    .expect("wat")
}

fn lowered_fuel(h: &Harness, fuel: u64) {
    let mut policy = AgentPolicy {
        allow: patterns(&["*"]),
        ..AgentPolicy::default()
    };
    let limits = FunctionLimits {
        fuel: Some(fuel),
        ..FunctionLimits::default()
    };
    policy.limits.insert(
        aifn_types::FunctionName::new("count").expect("name"),
        limits,
    );
    h.service
        .set_policy(&h.admin, &h.agent.subject, policy)
        .expect("set");
}

#[test]
fn a_policy_lowers_a_functions_limits_for_its_agent_only() {
    let h = harness(|_| {});
    h.deploy("count", counting(20_000), manifest(json!({})));
    h.deploy("other", counting(20_000), manifest(json!({})));
    let free = h.invoke("count", json!({})).expect("runs");
    assert_eq!(free.kind, OutcomeKind::Ok);
    assert!(free.fuel_used > 5_000, "{}", free.fuel_used);
    // Violated: below what the call needs, it ends by the lowered fuel.
    lowered_fuel(&h, 5_000);
    let low = h.invoke("count", json!({})).expect("runs");
    assert_eq!(low.kind, OutcomeKind::FuelExhausted);
    assert!(low.fuel_used <= 5_000, "{}", low.fuel_used);
    assert_eq!(h.record(&low.execution_id)["outcome"], "fuel_exhausted");
    // The limit is for that function: the other one runs as before.
    assert_eq!(
        h.invoke("other", json!({})).expect("runs").kind,
        OutcomeKind::Ok
    );
    // Obeyed: a lowered limit above the need changes nothing.
    lowered_fuel(&h, free.fuel_used + 1_000);
    let ok = h.invoke("count", json!({})).expect("runs");
    assert_eq!((ok.kind, ok.fuel_used), (OutcomeKind::Ok, free.fuel_used));
}

#[test]
fn changes_are_audited_with_before_and_after_and_effective_at_the_next_call() {
    let h = harness(|c| c.active_cache_ms = 60_000);
    deploy_three(&h);
    assert!(h.invoke("payroll", json!({})).is_ok());
    set(&h, &h.agent, &["*"], &["payroll"]);
    assert_eq!(rejected(&h, &h.agent, "payroll").0, RejectReason::Denied);
    let registry = h.entries(aifn_service::AuditStream::Registry);
    let newest = &registry[0];
    assert_eq!(newest["action"], "policy_set", "{newest}");
    assert_eq!(newest["actor"], "carol");
    assert_eq!(newest["target"], "bot");
    assert_eq!(newest["before"]["policy"]["allow"], json!(["*"]));
    assert_eq!(newest["before"]["version"], 1);
    assert_eq!(newest["after"]["policy"]["deny"], json!(["payroll"]));
    assert_eq!(newest["after"]["version"], 2);
}

#[test]
fn agents_are_refused_on_every_policy_use_case_and_readers_only_read() {
    let h = harness(|_| {});
    let bot = h.agent.subject.clone();
    for who in [&h.agent, &h.rover] {
        let forbidden = |e: ServiceError| assert_eq!(e.kind().as_str(), "forbidden", "{e:?}");
        forbidden(h.service.agents(who).expect_err("agents"));
        forbidden(h.service.policy(who, &bot).expect_err("policy"));
        forbidden(
            h.service
                .set_policy(who, &who.subject, AgentPolicy::default())
                .expect_err("set"),
        );
        forbidden(h.service.delete_policy(who, &bot).expect_err("delete"));
        forbidden(h.service.usage(who, &bot).expect_err("usage"));
        forbidden(h.service.tenant(who).expect_err("tenant"));
        forbidden(
            h.service
                .set_tenant_mode(who, TenantMode::Open)
                .expect_err("mode"),
        );
        forbidden(
            h.service
                .set_tenant_budget(who, Default::default())
                .expect_err("budget"),
        );
        forbidden(
            h.service
                .set_output_guard(who, Default::default())
                .expect_err("guard"),
        );
    }
    for reader in [&h.author, &h.approver] {
        assert_eq!(h.service.policy(reader, &bot).expect("read").version, 1);
        assert_eq!(h.service.tenant(reader).expect("read").version, 0);
        let agents = h.service.agents(reader).expect("agents");
        let got: Vec<_> = agents
            .iter()
            .map(|a| (a.subject.as_str(), a.active_keys, a.policy_version))
            .collect();
        assert_eq!(got, [("bot", 1, Some(1)), ("rover", 1, None)]);
        let e = h
            .service
            .set_policy(reader, &bot, AgentPolicy::default())
            .expect_err("readers do not change");
        assert_eq!(e.kind().as_str(), "forbidden");
        assert!(h.service.usage(reader, &bot).is_err());
    }
    // Each refused change is in the registry stream, as refused.
    let refused: Vec<(String, String)> = h
        .entries(aifn_service::AuditStream::Registry)
        .into_iter()
        .filter(|e| e["refused"]["kind"] == "forbidden")
        .map(|e| (e["actor"].to_string(), e["action"].to_string()))
        .collect();
    let tried = [
        ("bot", "tenant_settings"),
        ("rover", "policy_set"),
        ("rover", "policy_deleted"),
        ("alice", "policy_set"),
        ("bob", "policy_set"),
    ];
    for (actor, action) in tried {
        let hit = (format!("\"{actor}\""), format!("\"{action}\""));
        assert!(refused.contains(&hit), "{hit:?} not in {refused:?}");
    }
    // Nothing changed; an unknown agent's policy is not found.
    assert_eq!(h.service.policy(&h.admin, &bot).expect("read").version, 1);
    let nobody = Subject::new("nobody").expect("subject");
    assert!(matches!(
        h.service.policy(&h.admin, &nobody),
        Err(ServiceError::NotFound { .. })
    ));
    assert!(matches!(
        h.service.delete_policy(&h.admin, &nobody),
        Err(ServiceError::NotFound { .. })
    ));
}

fn tool_names(h: &Harness, who: &Principal) -> Vec<String> {
    h.service
        .tools(who, ToolFormat::Anthropic)
        .expect("tools")
        .into_iter()
        .map(|t| match t {
            ToolDefinition::Anthropic(a) => a.name.to_string(),
            ToolDefinition::OpenAi(o) => o.function.name.to_string(),
        })
        .collect()
}

#[test]
fn the_catalog_lists_what_each_agent_may_invoke() {
    let h = harness(|_| {});
    deploy_three(&h);
    set(&h, &h.agent, &["leave_*"], &["leave_left"]);
    assert_eq!(tool_names(&h, &h.agent), ["leave_days"]);
    assert!(tool_names(&h, &h.rover).is_empty());
    h.service
        .set_tenant_mode(&h.admin, TenantMode::Open)
        .expect("open");
    assert_eq!(
        tool_names(&h, &h.rover),
        ["leave_days", "leave_left", "payroll"]
    );
    assert_eq!(tool_names(&h, &h.agent), ["leave_days"]);
}

#[test]
fn a_well_formed_traceparent_is_recorded_and_a_malformed_one_dropped() {
    let h = harness(|_| {});
    h.deploy("f", returning("1"), manifest(json!({})));
    let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (given, kept) in [(good, Some(good)), ("00-zz-yy-01", None)] {
        let out = h
            .service
            .invoke(
                &h.agent,
                InvokeRequest {
                    function: "f".into(),
                    input: json!({}),
                    user_id: "u".into(),
                    traceparent: Some(given.into()),
                    cancel: None,
                },
            )
            .expect("runs");
        let rec = h.record(&out.execution_id);
        assert_eq!(rec.get("traceparent").and_then(Value::as_str), kept);
    }
}

#[test]
fn a_cancelled_call_is_interrupted_and_its_record_says_so() {
    // Without the cancellation the guest would spin for a minute.
    let h = harness(|c| {
        aifn_test_support::plenty_of_fuel(c);
        c.limits.timeout_ms = 60_000;
    });
    let spin = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#,
    )
    .expect("wat");
    h.deploy(
        "spin",
        spin,
        manifest(json!({"limits": {"timeout_ms": 60000}})),
    );
    h.deploy("f", returning("1"), manifest(json!({})));
    let call = |name: &str, token: aifn_service::CancelToken| {
        h.service
            .invoke(
                &h.agent,
                InvokeRequest {
                    function: name.into(),
                    input: json!({}),
                    user_id: "u".into(),
                    traceparent: None,
                    cancel: Some(token),
                },
            )
            .expect("ran")
    };
    let token = aifn_service::CancelToken::new();
    token.cancel();
    let out = call("spin", token);
    assert_eq!(out.kind, OutcomeKind::Timeout);
    assert_eq!(h.record(&out.execution_id)["cancelled"], true);
    // A token never cancelled changes nothing.
    let out = call("f", aifn_service::CancelToken::new());
    assert_eq!(out.kind, OutcomeKind::Ok);
    assert_eq!(h.record(&out.execution_id).get("cancelled"), None);
}
