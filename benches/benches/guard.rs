//! The output guard's cost, beside the call it guards, in one run:
//!
//! - `scan_clean_1k`: a typical 1 KB output (objects of short strings and
//!   numbers, dates, ids, a phone number, masked values), no findings —
//!   the target is ≤ 2 µs;
//! - `scan_findings_1k`: the same with an SSN, a card number, an IBAN and
//!   a key in it (the pointer strings are built);
//! - `scan_clean_1k_patterns`: the clean output and four tenant patterns;
//! - `echo_service`: `Service::invoke` of the echo guest (~50-byte input),
//!   the whole invoke path, data dir on tmpfs, as in benches/echo.rs.
//!
//! A plain timed loop then writes `guard.json` with the means and the
//! clean scan's share of the echo's time (target ≤ 5%).

use std::time::{Duration, Instant};

use aifn_benches::{
    ECHO_INPUT, ECHO_WAT, ServiceFixture, bench_service_config, object_manifest, principal,
    save_json, tmpfs_dir, wasm,
};
use aifn_service::{InvokeRequest, OutputGuard};
use aifn_types::{AgentPolicy, FunctionPattern, GuardMode, GuardPattern, GuardSettings, Role};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

fn request(input: &Value) -> InvokeRequest {
    InvokeRequest {
        function: "echo".into(),
        input: input.clone(),
        user_id: "u-1".into(),
        traceparent: None,
        cancel: None,
    }
}

/// A realistic ~1 KB answer of an HR/ordering function.
fn clean_output() -> Value {
    json!({
        "request_id": "lr-2026-03-02-1042",
        "employee": {"id": "e-1042", "name": "Dana Example", "team": "platform", "manager": "e-0007",
                     "phone": "+1 (555) 010-9999", "ssn": "***-**-1234"},
        "period": {"from": "2026-03-02", "to": "2026-03-04", "days": 3, "half_day": false},
        "balance": {"annual": 17.5, "sick": 8, "carried_over": 2.5},
        "approvals": [
            {"by": "e-0007", "at": "2026-02-20T09:14:03Z", "decision": "approved", "note": "enjoy"},
            {"by": "e-0311", "at": "2026-02-20T10:02:41Z", "decision": "approved", "note": ""}
        ],
        "payroll": {"card": "XXXX-XXXX-XXXX-4242", "cost_center": "CC-4410", "currency": "EUR",
                    "amount": 1234.56, "ts_ms": 1772409600000u64},
        "items": [
            {"sku": "A-100-2", "qty": 3, "price": 19.99, "label": "Standing desk mat"},
            {"sku": "B-220-1", "qty": 1, "price": 249.0, "label": "Monitor arm, dual"},
            {"sku": "C-310-7", "qty": 12, "price": 1.25, "label": "Cable ties (pack)"}
        ],
        "tags": ["remote", "q1", "benefits", "eu-west", "priority-normal"],
        "summary": "Leave approved for 3 days; your remaining annual balance is 17.5 days.",
        "links": {"self": "/v1/leave/lr-2026-03-02-1042", "calendar": "/v1/calendar/e-1042/2026-03"},
        "ok": true, "warnings": null
    })
}

/// The same answer leaking four values.
fn leaking_output() -> Value {
    let mut out = clean_output();
    out["employee"]["ssn"] = json!("123-45-6789");
    out["payroll"]["card"] = json!("4111 1111 1111 1111");
    out["payroll"]["iban"] = json!("DE89 3704 0044 0532 0130 00");
    out["links"]["token"] = json!("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
    out
}

fn guard_with(patterns: &[(&str, &str)]) -> OutputGuard {
    let settings = GuardSettings {
        mode: GuardMode::Flag,
        patterns: patterns
            .iter()
            .map(|(n, r)| GuardPattern {
                name: (*n).into(),
                regex: (*r).into(),
            })
            .collect(),
    };
    OutputGuard::compile(&settings).unwrap_or_else(|e| panic!("guard compiles: {e}"))
}

/// Mean time of `f` over `n` calls, in nanoseconds.
fn mean_ns(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// This thread's time on a CPU so far (Linux), in nanoseconds: unlike
/// the wall clock, it does not grow while other processes hold the CPUs.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Mean CPU time of `f` over `n` calls on this thread, in nanoseconds.
fn mean_cpu_ns(n: u32, mut f: impl FnMut()) -> Option<f64> {
    let start = thread_cpu_ns()?;
    for _ in 0..n {
        f();
    }
    Some((thread_cpu_ns()? - start) as f64 / f64::from(n))
}

fn guard(c: &mut Criterion) {
    let clean = clean_output();
    let leaking = leaking_output();
    let size = serde_json::to_vec(&clean).map(|v| v.len()).unwrap_or(0);
    let plain = guard_with(&[]);
    let tenant = guard_with(&[
        ("employee_id", r"\bEMP-\d{6}\b"),
        ("project", r"\bPRJ-[A-Z]{3}-\d{4}\b"),
        ("internal_host", r"\b[a-z0-9-]+\.corp\.example\.com\b"),
        ("badge", r"(?i)\bbadge[ :#]*\d{5}\b"),
    ]);
    assert!(plain.scan(&clean).is_empty(), "the clean output is clean");
    assert!(tenant.scan(&clean).is_empty(), "the clean output is clean");
    assert_eq!(plain.scan(&leaking).len(), 4, "the four leaks are found");

    let input: Value = serde_json::from_slice(ECHO_INPUT).expect("json");
    let shm = tmpfs_dir("aifn-bench-guard-");
    let fx = ServiceFixture::open(bench_service_config(shm.path()));
    fx.deploy("echo", wasm(ECHO_WAT), object_manifest());
    // Deny by default: an admin grants the agent the echo.
    let admin = principal("acme", Role::Admin, "carol");
    let policy = AgentPolicy {
        allow: vec![FunctionPattern::new("echo").expect("pattern")],
        ..AgentPolicy::default()
    };
    fx.service
        .set_policy(&admin, &fx.agent.subject, policy)
        .expect("the admin grants the echo");
    let out = fx
        .service
        .invoke(&fx.agent, request(&input))
        .expect("service call");
    assert_eq!(out.output.as_ref(), Some(&input));

    let mut g = c.benchmark_group("guard");
    g.bench_function("scan_clean_1k", |b| b.iter(|| plain.scan(&clean)));
    g.bench_function("scan_findings_1k", |b| b.iter(|| plain.scan(&leaking)));
    g.bench_function("scan_clean_1k_patterns", |b| b.iter(|| tenant.scan(&clean)));
    g.bench_function("echo_service", |b| {
        b.iter(|| fx.service.invoke(&fx.agent, request(&input)))
    });
    g.finish();

    // The ratio, measured in this same process. The scans are also timed
    // on the CPU (a shared machine's other work does not inflate that).
    let scans = 200_000;
    let clean_ns = mean_ns(scans, || drop(std::hint::black_box(plain.scan(&clean))));
    let clean_cpu = mean_cpu_ns(scans, || drop(std::hint::black_box(plain.scan(&clean))));
    let findings_ns = mean_ns(scans, || drop(std::hint::black_box(plain.scan(&leaking))));
    let findings_cpu = mean_cpu_ns(scans, || drop(std::hint::black_box(plain.scan(&leaking))));
    let patterns_ns = mean_ns(scans, || drop(std::hint::black_box(tenant.scan(&clean))));
    let patterns_cpu = mean_cpu_ns(scans, || drop(std::hint::black_box(tenant.scan(&clean))));
    let calls = 2_000;
    let echo_ns = mean_ns(calls, || {
        let _ = std::hint::black_box(fx.service.invoke(&fx.agent, request(&input)));
    });
    // The share: the scan's CPU time when known (on an idle machine it is
    // its wall time; on a busy one the wall clock counts others' work).
    let share = clean_cpu.unwrap_or(clean_ns) / echo_ns * 100.0;
    let cpu = |ns: Option<f64>| ns.map_or_else(|| "n/a".to_owned(), |ns| format!("{ns:.0} ns"));
    let (clean_cpu_s, findings_cpu_s, patterns_cpu_s) =
        (cpu(clean_cpu), cpu(findings_cpu), cpu(patterns_cpu));
    println!(
        "guard: {size}-byte output: clean {clean_ns:.0} ns (cpu {clean_cpu_s}), findings \
         {findings_ns:.0} ns (cpu {findings_cpu_s}), 4 patterns {patterns_ns:.0} ns (cpu \
         {patterns_cpu_s}); echo through the service {echo_ns:.0} ns; clean scan = \
         {share:.2}% of the echo"
    );
    save_json(
        "guard.json",
        &json!({
            "output_bytes": size,
            "scan_clean_ns": clean_ns,
            "scan_clean_cpu_ns": clean_cpu,
            "scan_findings_ns": findings_ns,
            "scan_findings_cpu_ns": findings_cpu,
            "scan_clean_patterns_ns": patterns_ns,
            "scan_clean_patterns_cpu_ns": patterns_cpu,
            "echo_service_ns": echo_ns,
            "clean_share_of_echo_percent": share,
            "targets": {"scan_ns": 2000, "share_percent": 5},
        }),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = guard
}
criterion_main!(benches);
