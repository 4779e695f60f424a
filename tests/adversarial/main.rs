//! The adversarial corpus under load.
//!
//! `tests/corpus/expected.toml` lists every hostile module (WAT files of
//! that directory, or bytes this test builds: compile bombs, garbage,
//! truncated and oversized modules) with the ONE outcome kind it must get.
//! The tests here check that:
//!
//! - each case gets its exact kind (and trap code, where given), once;
//! - the whole corpus run 100 times by 16 threads sharing ONE `Runtime`,
//!   while a benign function keeps answering correctly beside it, still
//!   gives every run its exact kind, and resident memory, open file
//!   descriptors and threads return to their baseline afterwards (measured
//!   in a child process, this binary re-run with a filter, since other
//!   tests in the same process disturb those numbers);
//! - no residue crosses instances: one tenant's instance fills its memory
//!   and table, the next instance in the same pooling slot sees only zeros;
//! - the same input and context give identical output bytes across 1,000
//!   runs, NaN-producing float code and WASI randomness included.
//!
//! Why one shared `Runtime` and not an in-process `Service`: the sandbox's
//! classification and isolation live in the runtime, and the service's
//! admission control (per-tenant rate and concurrency) and its audit fsync
//! would shape the load instead of the guests. The service path is covered
//! by `crates/server/tests/server/socket.rs`
//! (`health_and_other_tenants_are_served_while_hostile_guests_hold_the_cores`).

mod corpus;
mod determinism;
mod load;
mod residue;

use std::path::{Path, PathBuf};

use aifn_runtime::{Limits, Runtime, RuntimeConfig};

pub(crate) const MIB: u64 = 1 << 20;

/// The host maxima of the adversarial runtime. Fuel is high so that the
/// `timeout` cases can only be stopped by their deadline.
pub(crate) fn host_limits() -> Limits {
    Limits {
        fuel: 1_000_000_000_000,
        timeout_ms: 10_000,
        memory_bytes: 16 * MIB,
        table_elements: 10_000,
        input_bytes: MIB,
        output_bytes: 4 * MIB,
        log_bytes: 16 * 1024,
        compile_timeout_ms: COMPILE_TIMEOUT_MS,
        ..Limits::default()
    }
}

/// The compile deadline. The corpus's valid modules compile in a few
/// milliseconds; `slow_to_compile` needs about 2.6 s.
pub(crate) const COMPILE_TIMEOUT_MS: u64 = 1_000;

/// A case's limits when the table gives none: small, but generous in time
/// so that fuel-bound cases never reach their deadline on a loaded machine.
pub(crate) fn case_defaults() -> Limits {
    Limits {
        fuel: 50_000_000,
        memory_bytes: 4 * MIB,
        output_bytes: MIB,
        ..host_limits()
    }
}

pub(crate) fn runtime(max_instances: u32) -> Runtime {
    Runtime::new(RuntimeConfig {
        limits: host_limits(),
        max_instances,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

pub(crate) fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

pub(crate) fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("corpus WAT does not parse: {e}"))
}
