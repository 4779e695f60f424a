//! Budgets per agent and per tenant, over fixed hourly windows counted in
//! a manual clock: calls counted at admission, fuel at the end of each
//! call (timeouts included), the window reopening at the hour.

use std::sync::Arc;
use std::time::Duration;

use aifn_service::{ManualClock, Principal, ServiceError};
use aifn_types::{AgentPolicy, Budget, FunctionPattern, OutcomeKind, RejectReason};
use serde_json::json;

use crate::{Harness, harness_at, manifest, returning};

fn at_an_hour() -> (Arc<ManualClock>, Harness) {
    let clock = Arc::new(ManualClock::at_an_hour());
    let h = harness_at(clock.clone(), aifn_test_support::plenty_of_fuel);
    (clock, h)
}

fn budget(h: &Harness, who: &Principal, b: Budget) {
    let policy = AgentPolicy {
        allow: vec![FunctionPattern::new("*").expect("pattern")],
        budget: b,
        ..AgentPolicy::default()
    };
    h.service
        .set_policy(&h.admin, &who.subject, policy)
        .expect("set");
}

/// The call is refused by a budget; returns its retry hint.
fn exhausted(h: &Harness, who: &Principal, name: &str) -> Duration {
    let r = h.invoke_as(who, name, json!({})).expect_err("over budget");
    let ServiceError::RateLimited { retry_after, .. } = r.error else {
        panic!("not rate_limited: {r:?}");
    };
    assert_eq!(r.error.reason(), Some(RejectReason::BudgetExhausted));
    let rec = h.record(&r.execution_id.expect("recorded"));
    assert_eq!(rec["outcome"], "rate_limited");
    assert_eq!(rec["admission"]["decision"], "reject");
    assert_eq!(rec["admission"]["reason"], "budget_exhausted");
    retry_after
}

#[test]
fn an_agents_call_budget_holds_until_the_window_ends() {
    let (clock, h) = at_an_hour();
    h.deploy("f", returning("1"), manifest(json!({})));
    let two = Budget {
        calls_per_hour: Some(2),
        fuel_per_hour: None,
    };
    budget(&h, &h.agent, two);
    h.invoke("f", json!({})).expect("first");
    clock.advance(Duration::from_secs(50 * 60));
    h.invoke("f", json!({})).expect("second");
    assert_eq!(exhausted(&h, &h.agent, "f"), Duration::from_secs(600));
    // A refusal is not a call: it takes nothing more from the window.
    let u = h.service.usage(&h.admin, &h.agent.subject).expect("usage");
    assert_eq!((u.agent.calls, u.agent.budget, u.tenant.calls), (2, two, 2));
    assert_eq!(u.window_end.unix_ms() - u.window_start.unix_ms(), 3_600_000);
    let text = h.service.metrics_text();
    assert!(
        text.contains("aifn_budget_rejections_total{tenant=\"acme\"} 1"),
        "{text}"
    );
    // Another agent is not held to this one's budget.
    budget(&h, &h.rover, Budget::default());
    h.invoke_as(&h.rover, "f", json!({})).expect("rover");
    // The next hour opens a new window.
    clock.advance(Duration::from_secs(10 * 60));
    h.invoke("f", json!({})).expect("a new window");
    let u = h.service.usage(&h.admin, &h.agent.subject).expect("usage");
    assert_eq!(u.agent.calls, 1);
}

/// Spins until its deadline (or its fuel) without a call.
fn spinning() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "aifn_call") (result i32) (loop $l (br $l)) (i32.const 0)))"#,
    )
    .expect("wat")
}

#[test]
fn fuel_counts_when_a_call_ends_timeouts_included() {
    let (clock, h) = at_an_hour();
    h.deploy(
        "spin",
        spinning(),
        manifest(json!({"limits": {"timeout_ms": 20}})),
    );
    h.deploy("f", returning("1"), manifest(json!({})));
    let b = Budget {
        fuel_per_hour: Some(1_000),
        calls_per_hour: None,
    };
    budget(&h, &h.agent, b);
    // Admitted while below the budget: the one call overshoots it, and a
    // timed-out call is charged the fuel it used, exactly. The deadline is
    // looked at only between fuel slices, so a timeout has used one at least.
    let out = h.invoke("spin", json!({})).expect("ran");
    assert_eq!(out.kind, OutcomeKind::Timeout);
    assert!(out.fuel_used >= 100_000, "{}", out.fuel_used);
    let u = h.service.usage(&h.admin, &h.agent.subject).expect("usage");
    assert_eq!(
        (u.agent.fuel, u.tenant.fuel),
        (out.fuel_used, out.fuel_used)
    );
    exhausted(&h, &h.agent, "f");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        h.invoke("f", json!({})).expect("reopened").kind,
        OutcomeKind::Ok
    );
}

#[test]
fn a_call_that_ends_is_charged_the_fuel_it_used() {
    let (_clock, h) = at_an_hour();
    h.deploy("f", returning("1"), manifest(json!({})));
    budget(
        &h,
        &h.agent,
        Budget {
            fuel_per_hour: Some(u64::MAX),
            calls_per_hour: None,
        },
    );
    let out = h.invoke("f", json!({})).expect("ran");
    assert_eq!(out.kind, OutcomeKind::Ok);
    let u = h.service.usage(&h.admin, &h.agent.subject).expect("usage");
    assert_eq!(u.agent.fuel, out.fuel_used);
    assert!(out.fuel_used > 0);
}

#[test]
fn a_tenant_budget_holds_all_its_agents_together() {
    let (clock, h) = at_an_hour();
    h.deploy("f", returning("1"), manifest(json!({})));
    budget(&h, &h.rover, Budget::default());
    let t = h
        .service
        .set_tenant_budget(
            &h.admin,
            Budget {
                calls_per_hour: Some(3),
                fuel_per_hour: None,
            },
        )
        .expect("tenant budget");
    assert_eq!(t.settings.budget.calls_per_hour, Some(3));
    h.invoke("f", json!({})).expect("bot 1");
    h.invoke("f", json!({})).expect("bot 2");
    h.invoke_as(&h.rover, "f", json!({})).expect("rover 1");
    exhausted(&h, &h.rover, "f");
    exhausted(&h, &h.agent, "f");
    let u = h.service.usage(&h.admin, &h.rover.subject).expect("usage");
    assert_eq!((u.agent.calls, u.tenant.calls), (1, 3));
    clock.advance(Duration::from_secs(3600));
    h.invoke_as(&h.rover, "f", json!({})).expect("a new window");
    // Lifting the budget takes effect at the next call.
    h.service
        .set_tenant_budget(&h.admin, Budget::default())
        .expect("lift");
    for _ in 0..4 {
        h.invoke("f", json!({})).expect("no tenant budget");
    }
}
