//! Roles, separation of duties, hash binding, notes, supersede, audit and
//! races.

use std::sync::{Arc, Barrier};

use aifn_registry::{Registry, RegistryError, Upload, VersionAction};
use aifn_types::{
    AuditTarget, CapturePolicy, Limits, LimitsRequest, OutcomeKind, Refusal, RefusalKind,
    RegistryAction, RegistryActionKind, Role, VersionState,
};

use crate::{
    NoAudit, approve, fixture, fname, manifest, module, principal, report_for, subject, target,
    tenant, upload,
};

fn forbidden_reason(r: Result<impl std::fmt::Debug, RegistryError>) -> String {
    match r {
        Err(RegistryError::Forbidden { reason }) => reason,
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[test]
fn another_approver_may_approve() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let bob = principal("acme", Role::Approver, "bob");
    let active = f
        .reg
        .approve(&bob, &target(&v), &v.sha256, "reviewed", false)
        .expect("approve");
    assert_eq!(active.state, VersionState::Active);
    let d = &active.decisions[0];
    assert_eq!(d.action, VersionAction::Approve);
    assert_eq!(d.actor.as_str(), "bob");
    assert_eq!(d.notes, "reviewed");
    assert_eq!(d.sha256, v.sha256);
    assert_eq!(d.at.to_string().len(), "2025-01-31T09:15:02.123Z".len());
    assert!(d.at.to_string().ends_with('Z'));
}

#[test]
fn self_approval_is_refused() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    // Same subject holding an approver key.
    let alice = principal("acme", Role::Approver, "alice");
    let err = f.reg.approve(&alice, &target(&v), &v.sha256, "lgtm", false);
    let reason = forbidden_reason(err);
    assert_eq!(
        reason,
        "separation of duties: the author of a version may not approve it"
    );
    let err = f.reg.reject(&alice, &target(&v), &v.sha256, "meh");
    assert_eq!(
        forbidden_reason(err),
        "separation of duties: the author of a version may not reject it"
    );
    let after = f.reg.get_version(&v.tenant, &v.name, 1).expect("get");
    assert_eq!(after.state, VersionState::Pending);
    assert!(after.decisions.is_empty());
}

#[test]
fn an_author_holding_an_approver_key_may_revoke_its_active_version() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    approve(&f.reg, &principal("acme", Role::Approver, "bob"), &v);
    let alice = principal("acme", Role::Approver, "alice");
    let revoked = f
        .reg
        .revoke(&alice, &target(&v), "bug found")
        .expect("revoke");
    assert_eq!(revoked.state, VersionState::Revoked);
}

#[test]
fn wrong_roles_are_refused() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let v = upload(&f.reg, &author, "calc", "x");
    let t = target(&v);
    for role in [Role::Author, Role::Admin, Role::Agent] {
        let p = principal("acme", role, "carol");
        let reason = forbidden_reason(f.reg.approve(&p, &t, &v.sha256, "ok", false));
        assert_eq!(reason, format!("a key with role {role} may not approve"));
        forbidden_reason(f.reg.reject(&p, &t, &v.sha256, "no"));
        forbidden_reason(f.reg.revoke(&p, &t, "stop"));
    }
    for role in [Role::Approver, Role::Admin, Role::Agent] {
        let p = principal("acme", role, "carol");
        let bytes = module("y");
        let up = Upload {
            name: fname("calc"),
            manifest: manifest("d"),
            module: &bytes,
            report: report_for(&bytes),
            tests: Vec::new(),
            source: None,
            runs_on: None,
            expected_version: None,
        };
        let reason = forbidden_reason(f.reg.upload(&p, up, &Limits::default()));
        assert_eq!(reason, format!("a key with role {role} may not upload"));
    }
    let err = f
        .reg
        .approve(
            &principal("acme", Role::Agent, "c"),
            &t,
            &v.sha256,
            "ok",
            false,
        )
        .expect_err("agent");
    assert_eq!(err.kind(), Some(OutcomeKind::Forbidden));
    assert_eq!(
        f.reg
            .get_function(&v.tenant, &v.name)
            .expect("get")
            .versions
            .len(),
        1
    );
    assert_eq!(
        f.reg.get_version(&v.tenant, &v.name, 1).expect("get").state,
        VersionState::Pending
    );
}

#[test]
fn approver_of_the_same_tenant_is_allowed() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let ok = f.reg.approve(
        &principal("acme", Role::Approver, "bob"),
        &target(&v),
        &v.sha256,
        "ok",
        false,
    );
    assert_eq!(ok.expect("same tenant").state, VersionState::Active);
}

#[test]
fn approver_of_another_tenant_is_refused() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let mallory = principal("globex", Role::Approver, "mallory");
    let reason = forbidden_reason(f.reg.approve(&mallory, &target(&v), &v.sha256, "ok", false));
    assert_eq!(reason, "the key belongs to another tenant");
    forbidden_reason(f.reg.reject(&mallory, &target(&v), &v.sha256, "no"));
    forbidden_reason(f.reg.revoke(&mallory, &target(&v), "stop"));
    assert_eq!(
        f.reg.get_version(&v.tenant, &v.name, 1).expect("get").state,
        VersionState::Pending
    );
}

#[test]
fn approving_binds_to_the_inspected_hash() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let bob = principal("acme", Role::Approver, "bob");
    let other = crate::sha256_hex(b"something else");
    let err = f
        .reg
        .approve(&bob, &target(&v), &other, "ok", false)
        .expect_err("mismatch");
    match &err {
        RegistryError::HashMismatch {
            version,
            stored,
            given,
        } => {
            assert_eq!((*version, stored, given), (1, &v.sha256, &other));
        }
        e => panic!("expected HashMismatch, got {e:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "version 1 has sha256 {}, not the inspected {other}",
            v.sha256
        )
    );
    assert!(matches!(
        f.reg.reject(&bob, &target(&v), &other, "no"),
        Err(RegistryError::HashMismatch { .. })
    ));
    assert_eq!(
        f.reg.get_version(&v.tenant, &v.name, 1).expect("get").state,
        VersionState::Pending
    );
    // The right hash, in any case, is accepted.
    let ok = f
        .reg
        .approve(&bob, &target(&v), &v.sha256.to_uppercase(), "ok", false)
        .expect("approve");
    assert_eq!(ok.state, VersionState::Active);
    assert_eq!(ok.decisions[0].sha256, v.sha256);
}

#[test]
fn a_version_number_names_only_its_own_module() {
    // v2's hash does not approve v1, even within one function.
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let v1 = upload(&f.reg, &author, "calc", "one");
    let v2 = upload(&f.reg, &author, "calc", "two");
    let bob = principal("acme", Role::Approver, "bob");
    let err = f.reg.approve(&bob, &target(&v1), &v2.sha256, "ok", false);
    assert!(
        matches!(err, Err(RegistryError::HashMismatch { version: 1, .. })),
        "{err:?}"
    );
}

#[test]
fn notes_are_required() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let v = upload(&f.reg, &author, "calc", "x");
    for blank in ["", "   ", "\n\t "] {
        let e = f.reg.approve(&bob, &target(&v), &v.sha256, blank, false);
        assert!(
            matches!(
                e,
                Err(RegistryError::NotesRequired {
                    action: VersionAction::Approve
                })
            ),
            "{e:?}"
        );
        let e = f.reg.reject(&bob, &target(&v), &v.sha256, blank);
        assert!(
            matches!(
                e,
                Err(RegistryError::NotesRequired {
                    action: VersionAction::Reject
                })
            ),
            "{e:?}"
        );
    }
    assert!(
        f.reg
            .get_version(&v.tenant, &v.name, 1)
            .expect("get")
            .decisions
            .is_empty()
    );
    approve(&f.reg, &bob, &v);
    let e = f.reg.revoke(&bob, &target(&v), " ");
    assert!(
        matches!(
            e,
            Err(RegistryError::NotesRequired {
                action: VersionAction::Revoke
            })
        ),
        "{e:?}"
    );
    assert_eq!(
        f.reg
            .active(&v.tenant, &v.name)
            .expect("still active")
            .version,
        1
    );
    // Notes are kept trimmed.
    let r = f
        .reg
        .revoke(&bob, &target(&v), "  leaked data \n")
        .expect("revoke");
    assert_eq!(r.decisions.last().expect("decision").notes, "leaked data");
}

#[test]
fn second_approval_supersedes_the_first_atomically() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let v1 = upload(&f.reg, &author, "calc", "one");
    approve(&f.reg, &bob, &v1);
    let v2 = upload(&f.reg, &author, "calc", "two");
    assert_eq!(
        f.reg
            .active(&v1.tenant, &v1.name)
            .expect("v1 runs meanwhile")
            .version,
        1
    );
    let active = approve(&f.reg, &bob, &v2);
    assert_eq!(active.state, VersionState::Active);
    let old = f.reg.get_version(&v1.tenant, &v1.name, 1).expect("v1");
    assert_eq!(old.state, VersionState::Superseded);
    let last = old.decisions.last().expect("supersede decision");
    assert_eq!(last.action, VersionAction::Supersede);
    assert_eq!(last.notes, "superseded by version 2");
    assert_eq!(last.actor.as_str(), "bob");
    assert_eq!(last.sha256, v1.sha256);
    assert_eq!(
        f.reg.active(&v1.tenant, &v1.name).expect("active").version,
        2
    );

    let detail = f.reg.get_function(&v1.tenant, &v1.name).expect("function");
    assert_eq!(detail.summary.active_version, Some(2));
    assert_eq!(detail.summary.latest_version, 2);
    assert_eq!(
        (
            detail.summary.counts.active,
            detail.summary.counts.superseded
        ),
        (1, 1)
    );
    assert_eq!(
        detail
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let catalog = f.reg.active_versions(&v1.tenant).expect("catalog");
    assert_eq!(
        catalog
            .iter()
            .map(|v| (v.name.as_str(), v.version))
            .collect::<Vec<_>>(),
        [("calc", 2)]
    );
}

#[test]
fn revoking_leaves_the_function_not_active() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let bob = principal("acme", Role::Approver, "bob");
    approve(&f.reg, &bob, &v);
    f.reg
        .revoke(&bob, &target(&v), "incident 42")
        .expect("revoke");
    let err = f
        .reg
        .active(&v.tenant, &v.name)
        .expect_err("nothing active");
    assert!(
        matches!(&err, RegistryError::NotActive { name } if name.as_str() == "calc"),
        "{err:?}"
    );
    assert_eq!(err.kind(), Some(OutcomeKind::NotActive));
    assert!(
        f.reg
            .active_versions(&v.tenant)
            .expect("catalog")
            .is_empty()
    );
}

#[test]
fn pending_lists_only_pending_versions() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let a1 = upload(&f.reg, &author, "alpha", "a1");
    upload(&f.reg, &author, "alpha", "a2");
    upload(&f.reg, &author, "beta", "b1");
    approve(&f.reg, &bob, &a1);
    let pending = f.reg.list_pending(&a1.tenant).expect("pending");
    assert_eq!(
        pending
            .iter()
            .map(|v| (v.name.as_str(), v.version))
            .collect::<Vec<_>>(),
        [("alpha", 2), ("beta", 1)]
    );
    let list = f.reg.list_functions(&a1.tenant).expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(
        (
            list[0].name.as_str(),
            list[0].active_version,
            list[0].latest_version
        ),
        ("alpha", Some(1), 2)
    );
    assert_eq!((list[0].counts.pending, list[0].counts.active), (1, 1));
    assert_eq!(
        (
            list[1].name.as_str(),
            list[1].active_version,
            list[1].counts.pending
        ),
        ("beta", None, 1)
    );
}

fn try_upload(reg: &Registry, m: aifn_types::Manifest, bytes: &[u8]) -> Result<u32, RegistryError> {
    let up = Upload {
        name: fname("calc"),
        manifest: m,
        module: bytes,
        report: report_for(bytes),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    reg.upload(
        &principal("acme", Role::Author, "alice"),
        up,
        &Limits::default(),
    )
    .map(|v| v.version)
}

#[test]
fn upload_refuses_a_report_of_other_bytes_and_stores_nothing() {
    let f = fixture();
    let bytes = module("x");
    let mut report = report_for(&module("y"));
    let up = Upload {
        name: fname("calc"),
        manifest: manifest("d"),
        module: &bytes,
        report: report.clone(),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    let err = f.reg.upload(
        &principal("acme", Role::Author, "alice"),
        up,
        &Limits::default(),
    );
    match err {
        Err(RegistryError::ReportMismatch {
            field: "sha256",
            module,
            report: r,
        }) => {
            assert_eq!(
                (module, r),
                (crate::sha256_hex(&bytes), report.sha256.clone())
            );
        }
        other => panic!("expected ReportMismatch, got {other:?}"),
    }
    report.sha256 = crate::sha256_hex(&bytes);
    report.size_bytes += 1;
    let up = Upload {
        name: fname("calc"),
        manifest: manifest("d"),
        module: &bytes,
        report,
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    let err = f.reg.upload(
        &principal("acme", Role::Author, "alice"),
        up,
        &Limits::default(),
    );
    assert!(
        matches!(
            err,
            Err(RegistryError::ReportMismatch {
                field: "size_bytes",
                ..
            })
        ),
        "{err:?}"
    );
    assert!(
        f.reg
            .list_functions(&crate::tenant("acme"))
            .expect("list")
            .is_empty()
    );
}

#[test]
fn upload_limits_must_fit_the_host_maxima() {
    let f = fixture();
    let host = Limits::default();
    let mut m = manifest("d");
    m.limits = LimitsRequest {
        fuel: Some(host.fuel + 1),
        ..Default::default()
    };
    match try_upload(&f.reg, m.clone(), &module("a")) {
        Err(RegistryError::Limit(e)) => assert_eq!(
            (e.field, e.requested, e.maximum),
            ("fuel", host.fuel + 1, host.fuel)
        ),
        other => panic!("expected Limit, got {other:?}"),
    }
    m.limits = LimitsRequest {
        memory_bytes: Some(0),
        ..Default::default()
    };
    assert!(
        matches!(try_upload(&f.reg, m.clone(), &module("a")), Err(RegistryError::Limit(e)) if e.field == "memory_bytes")
    );
    assert!(
        f.reg
            .list_functions(&crate::tenant("acme"))
            .expect("list")
            .is_empty()
    );
    m.limits = LimitsRequest {
        fuel: Some(1_000),
        timeout_ms: Some(host.timeout_ms),
        ..Default::default()
    };
    assert_eq!(
        try_upload(&f.reg, m, &module("a")).expect("within maxima"),
        1
    );
    let v = f
        .reg
        .get_version(&crate::tenant("acme"), &fname("calc"), 1)
        .expect("get");
    assert_eq!(v.report.effective_limits.fuel, 1_000);
    assert_eq!(v.report.requested_limits.fuel, Some(1_000));
    assert_eq!(v.report.effective_limits.memory_bytes, host.memory_bytes);
}

#[test]
fn upload_manifest_checks() {
    let f = fixture();
    let mut m = manifest("d");
    m.input_schema = serde_json::json!("string");
    match try_upload(&f.reg, m, &module("a")) {
        Err(RegistryError::InvalidManifest(msg)) => {
            assert_eq!(msg, "input_schema must be a JSON object")
        }
        other => panic!("expected InvalidManifest, got {other:?}"),
    }
    for days in [0, 91] {
        let mut m = manifest("d");
        m.capture = Some(CapturePolicy {
            retention_days: days,
        });
        match try_upload(&f.reg, m, &module("a")) {
            Err(RegistryError::InvalidManifest(msg)) => {
                assert_eq!(
                    msg,
                    format!("capture.retention_days must be 1 to 90, not {days}")
                );
            }
            other => panic!("expected InvalidManifest, got {other:?}"),
        }
    }
    assert!(
        f.reg
            .list_functions(&crate::tenant("acme"))
            .expect("list")
            .is_empty()
    );
    for (days, version) in [(1, 1), (90, 2)] {
        let mut m = manifest("d");
        m.capture = Some(CapturePolicy {
            retention_days: days,
        });
        assert_eq!(
            try_upload(&f.reg, m.clone(), &module(&days.to_string())).expect("in range"),
            version
        );
        let stored = f
            .reg
            .get_version(&crate::tenant("acme"), &fname("calc"), version)
            .expect("get");
        assert_eq!(stored.manifest, m);
    }
}

#[test]
fn every_action_is_audited_with_its_facts() {
    let f = fixture();
    let rec = &f.audit;
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let bytes = module("x");
    let up = Upload {
        name: fname("calc"),
        manifest: manifest("d"),
        module: &bytes,
        report: report_for(&bytes),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    let v = f
        .reg
        .upload(&author, up, &Limits::default())
        .expect("upload");
    f.reg
        .approve(&bob, &target(&v), &v.sha256, "fine", false)
        .expect("approve");
    f.reg.revoke(&bob, &target(&v), "not fine").expect("revoke");
    let v2 = upload(&f.reg, &author, "calc", "y");
    f.reg
        .reject(&bob, &target(&v2), &v2.sha256, "nope")
        .expect("reject");
    let action = |kind, actor: &str, version: u32, sha: &str, notes: Option<&str>| RegistryAction {
        tenant_id: tenant("acme"),
        actor: subject(actor),
        action: kind,
        target: AuditTarget::Version {
            name: fname("calc"),
            version,
        },
        sha256: Some(sha.into()),
        notes: notes.map(Into::into),
        refused: None,
        before: None,
        after: None,
        override_failing_tests: false,
    };
    assert_eq!(
        rec.take(),
        [
            action(RegistryActionKind::Upload, "alice", 1, &v.sha256, None),
            action(
                RegistryActionKind::Approve,
                "bob",
                1,
                &v.sha256,
                Some("fine")
            ),
            action(
                RegistryActionKind::Revoke,
                "bob",
                1,
                &v.sha256,
                Some("not fine")
            ),
            action(RegistryActionKind::Upload, "alice", 2, &v2.sha256, None),
            action(
                RegistryActionKind::Reject,
                "bob",
                2,
                &v2.sha256,
                Some("nope")
            ),
        ]
    );
    // A refusal is recorded as refused, after the rollback.
    let err = f
        .reg
        .approve(&bob, &target(&v2), &v2.sha256, "again", false)
        .expect_err("rejected is final");
    assert!(matches!(err, RegistryError::IllegalTransition { .. }));
    let refused = Refusal {
        kind: RefusalKind::Conflict,
        reason: err.to_string(),
    };
    assert_eq!(
        rec.take(),
        [RegistryAction {
            refused: Some(refused),
            before: None,
            after: None,
            ..action(
                RegistryActionKind::Approve,
                "bob",
                2,
                &v2.sha256,
                Some("again")
            )
        }]
    );
}

#[test]
fn a_failing_audit_sink_rolls_the_action_back() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let bytes = module("x");
    let up = Upload {
        name: fname("calc"),
        manifest: manifest("d"),
        module: &bytes,
        report: report_for(&bytes),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    f.audit.fail(true);
    let err = f
        .reg
        .upload(&author, up, &Limits::default())
        .expect_err("audit fails");
    f.audit.fail(false);
    assert!(
        matches!(&err, RegistryError::Audit(source) if source.to_string() == "audit disk unavailable"),
        "{err:?}"
    );
    assert_eq!(
        std::error::Error::source(&err).map(ToString::to_string),
        Some("audit disk unavailable".to_owned())
    );
    assert!(
        f.reg
            .list_functions(&author.tenant)
            .expect("list")
            .is_empty()
    );
    assert!(matches!(
        f.reg.module_bytes(&crate::sha256_hex(&bytes)),
        Err(RegistryError::ModuleNotFound { .. })
    ));

    let v = upload(&f.reg, &author, "calc", "x");
    assert_eq!(v.version, 1, "the failed upload took no number");
    f.audit.fail(true);
    let err = f.reg.approve(&bob, &target(&v), &v.sha256, "ok", false);
    f.audit.fail(false);
    assert!(matches!(err, Err(RegistryError::Audit(_))), "{err:?}");
    let after = f.reg.get_version(&v.tenant, &v.name, 1).expect("get");
    assert_eq!(after.state, VersionState::Pending);
    assert!(after.decisions.is_empty());
    assert!(matches!(
        f.reg.active(&v.tenant, &v.name),
        Err(RegistryError::NotActive { .. })
    ));

    approve(&f.reg, &bob, &v);
    let v2 = upload(&f.reg, &author, "calc", "y");
    f.audit.fail(true);
    let err = f.reg.approve(&bob, &target(&v2), &v2.sha256, "ok", false);
    f.audit.fail(false);
    assert!(matches!(err, Err(RegistryError::Audit(_))), "{err:?}");
    // The supersede of v1 was rolled back with it.
    assert_eq!(
        f.reg
            .active(&v.tenant, &v.name)
            .expect("v1 still active")
            .version,
        1
    );
    assert_eq!(
        f.reg
            .get_version(&v.tenant, &v.name, 1)
            .expect("v1")
            .decisions
            .len(),
        1
    );
    f.audit.fail(true);
    let err = f.reg.revoke(&bob, &target(&v), "stop");
    f.audit.fail(false);
    assert!(matches!(err, Err(RegistryError::Audit(_))), "{err:?}");
    assert_eq!(
        f.reg
            .active(&v.tenant, &v.name)
            .expect("still active")
            .version,
        1
    );
}

#[test]
fn concurrent_approvals_leave_exactly_one_active() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    const N: usize = 8;
    let versions: Vec<_> = (0..N)
        .map(|i| upload(&f.reg, &author, "calc", &format!("m{i}")))
        .collect();
    // Two registries on one store: the database, not just a mutex, serializes.
    let second = f.reopen(NoAudit);
    let regs = [&f.reg, &second];
    let barrier = Arc::new(Barrier::new(N));
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let reg = regs[i % 2];
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    let bob = principal("acme", Role::Approver, &format!("approver{i}"));
                    barrier.wait();
                    reg.approve(&bob, &target(v), &v.sha256, "race", false)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let detail = f
        .reg
        .get_function(&author.tenant, &fname("calc"))
        .expect("get");
    let states: Vec<_> = detail.versions.iter().map(|v| v.state).collect();
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == VersionState::Active)
            .count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == VersionState::Superseded)
            .count(),
        N - 1,
        "{states:?}"
    );
    assert_eq!(detail.summary.counts.active, 1);
}

#[test]
fn racing_approvals_of_one_version_succeed_once() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    const N: usize = 6;
    let barrier = Barrier::new(N);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (reg, v, barrier) = (&f.reg, &v, &barrier);
                s.spawn(move || {
                    let p = principal("acme", Role::Approver, &format!("approver{i}"));
                    barrier.wait();
                    reg.approve(&p, &target(v), &v.sha256, "race", false)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                r,
                Err(RegistryError::IllegalTransition {
                    from: VersionState::Active,
                    action: VersionAction::Approve
                })
            ),
            "{r:?}"
        );
    }
    assert_eq!(
        f.reg
            .get_version(&v.tenant, &v.name, 1)
            .expect("get")
            .decisions
            .len(),
        1
    );
}

#[test]
fn racing_uploads_get_consecutive_numbers() {
    let f = fixture();
    let results: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let reg = &f.reg;
                s.spawn(move || {
                    let author = principal("acme", Role::Author, &format!("author{t}"));
                    (0..5)
                        .map(|i| upload(reg, &author, "calc", &format!("{t}-{i}")).version)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut sorted = results.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=20).collect::<Vec<u32>>());
}

#[test]
fn readers_never_see_a_gap_while_versions_are_superseded() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let first = upload(&f.reg, &author, "calc", "m0");
    approve(&f.reg, &bob, &first);
    let name = fname("calc");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let v = f
                            .reg
                            .active(&author.tenant, &name)
                            .expect("always one active");
                        assert_eq!(v.state, VersionState::Active);
                        assert!(v.version >= seen, "went back from {seen} to {}", v.version);
                        seen = v.version;
                    }
                    seen
                })
            })
            .collect();
        for i in 1..15 {
            let v = upload(&f.reg, &author, "calc", &format!("m{i}"));
            approve(&f.reg, &bob, &v);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().expect("reader") <= 15);
        }
    });
    assert_eq!(
        f.reg.active(&author.tenant, &name).expect("active").version,
        15
    );
}
