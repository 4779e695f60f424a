#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one run: criterion's data into
# target/criterion, the distributions and load runs into benches/results/,
# then the summary and the plot (benches/report.py). About 25 minutes on
# the 2-core machine after the release builds (~11 minutes cold, ~10 more
# for the Extism peer).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CRITERION_HOME="$root/target/criterion"
cargo xtask build-functions
cargo build --release --locked -p aifn-cli
for b in echo leave metering memory cold tenants timeout audit js; do
  cargo bench --locked -p aifn-benches --bench "$b"
done
# wrk (apt package) measures the server with a cheaper client beside ours.
command -v wrk >/dev/null || echo "run-all: wrk is not installed (apt install wrk); section H's throughput table needs it" >&2
cargo run --release --locked -p aifn-benches --bin loadgen -- --aifn target/release/aifn $(command -v wrk >/dev/null && echo --wrk)
# Section K: SQLite, 1 and 2 nodes on a private durable PostgreSQL (~2 min).
cargo run --release --locked -p aifn-benches --bin fleetload -- --aifn target/release/aifn
# Last: aifn's echo, Extism's two modes, aifn's echo again; then the report.
bash benches/peer.sh
