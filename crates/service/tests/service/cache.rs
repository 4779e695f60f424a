//! The active-version cache: an entry past its TTL is re-checked against
//! the registry, and kept (not loaded again) while the version is the same.

use serde_json::json;

use crate::{Harness, harness, manifest, returning};

/// Compiled-module loads so far: cache hits and compiles.
fn loads(h: &Harness) -> u64 {
    let text = h.service.metrics_text();
    [
        "aifn_module_cache_hits_total ",
        "aifn_module_compiles_total ",
    ]
    .iter()
    .map(|name| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    })
    .sum()
}

#[test]
fn a_stale_entry_of_the_same_version_is_kept_and_a_new_version_loaded() {
    // A TTL of zero: every call re-checks the registry.
    let h = harness(|c| c.active_cache_ms = 0);
    h.deploy("f", returning("1"), manifest(json!({})));
    h.invoke("f", json!({})).expect("first call");
    let before = loads(&h);
    for _ in 0..3 {
        let out = h.invoke("f", json!({})).expect("call");
        assert_eq!(out.output, Some(json!(1)));
    }
    assert_eq!(loads(&h), before, "the same version was loaded again");

    // A new active version is loaded at the next call.
    h.deploy("f", returning("2"), manifest(json!({})));
    let out = h.invoke("f", json!({})).expect("new version");
    assert_eq!((out.version, out.output), (2, Some(json!(2))));
    assert!(loads(&h) > before);
}
