//! Prometheus counters, kept lock-free on the invoke path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aifn_types::{OutcomeKind, RunKind, TenantId};

const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A counter with one series per outcome kind.
fn by_outcome(out: &mut String, name: &str, help: &str, counts: &[AtomicU64]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (k, n) in OutcomeKind::ALL.iter().zip(counts) {
        let _ = writeln!(
            out,
            "{name}{{outcome=\"{k}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
}

/// One named value in the exposition.
pub(crate) struct Series<'a> {
    pub(crate) name: &'a str,
    pub(crate) help: &'a str,
    pub(crate) value: u64,
}

/// Counters of invocations by outcome, a latency histogram and fuel; and
/// of test runs by outcome (never counted as invocations).
#[derive(Debug, Default)]
pub struct Metrics {
    by_outcome: [AtomicU64; OutcomeKind::ALL.len()],
    test_runs: [AtomicU64; OutcomeKind::ALL.len()],
    latency: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    fuel: AtomicU64,
    /// Per tenant (never per agent: bounded by the number of tenants).
    budget_rejections: Mutex<BTreeMap<TenantId, u64>>,
}

impl Metrics {
    /// An attempt that was refused before it was timed (no key, say).
    pub(crate) fn record_refusal(&self, kind: OutcomeKind) {
        if let Some(i) = OutcomeKind::ALL.iter().position(|k| *k == kind) {
            self.by_outcome[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An attempt that was admitted, timed and answered.
    pub(crate) fn record(&self, kind: OutcomeKind, duration: Duration, fuel: u64) {
        self.record_refusal(kind);
        let secs = duration.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.latency[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.fuel.fetch_add(fuel, Ordering::Relaxed);
    }

    /// An attempt of any run kind: an invocation counts as one (with its
    /// time and fuel), a test run as a test run, a replay in neither.
    pub(crate) fn record_run(
        &self,
        run: RunKind,
        kind: OutcomeKind,
        duration: Duration,
        fuel: u64,
    ) {
        match run {
            RunKind::Invocation => self.record(kind, duration, fuel),
            RunKind::TestRun => {
                if let Some(i) = OutcomeKind::ALL.iter().position(|k| *k == kind) {
                    self.test_runs[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            RunKind::Replay => {}
        }
    }

    /// Test runs so far that ended in `kind`.
    pub fn test_run_count(&self, kind: OutcomeKind) -> u64 {
        OutcomeKind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.test_runs[i].load(Ordering::Relaxed))
    }

    /// A call of `tenant` rejected by a budget.
    pub(crate) fn budget_rejected(&self, tenant: &TenantId) {
        let mut m = self
            .budget_rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match m.get_mut(tenant) {
            Some(n) => *n += 1,
            None => {
                m.insert(tenant.clone(), 1);
            }
        }
    }

    /// Calls of `tenant` rejected by a budget so far.
    pub fn budget_rejections(&self, tenant: &TenantId) -> u64 {
        let m = self
            .budget_rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        m.get(tenant).copied().unwrap_or(0)
    }

    /// Invocations so far that ended in `kind`.
    pub fn count(&self, kind: OutcomeKind) -> u64 {
        OutcomeKind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.by_outcome[i].load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition, with `in_flight` and the other
    /// series of the service: `counters` only grow, `gauges` go up and down.
    pub(crate) fn render(
        &self,
        in_flight: u32,
        counters: &[Series<'_>],
        gauges: &[Series<'_>],
    ) -> String {
        let mut out = String::new();
        by_outcome(
            &mut out,
            "aifn_invocations_total",
            "Invocation attempts by outcome kind.",
            &self.by_outcome,
        );
        by_outcome(
            &mut out,
            "aifn_test_runs_total",
            "Test runs (by approvers, authors and at upload) by outcome kind.",
            &self.test_runs,
        );
        let _ = writeln!(
            out,
            "# HELP aifn_invocation_duration_seconds Time from admission to answer."
        );
        let _ = writeln!(out, "# TYPE aifn_invocation_duration_seconds histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "aifn_invocation_duration_seconds_bucket{{le=\"{le}\"}} {}",
                self.latency[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "aifn_invocation_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "aifn_invocation_duration_seconds_sum {sum}");
        let _ = writeln!(out, "aifn_invocation_duration_seconds_count {count}");
        let _ = writeln!(out, "# HELP aifn_fuel_used_total Fuel consumed by guests.");
        let _ = writeln!(out, "# TYPE aifn_fuel_used_total counter");
        let _ = writeln!(
            out,
            "aifn_fuel_used_total {}",
            self.fuel.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP aifn_budget_rejections_total Calls rejected by a budget, by tenant."
        );
        let _ = writeln!(out, "# TYPE aifn_budget_rejections_total counter");
        for (tenant, n) in self
            .budget_rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            // Tenant ids are letters, digits, `_`, `-` and `.`: no escaping.
            let _ = writeln!(
                out,
                "aifn_budget_rejections_total{{tenant=\"{tenant}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP aifn_in_flight Invocations running now.");
        let _ = writeln!(out, "# TYPE aifn_in_flight gauge");
        let _ = writeln!(out, "aifn_in_flight {in_flight}");
        for (kind, series) in [("counter", counters), ("gauge", gauges)] {
            for Series { name, help, value } in series {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                let _ = writeln!(out, "{name} {value}");
            }
        }
        out
    }
}
