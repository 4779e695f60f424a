//! JavaScript versions and their engines: an upload stores the engine it
//! runs on beside it, and a version approved on an engine this release no
//! longer embeds keeps running on exactly that engine.

use aifn_registry::{AuditSink, Registry, SinkError, Upload};
use aifn_runtime::{EngineInfo, Runtime, RuntimeConfig};
use aifn_service::{Decision, UploadRequest};
use aifn_test_support::OLDER_ENGINE_WAT;
use aifn_types::{FunctionName, RegistryAction, Source, SourceLanguage};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{harness, manifest};

/// The audit log of the older release that wrote the rows below; this
/// test is about what the registry keeps, not about that log.
struct OlderReleasesLog;

impl AuditSink for OlderReleasesLog {
    fn record(&self, _: &RegistryAction) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_javascript_upload_stores_its_engine_and_a_version_on_an_engine_the_release_dropped_still_runs()
{
    let h = harness(|_| {});
    let uploaded = h
        .service
        .upload(
            &h.author,
            UploadRequest {
                name: "now".into(),
                manifest: manifest(json!({})),
                module: Vec::new(),
                source: Some(Source {
                    language: SourceLanguage::Javascript,
                    text: "export const main = (input) => ({ got: input });".into(),
                }),
            },
        )
        .expect("uploaded");
    // The engine it runs on is in the registry, by its sha256.
    let current = aifn_runtime::current_js_engine();
    let registry = Registry::open(h.dir.path(), OlderReleasesLog).expect("registry");
    let stored = registry
        .module_bytes(&current.sha256)
        .expect("engine stored");
    let embedded = include_bytes!("../../../runtime/js/quickjs-aifn.wasm");
    assert_eq!(stored, embedded);
    let script = uploaded.report.module.script.clone().expect("a script");
    assert_eq!(script.engine, current);

    // An older release wrote this version: its source bound to an engine
    // this release does not embed, and that engine beside it.
    let older = wat::parse_str(OLDER_ENGINE_WAT).expect("wat");
    let sha: [u8; 32] = Sha256::digest(&older).into();
    let info = EngineInfo {
        name: "older-engine".into(),
        version: "0.1.0".into(),
        sha256: hex::encode(sha),
    };
    let then = Runtime::new(RuntimeConfig::default()).expect("runtime");
    then.supply_js_engine(info.clone(), &older)
        .expect("supplied");
    let mut package = then
        .javascript(r#"{"answered_by":"the older engine"}"#)
        .expect("packaged");
    package[8..40].copy_from_slice(&sha);
    let report = then.load(&package).expect("loads").report().clone();
    let upload = |runs_on: Option<&[u8]>| {
        registry.upload(
            &h.author,
            Upload {
                name: FunctionName::new("then").expect("name"),
                manifest: manifest(json!({})),
                module: &package,
                report: report.clone(),
                tests: Vec::new(),
                source: None,
                runs_on,
                expected_version: None,
            },
            then.limits(),
        )
    };
    // Refused: a script version without its engine, or with another one.
    for runs_on in [None, Some(&embedded[..])] {
        let refused = upload(runs_on);
        assert!(
            matches!(
                refused,
                Err(aifn_registry::RegistryError::ReportMismatch {
                    field: "script.engine.sha256",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    let v = upload(Some(&older)).expect("the older release's upload");
    drop(registry);
    // Through the service, a package is never uploaded as module bytes:
    // the approver reads the source.
    let refused = h.service.upload(
        &h.author,
        UploadRequest {
            name: "then".into(),
            manifest: manifest(json!({})),
            module: package.clone(),
            source: None,
        },
    );
    assert!(
        matches!(
            refused,
            Err(aifn_service::ServiceError::InvalidRequest { .. })
        ),
        "{refused:?}"
    );

    // This release approves and runs it: on the older engine, from the
    // registry.
    let approved = h
        .service
        .decide(
            &h.approver,
            ("then", v.version),
            Decision::Approve { sha256: &v.sha256 },
            "reviewed on its engine",
        )
        .expect("approved");
    assert_eq!(
        approved.report.module.script.expect("a script").engine,
        info
    );
    let out = h.invoke("then", json!({})).expect("runs");
    assert_eq!(out.output, Some(json!({"answered_by": "the older engine"})));
    // The current engine still runs what was uploaded now.
    h.service
        .decide(
            &h.approver,
            ("now", uploaded.version),
            Decision::Approve {
                sha256: &uploaded.sha256,
            },
            "ok",
        )
        .expect("approved");
    let out = h.invoke("now", json!({"a": 1})).expect("runs");
    assert_eq!(out.output, Some(json!({"got": {"a": 1}})));
}
