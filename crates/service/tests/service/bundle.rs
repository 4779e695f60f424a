//! Evidence bundles: made for an execution or a function, verified offline
//! from the file alone, and every kind of tampering found.

use aifn_service::{
    Bundle, BundleError, BundleRequest, Credential, DataDir, EvidenceError, KeySource, LocalAdmin,
    Principal, ServiceError, verify_bundle,
};
use aifn_types::{Role, Subject, TenantId, Timestamp};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Harness, harness, manifest, origin, returning};

fn by_execution(id: &str) -> BundleRequest {
    BundleRequest {
        execution: Some(id.into()),
        include_module: true,
        ..BundleRequest::default()
    }
}

fn by_function(f: &str) -> BundleRequest {
    BundleRequest {
        function: Some(f.into()),
        include_module: true,
        ..BundleRequest::default()
    }
}

/// The audit log's public key, from the data dir's checkpoint file (what
/// an auditor obtains out of band).
fn trusted_key(h: &Harness) -> [u8; 32] {
    let text =
        std::fs::read_to_string(h.dir.path().join("audit-checkpoints.jsonl")).expect("checkpoints");
    let line: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    let mut key = [0u8; 32];
    hex::decode_to_slice(line["public_key"].as_str().expect("key"), &mut key).expect("hex");
    key
}

fn bytes(b: &Bundle) -> Vec<u8> {
    serde_json::to_vec(b).expect("json")
}

/// f@1 invoked, g deployed (its records lie between f's, as links), f@2
/// approved (superseding f@1) and invoked. Returns both execution ids.
fn history(h: &Harness) -> (String, String) {
    h.deploy("f", returning("[1]"), manifest(json!({})));
    let first = h.invoke("f", json!({})).expect("runs").execution_id;
    h.deploy("g", returning("[0]"), manifest(json!({})));
    // Distinct milliseconds, so a window can fall between the two calls.
    std::thread::sleep(std::time::Duration::from_millis(5));
    h.deploy("f", returning("[2]"), manifest(json!({})));
    let second = h.invoke("f", json!({})).expect("runs").execution_id;
    (first, second)
}

#[test]
fn a_bundle_of_an_execution_verifies_offline() {
    let h = harness(|_| {});
    let (first, _) = history(&h);
    let b = h
        .service
        .bundle(&h.approver, by_execution(&first))
        .expect("bundle");
    assert_eq!(b.format, "aifn-evidence-bundle/1");
    assert_eq!(b.tenant_id.as_str(), "acme");
    assert!(b.how_to_verify.contains("verify-bundle"));
    // Its version, with the module; its record, the version's upload and
    // approval, and the approval of f@2 that superseded it.
    assert_eq!(b.versions.len(), 1);
    let v = &b.versions[0];
    assert_eq!(v.info.version, 1);
    assert_eq!(
        v.info
            .decisions
            .iter()
            .map(|d| d.action.as_str())
            .collect::<Vec<_>>(),
        ["approve", "supersede"]
    );
    let module = base64::engine::general_purpose::STANDARD
        .decode(v.module_base64.as_deref().expect("module"))
        .expect("base64");
    assert_eq!(module, returning("[1]"));
    assert_eq!(b.evidence.records.len(), 4);
    assert!(!b.evidence.links.is_empty(), "g's records are links");

    let key = trusted_key(&h);
    let report = verify_bundle(&bytes(&b), Some(&key)).expect("verified");
    assert_eq!(
        (report.records, report.versions, report.modules_checked),
        (4, 1, 1)
    );
    assert_eq!(report.key_source, KeySource::Given);
    assert_eq!(report.public_key, hex::encode(key));
    let unkeyed = verify_bundle(&bytes(&b), None).expect("consistent");
    assert_eq!(unkeyed.key_source, KeySource::CheckpointLines);
}

#[test]
fn a_bundle_of_a_function_of_a_version_and_of_a_window_verifies() {
    let h = harness(|_| {});
    let (first, second) = history(&h);
    let key = trusted_key_after(&h);
    let time =
        |id: &str| Timestamp::parse(h.record(id)["time"].as_str().expect("time")).expect("ts");

    // The whole function: both versions, both calls, every upload and decision.
    let all = h
        .service
        .bundle(&h.admin, by_function("f"))
        .expect("bundle");
    assert_eq!(versions(&all), [1, 2]);
    let report = verify_bundle(&bytes(&all), Some(&key)).expect("verified");
    // 2 executions, 2 uploads, 2 approvals.
    assert_eq!((report.records, report.modules_checked), (6, 2));

    // One version: its call and its records only.
    let v2 = h
        .service
        .bundle(&h.approver, by_function("f@2"))
        .expect("bundle");
    assert_eq!(versions(&v2), [2]);
    assert_eq!(executions(&v2), std::slice::from_ref(&second));
    verify_bundle(&bytes(&v2), Some(&key)).expect("verified");

    // A window holding only the second call: f@2 and its records.
    let window = BundleRequest {
        since: Some(time(&second)),
        ..by_function("f")
    };
    let late = h.service.bundle(&h.approver, window).expect("bundle");
    assert_eq!(executions(&late), std::slice::from_ref(&second));
    assert_eq!(versions(&late), [2]);
    verify_bundle(&bytes(&late), Some(&key)).expect("verified");
    // And one holding only the first: f@1, with its supersede by f@2's approval.
    let early = BundleRequest {
        until: Some(time(&first).saturating_add_ms(1)),
        ..by_function("f")
    };
    let early = h.service.bundle(&h.approver, early).expect("bundle");
    assert_eq!(executions(&early), [first]);
    verify_bundle(&bytes(&early), Some(&key)).expect("verified");
    // Nothing in the window: nothing to bundle.
    let none = BundleRequest {
        since: Some(Timestamp::MAX.saturating_add_ms(-1)),
        ..by_function("f")
    };
    assert!(matches!(
        h.service.bundle(&h.approver, none),
        Err(ServiceError::NotFound { .. })
    ));
}

fn trusted_key_after(h: &Harness) -> [u8; 32] {
    // A bundle signs a checkpoint when none covers its records yet.
    h.service
        .bundle(&h.approver, by_function("g"))
        .expect("bundle");
    trusted_key(h)
}

fn versions(b: &Bundle) -> Vec<u32> {
    b.versions.iter().map(|v| v.info.version).collect()
}

fn executions(b: &Bundle) -> Vec<String> {
    b.evidence
        .records
        .iter()
        .filter_map(|r| {
            let v: Value = serde_json::from_str(&r.body).expect("body");
            (v["stream"] == "execution").then(|| v["execution_id"].as_str().expect("id").to_owned())
        })
        .collect()
}

fn tampered(v: &Value, key: &[u8; 32]) -> BundleError {
    verify_bundle(&serde_json::to_vec(v).expect("json"), Some(key)).expect_err("tampering found")
}

/// A different lowercase hex digit at `at` of a string field.
fn flip(field: &mut Value, at: usize) {
    let mut s = field.as_str().expect("string").to_owned();
    let c = if s.as_bytes()[at] == b'0' { "1" } else { "0" };
    s.replace_range(at..=at, c);
    *field = Value::String(s);
}

#[test]
fn each_kind_of_tampering_with_a_bundle_is_found() {
    let h = harness(|_| {});
    let (first, _) = history(&h);
    let b = h
        .service
        .bundle(&h.approver, by_function("f"))
        .expect("bundle");
    let key = trusted_key(&h);
    let clean: Value = serde_json::to_value(&b).expect("json");
    assert!(verify_bundle(&bytes(&b), Some(&key)).is_ok());
    let exec_at = clean["evidence"]["records"]
        .as_array()
        .expect("records")
        .iter()
        .position(|r| r["body"].as_str().is_some_and(|b| b.contains(&first)))
        .expect("the first call's record");
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = clean.clone();
        f(&mut v);
        tampered(&v, &key)
    };

    let body = edit(&|v| {
        let r = &mut v["evidence"]["records"][exec_at]["body"];
        *r = Value::String(
            r.as_str()
                .expect("body")
                .replace("\"user_id\":\"u\"", "\"user_id\":\"v\""),
        );
    });
    assert!(
        matches!(
            body,
            BundleError::Evidence(EvidenceError::RecordHash { .. })
        ),
        "{body}"
    );
    let link = edit(&|v| flip(&mut v["evidence"]["links"][0]["hash"], 7));
    assert!(
        matches!(link, BundleError::Evidence(EvidenceError::LinkHash { .. })),
        "{link}"
    );
    let sig = edit(&|v| flip(&mut v["evidence"]["checkpoints"][0]["signature"], 9));
    assert!(
        matches!(
            sig,
            BundleError::Evidence(EvidenceError::CheckpointSignature { .. })
        ),
        "{sig}"
    );
    let removed = edit(&|v| {
        v["evidence"]["records"]
            .as_array_mut()
            .expect("records")
            .remove(exec_at);
    });
    assert!(matches!(removed, BundleError::Evidence(_)), "{removed}");

    let module = edit(&|v| {
        let m = &mut v["versions"][0]["module_base64"];
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(m.as_str().expect("module"))
            .expect("base64");
        bytes[10] ^= 1;
        *m = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    });
    assert_eq!(
        module,
        BundleError::ModuleMismatch {
            version: "f@1".into()
        }
    );
    let not_base64 = edit(&|v| v["versions"][1]["module_base64"] = json!("!!"));
    assert_eq!(
        not_base64,
        BundleError::BadModule {
            version: "f@2".into()
        }
    );

    let notes =
        edit(&|v| v["versions"][0]["info"]["decisions"][0]["notes"] = json!("never looked"));
    assert!(
        matches!(notes, BundleError::UnchainedDecision { ref action, .. } if action == "approve"),
        "{notes}"
    );
    let actor = edit(&|v| v["versions"][1]["info"]["decisions"][0]["actor"] = json!("mallory"));
    assert_eq!(
        actor,
        BundleError::UnchainedDecision {
            version: "f@2".into(),
            action: "approve".into(),
            actor: "mallory".into()
        }
    );
    let supersede = edit(&|v| v["versions"][0]["info"]["decisions"][1]["actor"] = json!("mallory"));
    assert!(
        matches!(supersede, BundleError::UnchainedDecision { ref action, .. } if action == "supersede"),
        "{supersede}"
    );
    let author = edit(&|v| v["versions"][0]["info"]["author"] = json!("mallory"));
    assert_eq!(
        author,
        BundleError::UnchainedUpload {
            version: "f@1".into()
        }
    );
    let sha = edit(&|v| {
        v["versions"][1]["module_base64"] = Value::Null;
        flip(&mut v["versions"][1]["info"]["sha256"], 0);
    });
    assert_eq!(
        sha,
        BundleError::UnchainedUpload {
            version: "f@2".into()
        }
    );
    let dropped = edit(&|v| {
        v["versions"].as_array_mut().expect("versions").remove(0);
    });
    assert!(
        matches!(dropped, BundleError::UnknownModule { .. }),
        "{dropped}"
    );
    let tenant = edit(&|v| v["tenant_id"] = json!("globex"));
    assert!(
        matches!(tenant, BundleError::ForeignRecord { .. }),
        "{tenant}"
    );
    let version_tenant = edit(&|v| v["versions"][0]["info"]["tenant"] = json!("globex"));
    assert_eq!(
        version_tenant,
        BundleError::ForeignVersion {
            version: "f@1".into()
        }
    );
    let format = edit(&|v| v["format"] = json!("aifn-evidence-bundle/2"));
    assert!(matches!(format, BundleError::Format { .. }), "{format}");
    assert!(matches!(
        verify_bundle(b"{not json", Some(&key)),
        Err(BundleError::Parse { .. })
    ));
    // A key other than the log's.
    let mut wrong = key;
    wrong[0] ^= 1;
    assert!(matches!(
        verify_bundle(&bytes(&b), Some(&wrong)),
        Err(BundleError::Evidence(
            EvidenceError::CheckpointSignature { .. } | EvidenceError::BadTrustedKey
        ))
    ));
}

#[test]
fn a_bundle_of_an_execution_must_hold_that_execution() {
    let h = harness(|_| {});
    let (first, second) = history(&h);
    let b = h
        .service
        .bundle(&h.approver, by_execution(&first))
        .expect("bundle");
    let key = trusted_key(&h);
    let mut v = serde_json::to_value(&b).expect("json");
    v["request"]["execution"] = json!(second);
    assert_eq!(
        tampered(&v, &key),
        BundleError::MissingExecution {
            execution_id: second
        }
    );
}

fn other_tenant(h: &Harness, role: Role) -> Principal {
    let admin = LocalAdmin::open(DataDir::new(h.dir.path(), "test")).expect("admin");
    let key = admin
        .create_key(
            &TenantId::new("globex").expect("tenant"),
            role,
            &Subject::new("gina").expect("subject"),
            &Subject::new("test").expect("actor"),
        )
        .expect("key");
    admin.close().expect("close");
    h.service
        .authenticate(&Credential::ApiKey(key.secret), origin("/test"))
        .expect("authenticates")
}

#[test]
fn only_approvers_and_admins_bundle_and_only_their_tenants_executions() {
    let h = harness(|_| {});
    let (first, _) = history(&h);
    for who in [&h.author, &h.agent] {
        assert!(
            matches!(
                h.service.bundle(who, by_execution(&first)),
                Err(ServiceError::Forbidden { .. })
            ),
            "{}",
            who.role
        );
    }
    assert!(h.service.bundle(&h.admin, by_execution(&first)).is_ok());
    let globex = other_tenant(&h, Role::Approver);
    assert_eq!(
        h.service.bundle(&globex, by_execution(&first)),
        Err(ServiceError::NotFound {
            what: format!("execution {first}")
        })
    );
    assert!(matches!(
        h.service.bundle(&globex, by_function("f")),
        Err(ServiceError::NotFound { .. })
    ));
}

#[test]
fn the_operator_bundles_a_tenant_from_the_data_dir_and_bad_requests_are_refused() {
    let h = harness(|_| {});
    let (first, _) = history(&h);
    let admin = LocalAdmin::open(DataDir::new(h.dir.path(), "test")).expect("admin");
    let acme = TenantId::new("acme").expect("tenant");
    let b = admin.bundle(&acme, by_execution(&first)).expect("bundle");
    verify_bundle(&bytes(&b), Some(&trusted_key(&h))).expect("verified");
    let globex = TenantId::new("globex").expect("tenant");
    assert!(matches!(
        admin.bundle(&globex, by_execution(&first)),
        Err(ServiceError::NotFound { .. })
    ));
    let both = BundleRequest {
        function: Some("f".into()),
        ..by_execution(&first)
    };
    assert!(matches!(
        admin.bundle(&acme, both),
        Err(ServiceError::InvalidRequest { .. })
    ));
    assert!(matches!(
        admin.bundle(&acme, BundleRequest::default()),
        Err(ServiceError::InvalidRequest { .. })
    ));
    assert!(matches!(
        admin.bundle(&acme, by_function("f@9")),
        Err(ServiceError::NotFound { .. })
    ));
    assert!(matches!(
        admin.bundle(&acme, by_execution("no-such-execution")),
        Err(ServiceError::NotFound { .. })
    ));
    // Without include_module the bytes stay out and the rest still verifies.
    let lean = BundleRequest {
        include_module: false,
        ..by_function("f")
    };
    let lean = admin.bundle(&acme, lean).expect("bundle");
    assert!(lean.versions.iter().all(|v| v.module_base64.is_none()));
    let report = verify_bundle(&bytes(&lean), None).expect("verified");
    assert_eq!((report.versions, report.modules_checked), (2, 0));
    admin.close().expect("close");
}
