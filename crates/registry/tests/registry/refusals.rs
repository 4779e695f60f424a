//! Refused actions leave a record (with `refused`), after their rollback;
//! the caller gets the refusal even when its record cannot be written.

use aifn_registry::{RegistryError, Upload};
use aifn_types::{
    AuditTarget, Limits, LimitsRequest, Refusal, RefusalKind, RegistryAction, RegistryActionKind,
    Role,
};

use crate::{
    Fixture, approve, fixture, fname, manifest, module, principal, report_for, sha256_hex, subject,
    target, tenant, upload,
};

/// The one record the last call left, which must be a refusal of `kind`.
fn refused_record(f: &Fixture, kind: RefusalKind, err: &RegistryError) -> RegistryAction {
    let mut records = f.audit.take();
    assert_eq!(records.len(), 1, "{records:?}");
    let rec = records.remove(0);
    assert_eq!(
        rec.refused,
        Some(Refusal {
            kind,
            reason: err.to_string(),
        })
    );
    rec
}

fn version_target(name: &str, version: u32) -> AuditTarget {
    AuditTarget::Version {
        name: fname(name),
        version,
    }
}

#[test]
fn a_refused_upload_is_recorded_against_the_function() {
    let f = fixture();
    let bytes = module("x");
    let up = || Upload {
        name: fname("calc"),
        manifest: manifest("d"),
        module: &bytes,
        report: report_for(&bytes),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    let agent = principal("acme", Role::Agent, "robot");
    let err = f
        .reg
        .upload(&agent, up(), &Limits::default())
        .expect_err("agents do not upload");
    let rec = refused_record(&f, RefusalKind::Forbidden, &err);
    assert_eq!(rec.action, RegistryActionKind::Upload);
    assert_eq!(
        rec.target,
        AuditTarget::Function {
            name: fname("calc")
        }
    );
    assert_eq!(rec.actor, subject("robot"));
    assert_eq!(rec.tenant_id, tenant("acme"));
    assert_eq!(rec.sha256, Some(sha256_hex(&bytes)));

    let author = principal("acme", Role::Author, "alice");
    let mut bad = up();
    bad.manifest.input_schema = serde_json::json!("not an object");
    let err = f
        .reg
        .upload(&author, bad, &Limits::default())
        .expect_err("invalid manifest");
    assert!(matches!(err, RegistryError::InvalidManifest(_)));
    refused_record(&f, RefusalKind::InvalidRequest, &err);

    let mut greedy = up();
    greedy.manifest.limits = LimitsRequest {
        fuel: Some(u64::MAX),
        ..LimitsRequest::default()
    };
    let err = f
        .reg
        .upload(&author, greedy, &Limits::default())
        .expect_err("above the host maximum");
    assert!(matches!(err, RegistryError::Limit(_)));
    refused_record(&f, RefusalKind::InvalidRequest, &err);

    let mut lying = up();
    lying.report.size_bytes += 1;
    let err = f
        .reg
        .upload(&author, lying, &Limits::default())
        .expect_err("report mismatch");
    refused_record(&f, RefusalKind::InvalidRequest, &err);

    // The accepted upload is recorded once, as taken, against its version.
    f.reg
        .upload(&author, up(), &Limits::default())
        .expect("upload");
    let taken = f.audit.take();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].refused, None);
    assert_eq!(taken[0].target, version_target("calc", 1));
}

#[test]
fn refused_decisions_are_recorded_with_their_kind_and_the_stored_hash() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let v = upload(&f.reg, &author, "calc", "x");
    f.audit.take();

    // Separation of duties: the author approving their own version.
    let self_approver = principal("acme", Role::Approver, "alice");
    let err = f
        .reg
        .approve(&self_approver, &target(&v), &v.sha256, "mine", false)
        .expect_err("own version");
    let rec = refused_record(&f, RefusalKind::Forbidden, &err);
    assert_eq!(rec.action, RegistryActionKind::Approve);
    assert_eq!(rec.target, version_target("calc", 1));
    assert_eq!(rec.sha256.as_deref(), Some(v.sha256.as_str()));
    assert_eq!(rec.notes.as_deref(), Some("mine"));

    // The wrong role is refused before anything is read: no hash.
    let err = f
        .reg
        .reject(&author, &target(&v), &v.sha256, "no")
        .expect_err("authors do not decide");
    let rec = refused_record(&f, RefusalKind::Forbidden, &err);
    assert_eq!(rec.action, RegistryActionKind::Reject);
    assert_eq!(rec.sha256, None);

    let err = f
        .reg
        .approve(&bob, &target(&v), &"0".repeat(64), "looked", false)
        .expect_err("hash mismatch");
    assert!(matches!(err, RegistryError::HashMismatch { .. }));
    let rec = refused_record(&f, RefusalKind::Conflict, &err);
    assert_eq!(rec.sha256.as_deref(), Some(v.sha256.as_str()));

    let err = f
        .reg
        .revoke(&bob, &target(&v), "stop")
        .expect_err("pending cannot be revoked");
    assert!(matches!(err, RegistryError::IllegalTransition { .. }));
    let rec = refused_record(&f, RefusalKind::Conflict, &err);
    assert_eq!(rec.action, RegistryActionKind::Revoke);

    let err = f
        .reg
        .approve(&bob, &target(&v), &v.sha256, "   ", false)
        .expect_err("notes required");
    let rec = refused_record(&f, RefusalKind::InvalidRequest, &err);
    assert_eq!(rec.notes, None);

    let mut missing = target(&v);
    missing.version = 9;
    let err = f
        .reg
        .approve(&bob, &missing, &v.sha256, "ok", false)
        .expect_err("no such version");
    let rec = refused_record(&f, RefusalKind::NotFound, &err);
    assert_eq!(rec.target, version_target("calc", 9));
    assert_eq!(rec.sha256, None);

    // A key of another tenant: recorded in the actor's tenant, not the target's.
    let mallory = principal("evil", Role::Approver, "mallory");
    let err = f
        .reg
        .approve(&mallory, &target(&v), &v.sha256, "mine now", false)
        .expect_err("other tenant");
    let rec = refused_record(&f, RefusalKind::Forbidden, &err);
    assert_eq!(rec.tenant_id, tenant("evil"));

    // The accepted decision is recorded once, as taken.
    approve(&f.reg, &bob, &v);
    let taken = f.audit.take();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].refused, None);
}

#[test]
fn a_refusal_whose_record_fails_is_still_the_answer() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let v = upload(&f.reg, &author, "calc", "x");
    f.audit.take();
    f.audit.fail(true);
    let err = f
        .reg
        .revoke(&bob, &target(&v), "stop")
        .expect_err("pending");
    f.audit.fail(false);
    assert!(
        matches!(err, RegistryError::IllegalTransition { .. }),
        "the refusal, not the audit failure: {err:?}"
    );
    assert!(f.audit.take().is_empty());
}

#[test]
fn failures_that_are_not_refusals_are_not_recorded_as_refusals() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    f.audit.fail(true);
    let bytes = module("x");
    let err = f
        .reg
        .upload(
            &author,
            Upload {
                name: fname("calc"),
                manifest: manifest("d"),
                module: &bytes,
                report: report_for(&bytes),
                tests: Vec::new(),
                source: None,
                runs_on: None,
                expected_version: None,
            },
            &Limits::default(),
        )
        .expect_err("audit down");
    f.audit.fail(false);
    assert!(matches!(err, RegistryError::Audit(_)));
    assert_eq!(err.refusal(), None);
    assert!(f.audit.take().is_empty());
}

#[test]
fn revoking_a_revoked_key_is_recorded_and_an_unknown_key_is_not() {
    let f = fixture();
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Agent,
            &subject("bot"),
            &subject("cli"),
        )
        .expect("create");
    f.reg
        .revoke_key(&key.key_id, &subject("cli"))
        .expect("revoke");
    f.audit.take();
    let err = f
        .reg
        .revoke_key(&key.key_id, &subject("cli"))
        .expect_err("twice");
    assert!(matches!(err, RegistryError::KeyAlreadyRevoked { .. }));
    let rec = refused_record(&f, RefusalKind::Conflict, &err);
    assert_eq!(rec.action, RegistryActionKind::KeyRevoked);
    assert_eq!(rec.tenant_id, tenant("acme"));
    assert_eq!(
        rec.target,
        AuditTarget::Key {
            key_id: key.key_id.clone()
        }
    );
    assert_eq!(rec.actor, subject("cli"));

    let err = f
        .reg
        .revoke_key("0123456789abcdef", &subject("cli"))
        .expect_err("unknown");
    assert_eq!(err.refusal(), Some(RefusalKind::NotFound));
    assert!(f.audit.take().is_empty(), "no tenant to record it in");
}

#[test]
fn the_function_list_shows_the_active_description_and_the_latest_state() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let upload_described = |description: &str, seed: &str| {
        let bytes = module(seed);
        f.reg
            .upload(
                &author,
                Upload {
                    name: fname("calc"),
                    manifest: manifest(description),
                    module: &bytes,
                    report: report_for(&bytes),
                    tests: Vec::new(),
                    source: None,
                    runs_on: None,
                    expected_version: None,
                },
                &Limits::default(),
            )
            .expect("upload")
    };
    let v1 = upload_described("first, pending", "a");
    let listed = f.reg.list_functions(&tenant("acme")).expect("list");
    assert_eq!(listed[0].description, None, "nothing is active yet");
    assert_eq!(listed[0].latest_state, aifn_types::VersionState::Pending);

    approve(&f.reg, &bob, &v1);
    let v2 = upload_described("second, rejected", "b");
    f.reg
        .reject(&bob, &target(&v2), &v2.sha256, "no")
        .expect("reject");
    let listed = f.reg.list_functions(&tenant("acme")).expect("list");
    let s = &listed[0];
    assert_eq!(s.description.as_deref(), Some("first, pending"));
    assert_eq!(s.active_version, Some(1));
    assert_eq!(s.latest_version, 2);
    assert_eq!(s.latest_state, aifn_types::VersionState::Rejected);
    let detail = f
        .reg
        .get_function(&tenant("acme"), &fname("calc"))
        .expect("detail");
    assert_eq!(&detail.summary, s);
}

#[test]
fn an_output_schema_must_be_an_object_and_an_object_is_accepted() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bytes = module("x");
    let with_output = |schema: serde_json::Value| {
        let mut m = manifest("d");
        m.output_schema = Some(schema);
        Upload {
            name: fname("calc"),
            manifest: m,
            module: &bytes,
            report: report_for(&bytes),
            tests: Vec::new(),
            source: None,
            runs_on: None,
            expected_version: None,
        }
    };
    let err = f
        .reg
        .upload(
            &author,
            with_output(serde_json::json!("string")),
            &Limits::default(),
        )
        .expect_err("not an object");
    assert!(
        matches!(&err, RegistryError::InvalidManifest(m) if m.contains("output_schema")),
        "{err:?}"
    );
    let v = f
        .reg
        .upload(
            &author,
            with_output(serde_json::json!({"type": "object"})),
            &Limits::default(),
        )
        .expect("an object schema");
    assert_eq!(v.version, 1);
}
