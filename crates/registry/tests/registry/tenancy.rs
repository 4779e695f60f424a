//! Tenants never see each other's functions, even under the same name.

use aifn_registry::{RegistryError, VersionRef};
use aifn_types::{OutcomeKind, Role, VersionState};

use crate::{approve, fixture, fname, principal, target, tenant, upload};

#[test]
fn two_tenants_may_use_one_name_independently() {
    let f = fixture();
    let a = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calculate_leave_days",
        "acme code",
    );
    let b = upload(
        &f.reg,
        &principal("globex", Role::Author, "alice"),
        "calculate_leave_days",
        "globex code",
    );
    assert_eq!((a.version, b.version), (1, 1));
    assert_ne!(a.sha256, b.sha256);
    approve(&f.reg, &principal("acme", Role::Approver, "bob"), &a);
    let name = fname("calculate_leave_days");
    assert_eq!(
        f.reg.active(&tenant("acme"), &name).expect("acme's").sha256,
        a.sha256
    );
    assert!(matches!(
        f.reg.active(&tenant("globex"), &name),
        Err(RegistryError::NotActive { .. })
    ));
    assert_eq!(
        f.reg.list_pending(&tenant("globex")).expect("pending")[0].sha256,
        b.sha256
    );
    assert!(
        f.reg
            .list_pending(&tenant("acme"))
            .expect("pending")
            .is_empty()
    );
}

#[test]
fn another_tenant_cannot_list_get_or_see_active() {
    let f = fixture();
    let a = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "payroll",
        "secret sauce",
    );
    approve(&f.reg, &principal("acme", Role::Approver, "bob"), &a);
    let acme = tenant("acme");
    let globex = tenant("globex");
    let name = fname("payroll");
    // The owner sees it...
    assert_eq!(f.reg.list_functions(&acme).expect("list").len(), 1);
    assert_eq!(
        f.reg
            .get_function(&acme, &name)
            .expect("get")
            .versions
            .len(),
        1
    );
    assert_eq!(f.reg.active_versions(&acme).expect("catalog").len(), 1);
    // ...nobody else does.
    assert!(f.reg.list_functions(&globex).expect("list").is_empty());
    assert!(f.reg.active_versions(&globex).expect("catalog").is_empty());
    assert!(f.reg.list_pending(&globex).expect("pending").is_empty());
    let err = f.reg.get_function(&globex, &name).expect_err("invisible");
    assert!(
        matches!(&err, RegistryError::NotFound { tenant, version: None, .. } if *tenant == globex),
        "{err:?}"
    );
    assert_eq!(err.kind(), Some(OutcomeKind::NotFound));
    assert_eq!(err.to_string(), "no function payroll");
    let err = f.reg.get_version(&globex, &name, 1).expect_err("invisible");
    assert!(
        matches!(
            err,
            RegistryError::NotFound {
                version: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "function payroll has no version 1");
    let err = f.reg.active(&globex, &name).expect_err("invisible");
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
}

#[test]
fn another_tenant_cannot_decide_on_a_function_even_with_the_same_name() {
    let f = fixture();
    let a = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "payroll",
        "acme",
    );
    let b = upload(
        &f.reg,
        &principal("globex", Role::Author, "gina"),
        "payroll",
        "globex",
    );
    let mallory = principal("globex", Role::Approver, "mallory");
    // Aiming at acme's version is forbidden outright.
    let err = f
        .reg
        .approve(&mallory, &target(&a), &a.sha256, "ok", false)
        .expect_err("other tenant");
    assert!(matches!(err, RegistryError::Forbidden { .. }), "{err:?}");
    // Aiming at its own tenant's same-named version with acme's hash binds to nothing.
    let err = f
        .reg
        .approve(&mallory, &target(&b), &a.sha256, "ok", false)
        .expect_err("wrong hash");
    assert!(matches!(err, RegistryError::HashMismatch { .. }), "{err:?}");
    // A version only acme has is not found for globex.
    let missing = VersionRef {
        tenant: tenant("globex"),
        name: fname("payroll"),
        version: 2,
    };
    upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "payroll",
        "acme v2",
    );
    let err = f
        .reg
        .approve(&mallory, &missing, &a.sha256, "ok", false)
        .expect_err("not found");
    assert!(
        matches!(
            err,
            RegistryError::NotFound {
                version: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    let acme = f
        .reg
        .get_function(&tenant("acme"), &fname("payroll"))
        .expect("acme");
    assert!(
        acme.versions
            .iter()
            .all(|v| v.state == VersionState::Pending && v.decisions.is_empty())
    );
    // Its own version, with its own hash, it may approve.
    let ok = f
        .reg
        .approve(&mallory, &target(&b), &b.sha256, "ok", false)
        .expect("own tenant");
    assert_eq!(ok.state, VersionState::Active);
    assert!(matches!(
        f.reg.active(&tenant("acme"), &fname("payroll")),
        Err(RegistryError::NotActive { .. })
    ));
}

#[test]
fn uploads_land_in_the_principals_tenant() {
    let f = fixture();
    let v = upload(
        &f.reg,
        &principal("initech", Role::Author, "peter"),
        "tps_report",
        "x",
    );
    assert_eq!(v.tenant, tenant("initech"));
    assert_eq!(v.author.as_str(), "peter");
    assert!(
        f.reg
            .list_functions(&tenant("acme"))
            .expect("list")
            .is_empty()
    );
}
