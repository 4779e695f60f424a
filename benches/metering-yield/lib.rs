//! Nothing here: the benchmark is `benches/metering_yield.rs`.
