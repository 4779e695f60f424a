#!/usr/bin/env bash
# Benchmark 3's alternative configuration, fuel with async yields (see
# benches/metering-yield/benches/metering_yield.rs). Its own workspace, so
# its first build compiles wasmtime again (~9 minutes here). Results go to
# the same criterion directory as the other benchmarks.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CRITERION_HOME="$root/target/criterion"
cd "$root/benches/metering-yield"
CARGO_TARGET_DIR="$root/target/metering-yield" cargo bench --locked --bench metering_yield
