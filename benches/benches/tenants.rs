//! Benchmark 6: Many tenants: N registered active functions (default 10,000: 1,000
//! tenants of 10 functions, each a distinct module), called through
//! `Service::invoke` with a Zipf(1) distribution over all of them, beside
//! the single-function case, in one run. Data dir on tmpfs (the audit
//! record is committed, the fsync is free), the default caches (1,024
//! compiled modules in memory, 1,024 active versions), so the tail of the
//! distribution is served from the registry and the on-disk module cache.
//!
//! Writes `results/tenants.json`: per-call latency percentiles of both
//! cases, measured in alternating blocks, and the resident memory.
//! `AIFN_BENCH_FUNCTIONS` changes N.

use std::time::{Duration, Instant};

use aifn_benches::guests::echo_variant;
use aifn_benches::stats::{Rng, Zipf, summarize};
use aifn_benches::{
    ECHO_INPUT, bench_service_config, deploy, grant_all, object_manifest, principal, rss_bytes,
    save_json, tmpfs_dir, wasm,
};
use aifn_service::{InvokeRequest, Principal, Service};
use aifn_types::Role;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const PER_TENANT: usize = 10;

struct Setup {
    service: Service,
    agents: Vec<Principal>,
    zipf: Zipf,
    input: Value,
    n: usize,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn target(&self, rank: usize) -> (&Principal, String) {
        (
            &self.agents[rank / PER_TENANT],
            format!("f{}", rank % PER_TENANT),
        )
    }

    fn call(&self, rank: usize) {
        let (agent, function) = self.target(rank);
        let out = self.service.invoke(
            agent,
            InvokeRequest {
                function,
                input: self.input.clone(),
                user_id: "u".into(),
                traceparent: None,
                cancel: None,
            },
        );
        assert!(out.as_ref().is_ok_and(|o| o.output.is_some()), "{out:?}");
    }
}

fn setup() -> Setup {
    let n: usize = std::env::var("AIFN_BENCH_FUNCTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
        .max(PER_TENANT);
    let dir = tmpfs_dir("aifn-bench-tenants-");
    let service = Service::open(bench_service_config(dir.path())).expect("service");
    let started = Instant::now();
    let mut agents = Vec::new();
    for t in 0..n / PER_TENANT {
        let tenant = format!("t{t}");
        let author = principal(&tenant, Role::Author, "alice");
        let approver = principal(&tenant, Role::Approver, "bob");
        for f in 0..PER_TENANT {
            let id = (t * PER_TENANT + f) as u64;
            deploy(
                &service,
                &author,
                &approver,
                &format!("f{f}"),
                wasm(&echo_variant(id)),
                object_manifest(),
            );
        }
        grant_all(&service, &tenant, "bot");
        agents.push(principal(&tenant, Role::Agent, "bot"));
        if (t + 1) % 100 == 0 {
            eprintln!(
                "  {} functions deployed in {:.0} s",
                (t + 1) * PER_TENANT,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let n = agents.len() * PER_TENANT;
    eprintln!(
        "{n} functions deployed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Setup {
        service,
        agents,
        zipf: Zipf::new(n, 1.0),
        input: serde_json::from_slice(ECHO_INPUT).expect("json"),
        n,
        _dir: dir,
    }
}

fn per_call(s: &Setup) -> Value {
    let mut rng = Rng::new(42);
    let rss_setup = rss_bytes();
    // Warm up: the caches fill with the head of the distribution.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(3) {
        s.call(s.zipf.sample(&mut rng));
    }
    let (mut single, mut zipf) = (Vec::new(), Vec::new());
    let mut rss = Vec::new();
    for _block in 0..5 {
        for _ in 0..4000 {
            let t = Instant::now();
            s.call(0);
            single.push(t.elapsed().as_secs_f64() * 1e6);
        }
        for _ in 0..4000 {
            let rank = s.zipf.sample(&mut rng);
            let t = Instant::now();
            s.call(rank);
            zipf.push(t.elapsed().as_secs_f64() * 1e6);
        }
        rss.push(rss_bytes());
    }
    let single = summarize(&mut single);
    let zipf = summarize(&mut zipf);
    let metrics = s.service.metrics_text();
    let cached = metrics
        .lines()
        .find(|l| l.starts_with("aifn_cached_modules "))
        .unwrap_or_default()
        .to_owned();
    let out = json!({
        "functions": s.n,
        "tenants": s.agents.len(),
        "zipf_exponent": 1.0,
        "zipf_mass_of_top_1024": s.zipf.head_mass(1024),
        "unit": "us",
        "single": single.to_json(),
        "zipf": zipf.to_json(),
        "p50_ratio": zipf.p50 / single.p50,
        "p99_ratio": zipf.p99 / single.p99,
        "rss_bytes_after_setup": rss_setup,
        "rss_bytes_per_block": rss,
        "cache_config": {"memory_cache_entries": 1024, "active_cache_entries": 1024},
        "metrics_cached_modules": cached,
    });
    eprintln!(
        "per call: single p50 {:.1} us p99 {:.1} us; zipf p50 {:.1} us p99 {:.1} us; p50 ratio {:.2}; rss {:.0} MiB",
        single.p50,
        single.p99,
        zipf.p50,
        zipf.p99,
        zipf.p50 / single.p50,
        rss_bytes() as f64 / 1048576.0
    );
    out
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let result = per_call(&s);
    save_json("tenants.json", &result);
    let mut rng = Rng::new(7);
    let mut g = c.benchmark_group("tenants");
    g.bench_function("single_function", |b| b.iter(|| s.call(0)));
    g.bench_function(format!("zipf_{}_functions", s.n), |b| {
        b.iter(|| s.call(s.zipf.sample(&mut rng)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
