//! Admission: the per-tenant rate and concurrency limits and the host's
//! global cap, each refused with 429 `rate_limited` and `Retry-After`,
//! while other tenants are still served.

use std::sync::Arc;

use aifn_server::ServerConfig;
use aifn_service::TenantLimits;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use crate::{Harness, Key, any_schema, echo, kind, manifest, message, spin, text_schema};

fn with_timeout(ms: u64) -> Value {
    let mut m = manifest("spins until its deadline", any_schema());
    m["limits"] = json!({"timeout_ms": ms});
    m
}

/// Starts `n` calls of `function` that run in the background.
fn hold(
    h: &Arc<Harness>,
    key: &Key,
    function: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(StatusCode, Value)>> {
    (0..n)
        .map(|_| {
            let (h, key, function) = (Arc::clone(h), key.clone(), function.to_owned());
            tokio::spawn(async move { h.invoke(&key, &function, json!({})).await })
        })
        .collect()
}

/// Asserts a 429 with a `Retry-After` of at least a second and the scope.
async fn assert_limited(h: &Harness, key: &Key, function: &str, scope: &str) {
    let r = h
        .reply(
            "POST",
            &format!("/v1/functions/{function}/invoke"),
            Some(key),
            Some(json!({"input": {"text": "hi"}})),
        )
        .await;
    assert_eq!(
        (r.status, kind(&r.body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{:?}",
        r.body
    );
    let retry: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    assert!(message(&r.body).contains(scope), "{:?}", r.body);
}

#[tokio::test]
async fn the_tenant_rate_is_limited_with_retry_after() {
    let h = Harness::with(
        |c| {
            c.tenant = TenantLimits {
                rate_per_second: 0.05,
                burst: 2,
                max_concurrent: 8,
                ..TenantLimits::default()
            }
        },
        ServerConfig::default(),
    );
    let acme = h.tenant("acme");
    let globex = h.tenant("globex");
    h.deploy(&acme, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    h.deploy(&globex, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    // The burst is allowed...
    for _ in 0..2 {
        let (status, body) = h.invoke(&acme.agent, "echo", json!({"text": "hi"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // ...the next call is not, and says when to come back (1 token at
    // 0.05/s is 20 s away).
    let r = h
        .reply(
            "POST",
            "/v1/functions/echo/invoke",
            Some(&acme.agent),
            Some(json!({"input": {"text": "hi"}})),
        )
        .await;
    assert_eq!(
        (r.status, kind(&r.body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{:?}",
        r.body
    );
    assert_eq!(r.headers[header::RETRY_AFTER], "20");
    assert!(message(&r.body).contains("tenant rate"), "{:?}", r.body);
    assert!(
        r.body["execution_id"].is_string(),
        "a refusal is recorded: {:?}",
        r.body
    );
    // Another tenant has its own bucket.
    for _ in 0..2 {
        let (status, _) = h.invoke(&globex.agent, "echo", json!({"text": "hi"})).await;
        assert_eq!(status, StatusCode::OK);
    }
    // The refusal is in the audit log; reads are not rate limited.
    let limited = h.audit(&acme.admin, "outcome=rate_limited").await;
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert_eq!(limited[0]["execution_id"], r.body["execution_id"]);
    let (status, _) = h
        .request("GET", "/v1/functions/echo", Some(&acme.agent), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_concurrency_is_limited_while_other_tenants_run() {
    let h = Arc::new(Harness::with(
        |c| {
            c.limits.timeout_ms = 5_000;
            c.tenant = TenantLimits {
                max_concurrent: 2,
                ..TenantLimits::default()
            };
        },
        ServerConfig::default(),
    ));
    let acme = h.tenant("acme");
    let globex = h.tenant("globex");
    h.deploy(&acme, "slow", &spin(), with_timeout(2_000)).await;
    h.deploy(&acme, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    h.deploy(&globex, "echo", &echo(), manifest("echo", text_schema()))
        .await;

    let held = hold(&h, &acme.agent, "slow", 2);
    h.wait_in_flight(2).await;
    // Acme is at its limit: refused at once, whatever the function.
    assert_limited(&h, &acme.agent, "echo", "tenant concurrency").await;
    assert_limited(&h, &acme.agent, "slow", "tenant concurrency").await;
    // Globex is served at the same time.
    let (status, body) = h.invoke(&globex.agent, "echo", json!({"text": "hi"})).await;
    assert_eq!(
        (status, &body["output"]),
        (StatusCode::OK, &json!({"text": "hi"})),
        "{body}"
    );
    assert!(
        held.iter().all(|j| !j.is_finished()),
        "the held calls ended before globex was served"
    );
    for j in held {
        let (status, body) = j.await.expect("join");
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "timeout"),
            "{body}"
        );
    }
    // Pair: with its calls done, acme is served again.
    let (status, _) = h.invoke(&acme.agent, "echo", json!({"text": "hi"})).await;
    assert_eq!(status, StatusCode::OK);
    let limited = h.audit(&acme.admin, "outcome=rate_limited").await;
    assert_eq!(limited.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_concurrency_is_capped_across_tenants() {
    let h = Arc::new(Harness::with(
        |c| {
            c.limits.timeout_ms = 5_000;
            c.max_concurrent = 2;
        },
        ServerConfig::default(),
    ));
    let acme = h.tenant("acme");
    let globex = h.tenant("globex");
    h.deploy(&acme, "slow", &spin(), with_timeout(2_000)).await;
    h.deploy(&globex, "echo", &echo(), manifest("echo", text_schema()))
        .await;

    let held = hold(&h, &acme.agent, "slow", 2);
    h.wait_in_flight(2).await;
    // The host is full: another tenant, under its own limits, is refused too.
    assert_limited(&h, &globex.agent, "echo", "host concurrency").await;
    for j in held {
        let (status, body) = j.await.expect("join");
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "timeout"),
            "{body}"
        );
    }
    // Pair: room again.
    let (status, _) = h.invoke(&globex.agent, "echo", json!({"text": "hi"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.in_flight().await, 0);
}
