//! JavaScript engines: a version is bound to its source and its engine,
//! the embedded engine is the committed reproducible build, and an engine
//! this release no longer embeds runs when the host supplies it (as the
//! registry keeps it).

use aifn_runtime::{Context, EngineInfo, Invocation, ModuleError, OutcomeKind};
use aifn_test_support::OLDER_ENGINE_WAT;
use sha2::{Digest, Sha256};

use crate::js::RT;
use crate::output;

#[test]
fn a_version_is_bound_to_its_source_and_engine_and_only_known_engines_run() {
    let rt = &*RT;
    let a = rt
        .javascript("export const main = () => 1;")
        .expect("packaged");
    let b = rt
        .javascript("export const main = () => 2;")
        .expect("packaged");
    let ra = rt.load(&a).expect("loads").report().clone();
    let rb = rt.load(&b).expect("loads").report().clone();
    assert_ne!(ra.sha256, rb.sha256);
    let sa = ra.script.expect("a script report");
    assert_eq!(sa.engine.name, "quickjs-ng");
    assert_eq!(sa.engine.version, "0.16.2");
    assert_eq!(sa.engine, aifn_runtime::current_js_engine());
    assert_eq!(sa.engine, rb.script.expect("a script report").engine);
    assert_eq!(a[8..40], hex::decode(&sa.engine.sha256).expect("hex")[..]);
    // The same source on an engine this release does not have.
    let mut other = a.clone();
    other[8] ^= 1;
    assert!(matches!(
        rt.load(&other),
        Err(ModuleError::UnknownEngine { .. })
    ));
    // Malformed packages.
    assert!(matches!(
        rt.load(&a[..20]),
        Err(ModuleError::InvalidScript { .. })
    ));
    let big = "x".repeat(aifn_runtime::MAX_JS_SOURCE_BYTES + 1);
    assert!(matches!(
        rt.javascript(&big),
        Err(ModuleError::InvalidScript { .. })
    ));
}

#[test]
fn the_embedded_engine_is_the_committed_reproducible_build() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/js/");
    let wasm = std::fs::read(format!("{dir}quickjs-aifn.wasm")).expect("engine");
    let pinned =
        std::fs::read_to_string(format!("{dir}quickjs-aifn.wasm.sha256")).expect("sha256 file");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    assert_eq!(hash, pinned.trim());
    let package = RT
        .javascript("export const main = () => 1;")
        .expect("packaged");
    assert_eq!(hex::encode(&package[8..40]), hash);
}

#[test]
fn an_engine_this_release_does_not_embed_runs_once_the_host_supplies_it() {
    let rt = &*RT;
    let older = wat::parse_str(OLDER_ENGINE_WAT).expect("wat");
    let sha: [u8; 32] = Sha256::digest(&older).into();
    let info = EngineInfo {
        name: "older-engine".into(),
        version: "0.1.0".into(),
        sha256: hex::encode(sha),
    };
    // A version approved on it: its source, bound to its engine's sha256.
    let source = r#"{"answered_by":"the older engine"}"#;
    let mut package = rt.javascript(source).expect("packaged");
    package[8..40].copy_from_slice(&sha);
    assert!(rt.js_engine_module(&info.sha256).is_none());
    assert!(matches!(
        rt.load(&package),
        Err(ModuleError::UnknownEngine { sha256 }) if sha256 == info.sha256
    ));

    // Bytes that are not the named engine are refused.
    let wrong = EngineInfo {
        sha256: hex::encode([7u8; 32]),
        ..info.clone()
    };
    assert!(matches!(
        rt.supply_js_engine(wrong, &older),
        Err(ModuleError::Engine { .. })
    ));
    assert!(rt.load(&package).is_err());

    rt.supply_js_engine(info.clone(), &older).expect("supplied");
    let m = rt.load(&package).expect("runs on the engine it names");
    let script = m.report().script.clone().expect("a script report");
    assert_eq!(script.engine, info);
    assert_ne!(script.engine, aifn_runtime::current_js_engine());
    let e = rt.invoke(&m, &Invocation::new(b"{}", &Context::local(), *rt.limits()));
    assert_eq!(e.kind, OutcomeKind::Ok, "{e:?}");
    // Its output is the older engine's (the snapshot ran its start-up).
    assert_eq!(
        output(&e),
        serde_json::json!({"answered_by": "the older engine"})
    );
    assert_eq!(
        rt.js_engine_module(&info.sha256).as_deref(),
        Some(&older[..])
    );

    // The current engine is still the embedded one; a source packaged now
    // runs on it, not on the supplied one.
    let current = aifn_runtime::current_js_engine();
    let embedded = rt.js_engine_module(&current.sha256).expect("embedded");
    assert_eq!(hex::encode(Sha256::digest(&embedded)), current.sha256);
    let now = rt.load(
        &rt.javascript("export const main = () => 3;")
            .expect("packaged"),
    );
    assert_eq!(
        now.expect("loads")
            .report()
            .script
            .clone()
            .expect("script")
            .engine,
        current
    );
}

#[test]
fn every_embedded_engine_is_the_reviewed_build_it_is_listed_as() {
    let engines: Vec<_> = aifn_runtime::embedded_js_engines().collect();
    assert!(engines.len() >= 2, "the current engine and the first build");
    assert_eq!(engines[0].0, aifn_runtime::current_js_engine());
    for (info, wasm) in &engines {
        assert_eq!(hex::encode(Sha256::digest(wasm)), info.sha256, "{info:?}");
        assert_eq!(
            RT.js_engine_module(&info.sha256).as_deref(),
            Some(*wasm),
            "{info:?}"
        );
    }
}

#[test]
fn a_version_on_the_first_engine_build_still_runs_on_it() {
    let rt = &*RT;
    let (first, _) = aifn_runtime::embedded_js_engines()
        .nth(1)
        .expect("the first build is embedded");
    let source = "export function main(input, context) { return { sum: input.a + input.b, fn: context.function }; }";
    let mut package = rt.javascript(source).expect("packaged");
    package[8..40].copy_from_slice(&hex::decode(&first.sha256).expect("hex"));
    let m = rt.load(&package).expect("loads on the first build");
    let script = m.report().script.clone().expect("a script report");
    assert_eq!(script.engine, first);
    assert_ne!(script.engine, aifn_runtime::current_js_engine());
    let ctx = Context::local();
    let e = rt.invoke(
        &m,
        &Invocation::new(br#"{"a": 2, "b": 40}"#, &ctx, *rt.limits()),
    );
    assert_eq!(
        output(&e),
        serde_json::json!({"sum": 42, "fn": ctx.function})
    );
    // The same source on the current engine answers the same.
    let now = rt
        .load(&rt.javascript(source).expect("packaged"))
        .expect("loads");
    let e2 = rt.invoke(
        &now,
        &Invocation::new(br#"{"a": 2, "b": 40}"#, &ctx, *rt.limits()),
    );
    assert_eq!(e.output, e2.output);
}
