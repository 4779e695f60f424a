//! The agent gateway through the HTTP API: each agent held to its own
//! policy (allowlist, prefixes, deny wins, nothing without one), the
//! tenant's open mode, per-agent lowered limits, budgets and their window
//! (with a manual clock), changes audited and effective at the next call,
//! agents refused on every policy route, and the catalog per agent.

use std::sync::Arc;
use std::time::Duration;

use aifn_service::ManualClock;
use aifn_types::Role;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use crate::{
    Harness, Key, Tenant, any_schema, countdown, echo, kind, manifest, str_of, text_schema,
};

/// Deploys echo under each name in `t`.
async fn echoes(h: &Harness, t: &Tenant, names: &[&str]) {
    for n in names {
        h.deploy(t, n, &echo(), manifest(n, text_schema())).await;
    }
}

fn hi() -> Value {
    json!({"text": "hi"})
}

/// The execution record of `id`, read by the tenant's admin.
async fn record(h: &Harness, t: &Tenant, id: &str) -> Value {
    h.audit(&t.admin, "stream=execution&limit=1000")
        .await
        .into_iter()
        .find(|e| e["execution_id"] == id)
        .unwrap_or_else(|| panic!("no record {id}"))
}

/// Asserts a 403 with `reason`, and that its record says the same.
async fn assert_rejected(h: &Harness, t: &Tenant, agent: &Key, function: &str, reason: &str) {
    let (status, body) = h.invoke(agent, function, hi()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{function}: {body}");
    assert_eq!(kind(&body), "forbidden", "{body}");
    assert_eq!(body["error"]["reason"], reason, "{body}");
    let r = record(h, t, str_of(&body["execution_id"])).await;
    assert_eq!(r["outcome"], "forbidden", "{r}");
    assert_eq!(r["function"], function, "{r}");
    assert_eq!(r["admission"]["decision"], "reject", "{r}");
    assert_eq!(r["admission"]["reason"], reason, "{r}");
}

/// Asserts a 200, and that its record says which policy version allowed it.
async fn assert_allowed(
    h: &Harness,
    t: &Tenant,
    agent: &Key,
    function: &str,
    by: &str,
    policy_version: Option<u64>,
) {
    let (status, body) = h.invoke(agent, function, hi()).await;
    assert_eq!(status, StatusCode::OK, "{function}: {body}");
    assert_eq!(body["output"], hi());
    let r = record(h, t, str_of(&body["execution_id"])).await;
    assert_eq!(r["outcome"], "ok", "{r}");
    assert_eq!(r["admission"]["decision"], "allow", "{r}");
    assert_eq!(r["admission"]["allowed_by"], by, "{r}");
    assert_eq!(
        r["admission"]["policy_version"].as_u64(),
        policy_version,
        "{r}"
    );
}

#[tokio::test]
async fn an_allowlist_is_obeyed_and_violated() {
    let h = Harness::new();
    let t = h.tenant("acme");
    echoes(&h, &t, &["leave_days", "payroll_export"]).await;
    let bot = h.key("acme", Role::Agent, "hr-bot");
    let p = h
        .grant(&t.admin, "hr-bot", json!({"allow": ["leave_days"]}))
        .await;
    assert_eq!(p["version"], 1, "{p}");
    assert_eq!(p["updated_by"], "acme-admin", "{p}");
    assert_allowed(&h, &t, &bot, "leave_days", "policy", Some(1)).await;
    assert_rejected(&h, &t, &bot, "payroll_export", "not_allowed").await;
    // The decision comes first: a function that does not exist is refused
    // the same way, telling the agent nothing about the tenant.
    assert_rejected(&h, &t, &bot, "nonexistent", "not_allowed").await;
}

#[tokio::test]
async fn a_prefix_pattern_admits_its_functions_only() {
    let h = Harness::new();
    let t = h.tenant("acme");
    echoes(&h, &t, &["leave_days", "leave_balance", "invoice_total"]).await;
    let bot = h.key("acme", Role::Agent, "hr-bot");
    h.grant(&t.admin, "hr-bot", json!({"allow": ["leave_*"]}))
        .await;
    assert_allowed(&h, &t, &bot, "leave_days", "policy", Some(1)).await;
    assert_allowed(&h, &t, &bot, "leave_balance", "policy", Some(1)).await;
    assert_rejected(&h, &t, &bot, "invoice_total", "not_allowed").await;
    // A pattern that is not a name or a prefix is refused, and changes nothing.
    let (status, body) = h
        .request(
            "PUT",
            "/v1/agents/hr-bot/policy",
            Some(&t.admin),
            Some(json!({"allow": ["le*ve"]})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert_allowed(&h, &t, &bot, "leave_days", "policy", Some(1)).await;
}

#[tokio::test]
async fn deny_wins_over_allow() {
    let h = Harness::new();
    let t = h.tenant("acme");
    echoes(&h, &t, &["payroll_sum", "payroll_export"]).await;
    let bot = h.key("acme", Role::Agent, "fin-bot");
    h.grant(
        &t.admin,
        "fin-bot",
        json!({"allow": ["*"], "deny": ["payroll_export"]}),
    )
    .await;
    assert_allowed(&h, &t, &bot, "payroll_sum", "policy", Some(1)).await;
    assert_rejected(&h, &t, &bot, "payroll_export", "denied").await;
}

#[tokio::test]
async fn an_agent_without_a_policy_invokes_nothing() {
    let h = Harness::new();
    let t = h.tenant("acme");
    echoes(&h, &t, &["echo"]).await;
    let new = h.key("acme", Role::Agent, "new-bot");
    assert_rejected(&h, &t, &new, "echo", "not_allowed").await;
    let (status, body) = h
        .request("GET", "/v1/agents/new-bot/policy", Some(&t.admin), None)
        .await;
    assert_eq!((status, kind(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // It is listed, with its key and no policy.
    let (status, body) = h.request("GET", "/v1/agents", Some(&t.admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let agents = body["agents"].as_array().expect("agents");
    let new_bot = agents
        .iter()
        .find(|a| a["subject"] == "new-bot")
        .unwrap_or_else(|| panic!("new-bot not listed: {body}"));
    assert_eq!(new_bot["active_keys"], 1, "{body}");
    assert!(new_bot["policy_version"].is_null(), "{body}");
    let granted = agents
        .iter()
        .find(|a| a["subject"] == "acme-agent")
        .unwrap_or_else(|| panic!("acme-agent not listed: {body}"));
    assert_eq!(granted["policy_version"], 1, "{body}");
    // Pair: the tenant's granted agent invokes the same function.
    assert_allowed(&h, &t, &t.agent, "echo", "policy", Some(1)).await;
}

#[tokio::test]
async fn open_mode_admits_every_agent_says_so_and_keeps_denials() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let other = h.tenant("globex");
    echoes(&h, &t, &["echo", "secret"]).await;
    let new = h.key("acme", Role::Agent, "new-bot");
    let held = h.key("acme", Role::Agent, "held-bot");
    h.grant(
        &t.admin,
        "held-bot",
        json!({"allow": ["*"], "deny": ["secret"]}),
    )
    .await;
    let ready = || async {
        let (status, body) = h.request("GET", "/readyz", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["open_tenants"].clone()
    };
    assert_eq!(ready().await, json!([]));
    assert_rejected(&h, &t, &new, "echo", "not_allowed").await;

    let (status, body) = h
        .request(
            "PUT",
            "/v1/tenant/mode",
            Some(&t.admin),
            Some(json!({"mode": "open"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["mode"], "open", "{body}");
    assert_eq!(body["tenant_id"], "acme", "{body}");
    assert_eq!(ready().await, json!(["acme"]));
    assert_allowed(&h, &t, &new, "echo", "open_mode", None).await;
    // An agent's own policy still holds in open mode.
    assert_rejected(&h, &t, &held, "secret", "denied").await;
    // Another tenant stays in allowlist mode.
    let (_, body) = h
        .request("GET", "/v1/tenant", Some(&other.admin), None)
        .await;
    assert_eq!(body["settings"]["mode"], "allowlist", "{body}");

    let (status, _) = h
        .request(
            "PUT",
            "/v1/tenant/mode",
            Some(&t.admin),
            Some(json!({"mode": "allowlist"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready().await, json!([]));
    assert_rejected(&h, &t, &new, "echo", "not_allowed").await;
}

#[tokio::test]
async fn a_policy_lowers_a_functions_limits_for_its_agent_only() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "count", &countdown(), manifest("counts", any_schema()))
        .await;
    let bot = h.key("acme", Role::Agent, "small-bot");
    h.grant(
        &t.admin,
        "small-bot",
        json!({"allow": ["count"], "limits": {"count": {"fuel": 1000}}}),
    )
    .await;
    let input = json!({"n": 100000});
    let (status, body) = h.invoke(&bot, "count", input.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(kind(&body), "fuel_exhausted", "{body}");
    assert!(body["fuel_used"].as_u64().expect("fuel") <= 1000, "{body}");
    // Pair: the tenant's other agent runs it under the function's limits.
    let (status, body) = h.invoke(&t.agent, "count", input).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["fuel_used"].as_u64().expect("fuel") > 1000, "{body}");
}

#[tokio::test]
async fn a_call_budget_runs_out_and_its_window_reopens_at_the_hour() {
    let clock = Arc::new(ManualClock::at_an_hour());
    let h = Harness::with_clock(clock.clone());
    let t = h.tenant("acme");
    echoes(&h, &t, &["echo"]).await;
    let bot = h.key("acme", Role::Agent, "metered");
    h.grant(
        &t.admin,
        "metered",
        json!({"allow": ["echo"], "budget": {"calls_per_hour": 2}}),
    )
    .await;
    clock.advance(Duration::from_secs(15 * 60));
    for _ in 0..2 {
        assert_allowed(&h, &t, &bot, "echo", "policy", Some(1)).await;
    }
    let r = h
        .reply(
            "POST",
            "/v1/functions/echo/invoke",
            Some(&bot),
            Some(json!({"input": hi()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(kind(&r.body), "rate_limited", "{}", r.body);
    assert_eq!(r.body["error"]["reason"], "budget_exhausted", "{}", r.body);
    // The window is the fixed UTC hour: it ends 45 minutes from now.
    let retry: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert_eq!(retry, 45 * 60);
    let rec = record(&h, &t, str_of(&r.body["execution_id"])).await;
    assert_eq!(rec["outcome"], "rate_limited", "{rec}");
    assert_eq!(rec["admission"]["decision"], "reject", "{rec}");
    assert_eq!(rec["admission"]["reason"], "budget_exhausted", "{rec}");
    // Usage says so; the refused call is not counted.
    let (status, u) = h
        .request("GET", "/v1/agents/metered/usage", Some(&t.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["agent"]["calls"], 2, "{u}");
    assert_eq!(u["agent"]["budget"]["calls_per_hour"], 2, "{u}");
    // The tenant's other agent has its own budget (none).
    assert_allowed(&h, &t, &t.agent, "echo", "policy", Some(1)).await;
    // Still the same window a second before the hour...
    clock.advance(Duration::from_secs(45 * 60 - 1));
    let (status, _) = h.invoke(&bot, "echo", hi()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...and a new one at the hour.
    clock.advance(Duration::from_secs(1));
    assert_allowed(&h, &t, &bot, "echo", "policy", Some(1)).await;
    let (_, u) = h
        .request("GET", "/v1/agents/metered/usage", Some(&t.admin), None)
        .await;
    assert_eq!(u["agent"]["calls"], 1, "{u}");
}

#[tokio::test]
async fn a_tenant_fuel_budget_holds_all_its_agents() {
    let clock = Arc::new(ManualClock::at_an_hour());
    let h = Harness::with_clock(clock.clone());
    let t = h.tenant("acme");
    let other = h.tenant("globex");
    h.deploy(&t, "count", &countdown(), manifest("counts", any_schema()))
        .await;
    h.deploy(
        &other,
        "count",
        &countdown(),
        manifest("counts", any_schema()),
    )
    .await;
    let (status, body) = h
        .request(
            "PUT",
            "/v1/tenant/budget",
            Some(&t.admin),
            Some(json!({"fuel_per_hour": 1000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["budget"]["fuel_per_hour"], 1000, "{body}");
    // Admitted while under the budget: the one call may overshoot it.
    let input = json!({"n": 10000});
    let (status, body) = h.invoke(&t.agent, "count", input.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["fuel_used"].as_u64().expect("fuel") > 1000, "{body}");
    // Now used up, for every agent of the tenant.
    let second = h.key("acme", Role::Agent, "second");
    h.grant(&t.admin, "second", json!({"allow": ["*"]})).await;
    for agent in [&t.agent, &second] {
        let (status, body) = h.invoke(agent, "count", input.clone()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["reason"], "budget_exhausted", "{body}");
    }
    let (_, u) = h
        .request("GET", "/v1/agents/second/usage", Some(&t.admin), None)
        .await;
    assert!(u["tenant"]["fuel"].as_u64().expect("fuel") > 1000, "{u}");
    assert_eq!(u["agent"]["calls"], 0, "{u}");
    // Pair: another tenant is not held to acme's budget.
    let (status, body) = h.invoke(&other.agent, "count", input.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // And the next hour is a new window.
    clock.advance(Duration::from_secs(3600));
    let (status, body) = h.invoke(&second, "count", input).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn policy_changes_are_audited_and_effective_at_the_next_call() {
    let h = Harness::new();
    let t = h.tenant("acme");
    echoes(&h, &t, &["echo", "other"]).await;
    let bot = h.key("acme", Role::Agent, "bot");
    h.grant(&t.admin, "bot", json!({"allow": ["echo"]})).await;
    assert_allowed(&h, &t, &bot, "echo", "policy", Some(1)).await;
    let p = h.grant(&t.admin, "bot", json!({"allow": ["other"]})).await;
    assert_eq!(p["version"], 2, "{p}");
    assert_rejected(&h, &t, &bot, "echo", "not_allowed").await;
    assert_allowed(&h, &t, &bot, "other", "policy", Some(2)).await;
    let (status, body) = h
        .request("DELETE", "/v1/agents/bot/policy", Some(&t.admin), None)
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_rejected(&h, &t, &bot, "other", "not_allowed").await;
    let (status, body) = h
        .request("DELETE", "/v1/agents/bot/policy", Some(&t.admin), None)
        .await;
    assert_eq!((status, kind(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // A new policy after the delete continues the count.
    let p = h.grant(&t.admin, "bot", json!({"allow": ["echo"]})).await;
    assert_eq!(p["version"], 3, "{p}");

    // Each change is a registry action with its actor, before and after.
    let actions: Vec<Value> = h
        .audit(&t.admin, "stream=registry&limit=1000")
        .await
        .into_iter()
        .filter(|e| e["target"] == "bot")
        .collect();
    let kinds: Vec<&str> = actions.iter().map(|e| str_of(&e["action"])).collect();
    // Newest first; the refused second delete is recorded too.
    assert_eq!(
        kinds,
        [
            "policy_set",
            "policy_deleted",
            "policy_deleted",
            "policy_set",
            "policy_set"
        ],
        "{actions:?}"
    );
    assert!(actions.iter().all(|e| e["actor"] == "acme-admin"));
    let second = &actions[3];
    assert_eq!(
        second["before"],
        json!({"policy": {"allow": ["echo"], "deny": []}, "version": 1}),
        "{second}"
    );
    assert_eq!(
        second["after"],
        json!({"policy": {"allow": ["other"], "deny": []}, "version": 2}),
        "{second}"
    );
    let deleted = &actions[2];
    assert!(deleted["refused"].is_null(), "{deleted}");
    assert_eq!(
        deleted["before"]["policy"]["allow"],
        json!(["other"]),
        "{deleted}"
    );
    assert!(!actions[1]["refused"].is_null(), "{:?}", actions[1]);

    // Tenant settings changes too.
    let (status, _) = h
        .request(
            "PUT",
            "/v1/tenant/output-guard",
            Some(&t.admin),
            Some(json!({"mode": "block", "patterns": [{"name": "employee_id", "regex": "E[0-9]{6}"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let settings: Vec<Value> = h
        .audit(&t.admin, "stream=registry&limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"] == "tenant_settings")
        .collect();
    assert_eq!(settings.len(), 1, "{settings:?}");
    assert_eq!(settings[0]["target"], "tenant");
    let after = &settings[0]["after"];
    assert_eq!(
        after["settings"]["output_guard"]["mode"], "block",
        "{after}"
    );
    assert_eq!(
        settings[0]["before"]["settings"]["output_guard"]["mode"],
        "flag"
    );
    // A pattern the guard cannot compile is refused and changes nothing.
    let (status, body) = h
        .request(
            "PUT",
            "/v1/tenant/output-guard",
            Some(&t.admin),
            Some(json!({"mode": "flag", "patterns": [{"name": "bad", "regex": "("}]})),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (_, body) = h.request("GET", "/v1/tenant", Some(&t.author), None).await;
    assert_eq!(body["settings"]["output_guard"]["mode"], "block", "{body}");
}

#[tokio::test]
async fn agents_are_refused_on_every_policy_route() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let routes: [(&str, &str, Option<Value>); 9] = [
        ("GET", "/v1/agents", None),
        ("GET", "/v1/agents/acme-agent/policy", None),
        (
            "PUT",
            "/v1/agents/acme-agent/policy",
            Some(json!({"allow": ["*"]})),
        ),
        ("DELETE", "/v1/agents/acme-agent/policy", None),
        ("GET", "/v1/agents/acme-agent/usage", None),
        ("GET", "/v1/tenant", None),
        ("PUT", "/v1/tenant/mode", Some(json!({"mode": "open"}))),
        ("PUT", "/v1/tenant/budget", Some(json!({}))),
        (
            "PUT",
            "/v1/tenant/output-guard",
            Some(json!({"mode": "off"})),
        ),
    ];
    for (method, path, body) in &routes {
        let (status, answer) = h.request(method, path, Some(&t.agent), body.clone()).await;
        assert_eq!(
            (status, kind(&answer)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}: {answer}"
        );
        // Even a subject that is not one tells an agent nothing more.
        if path.contains("acme-agent") {
            let bad = path.replace("acme-agent", "two%20words");
            let (status, _) = h.request(method, &bad, Some(&t.agent), body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {bad}");
        }
    }
    // Nothing changed: the agent's policy and the tenant are as they were.
    let (_, p) = h
        .request(
            "GET",
            "/v1/agents/acme-agent/policy",
            Some(&t.approver),
            None,
        )
        .await;
    assert_eq!(p["version"], 1, "{p}");
    assert_eq!(p["policy"]["allow"], json!(["*"]), "{p}");
    let (_, s) = h
        .request("GET", "/v1/tenant", Some(&t.approver), None)
        .await;
    assert_eq!(s["settings"]["mode"], "allowlist", "{s}");
    // Pair: approvers and authors read; only the admin changes.
    for reader in [&t.approver, &t.author] {
        let (status, _) = h.request("GET", "/v1/agents", Some(reader), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = h
            .request(
                "PUT",
                "/v1/agents/acme-agent/policy",
                Some(reader),
                Some(json!({"allow": []})),
            )
            .await;
        assert_eq!((status, kind(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    }
    // Another tenant's admin never sees acme's policies.
    let globex = h.tenant("globex");
    let (status, _) = h
        .request(
            "GET",
            "/v1/agents/acme-agent/policy",
            Some(&globex.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_catalog_lists_exactly_what_each_agent_may_invoke() {
    let h = Harness::new();
    let t = h.tenant("acme");
    echoes(&h, &t, &["leave_days", "leave_export", "payroll_sum"]).await;
    let hr = h.key("acme", Role::Agent, "hr-bot");
    h.grant(
        &t.admin,
        "hr-bot",
        json!({"allow": ["leave_*"], "deny": ["leave_export"], "budget": {"calls_per_hour": 1}}),
    )
    .await;
    let none = h.key("acme", Role::Agent, "new-bot");
    let names = |agent: &Key| {
        let agent = agent.clone();
        let h = &h;
        async move {
            let (status, body) = h
                .request("GET", "/v1/tools?format=anthropic", Some(&agent), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["tools"]
                .as_array()
                .expect("tools")
                .iter()
                .map(|tool| str_of(&tool["name"]).to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(&hr).await, ["leave_days"]);
    assert_eq!(
        names(&t.agent).await,
        ["leave_days", "leave_export", "payroll_sum"]
    );
    assert!(names(&none).await.is_empty());
    // A used-up budget does not hide a tool.
    let (status, _) = h.invoke(&hr, "leave_days", hi()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&hr).await, ["leave_days"]);
    // Open mode: an agent without a policy sees every active function.
    let (status, _) = h
        .request(
            "PUT",
            "/v1/tenant/mode",
            Some(&t.admin),
            Some(json!({"mode": "open"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        names(&none).await,
        ["leave_days", "leave_export", "payroll_sum"]
    );
    assert_eq!(names(&hr).await, ["leave_days"]);
}
