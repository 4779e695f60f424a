//! Benchmark 7: Timeout precision: an infinite loop under a 100 ms deadline (fuel
//! set high enough that only the deadline can stop it), with 0, 2 and 4
//! other threads spinning on the 2 cores. Reports the distribution of the
//! wall-clock time from the start of `Runtime::invoke` to its return with
//! `timeout`, and writes `results/timeout.json`. Not a criterion bench: it
//! is the distribution that matters. `AIFN_BENCH_TIMEOUT_CALLS` (default
//! 40) calls per load level.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use aifn_benches::guests::SPIN_WAT;
use aifn_benches::stats::summarize;
use aifn_benches::{save_json, wasm};
use aifn_runtime::{Context, Invocation, Limits, OutcomeKind, Runtime, RuntimeConfig};
use serde_json::json;

fn spinners(n: usize, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..n)
        .map(|_| {
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
                x
            })
        })
        .collect()
}

fn main() {
    let calls: usize = std::env::var("AIFN_BENCH_TIMEOUT_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let deadline_ms = 100.0;
    let limits = Limits {
        timeout_ms: 100,
        fuel: 1 << 50,
        ..Limits::default()
    };
    let runtime = Runtime::new(RuntimeConfig {
        limits,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let module = runtime.load(&wasm(SPIN_WAT)).expect("module");
    let ctx = Context::local();
    let mut levels = Vec::new();
    println!(
        "{:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "spinners", "calls", "min ms", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for busy in [0usize, 2, 4] {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = spinners(busy, &stop);
        let mut stops = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            let exec = runtime.invoke(&module, &Invocation::new(b"{}", &ctx, limits));
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(exec.kind, OutcomeKind::Timeout, "{exec:?}");
            stops.push(ms);
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        let s = summarize(&mut stops);
        println!(
            "{busy:>8} {calls:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            s.min, s.p50, s.p90, s.p99, s.max
        );
        levels.push(json!({
            "spinning_threads": busy,
            "stop_ms": s.to_json(),
            "overshoot_p50_ms": s.p50 - deadline_ms,
            "overshoot_max_ms": s.max - deadline_ms,
            "within_deadline_plus_20ms": s.max <= deadline_ms + 20.0,
        }));
    }
    save_json(
        "timeout.json",
        &json!({"deadline_ms": deadline_ms, "yield_fuel": 10_000, "calls_per_level": calls, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "levels": levels}),
    );
}
