//! API keys: created once, stored hashed, authenticated, revoked.

use aifn_registry::{AuthError, RegistryError};
use aifn_types::{AuditTarget, RegistryAction, RegistryActionKind, Role};

use crate::{fixture, subject, tenant};

#[test]
fn a_created_key_authenticates_as_its_principal() {
    let f = fixture();
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Approver,
            &subject("bob"),
            &subject("cli"),
        )
        .expect("create");
    assert!(
        key.secret.starts_with(&format!("aifn_{}_", key.key_id)),
        "{}",
        key.secret
    );
    assert_eq!(key.secret.len(), "aifn_".len() + 16 + 1 + 64);
    let p = f.reg.authenticate(&key.secret).expect("authenticate");
    assert_eq!(
        (
            p.key_id.as_str(),
            p.tenant.as_str(),
            p.role,
            p.subject.as_str()
        ),
        (key.key_id.as_str(), "acme", Role::Approver, "bob")
    );
    assert!(
        !format!("{key:?}").contains(&key.secret),
        "Debug shows the secret"
    );
}

#[test]
fn a_revoked_key_is_refused_as_revoked() {
    let f = fixture();
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Agent,
            &subject("hr-bot"),
            &subject("cli"),
        )
        .expect("create");
    let info = f
        .reg
        .revoke_key(&key.key_id, &subject("admin"))
        .expect("revoke");
    assert_eq!(info.revoked_by.as_ref().map(|s| s.as_str()), Some("admin"));
    assert!(info.revoked_at.is_some());
    assert!(matches!(
        f.reg.authenticate(&key.secret),
        Err(AuthError::Revoked)
    ));
    let again = f.reg.revoke_key(&key.key_id, &subject("admin"));
    assert!(
        matches!(again, Err(RegistryError::KeyAlreadyRevoked { .. })),
        "{again:?}"
    );
    let missing = f.reg.revoke_key("0123456789abcdef", &subject("admin"));
    assert!(
        matches!(missing, Err(RegistryError::KeyNotFound { .. })),
        "{missing:?}"
    );
}

#[test]
fn garbage_is_malformed() {
    let f = fixture();
    let id = "0123456789abcdef";
    let secret = "ab".repeat(32);
    for bad in [
        String::new(),
        "Bearer xyz".into(),
        "aifn_".into(),
        format!("aifn_{id}"),
        format!("aifn_{id}_{}", &secret[1..]),
        format!("aifn_{id}_{secret}0"),
        format!("aifn_{}_{secret}", id.to_uppercase().replace('0', "A")),
        format!("aifn_{id}_{}", secret.to_uppercase()),
        format!("aifn_{id}_{secret} "),
        format!("AIFN_{id}_{secret}"),
        format!("aifn_{id}x_{secret}"),
    ] {
        assert!(
            matches!(f.reg.authenticate(&bad), Err(AuthError::Malformed)),
            "{bad:?}"
        );
    }
}

#[test]
fn well_formed_but_unknown_is_unknown() {
    let f = fixture();
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Author,
            &subject("alice"),
            &subject("cli"),
        )
        .expect("create");
    let stranger = format!("aifn_0123456789abcdef_{}", "ab".repeat(32));
    assert!(matches!(
        f.reg.authenticate(&stranger),
        Err(AuthError::Unknown)
    ));
    // The right id with a wrong secret is just as unknown.
    let forged = format!("aifn_{}_{}", key.key_id, "cd".repeat(32));
    assert!(matches!(
        f.reg.authenticate(&forged),
        Err(AuthError::Unknown)
    ));
    assert!(f.reg.authenticate(&key.secret).is_ok());
}

#[test]
fn listing_keys_never_shows_secrets_and_filters_by_tenant() {
    let f = fixture();
    let a = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Author,
            &subject("alice"),
            &subject("cli"),
        )
        .expect("a");
    let b = f
        .reg
        .create_key(
            &tenant("globex"),
            Role::Admin,
            &subject("gina"),
            &subject("cli"),
        )
        .expect("b");
    let all = f.reg.list_keys(None).expect("all");
    assert_eq!(all.len(), 2);
    let acme = f.reg.list_keys(Some(&tenant("acme"))).expect("acme");
    assert_eq!(acme.len(), 1);
    assert_eq!(
        (
            acme[0].key_id.as_str(),
            acme[0].role,
            acme[0].subject.as_str()
        ),
        (a.key_id.as_str(), Role::Author, "alice")
    );
    assert_eq!(acme[0].created_by.as_str(), "cli");
    assert_eq!(acme[0].revoked_at, None);
    let json = serde_json::to_string(&all).expect("json");
    for key in [&a, &b] {
        let secret_part = key.secret.rsplit('_').next().expect("secret part");
        assert!(!json.contains(secret_part), "listing leaks a secret");
        assert!(
            !json.contains(&crate::sha256_hex(key.secret.as_bytes())),
            "listing leaks a hash"
        );
    }
}

#[test]
fn key_actions_are_audited_and_roll_back_without_their_record() {
    let f = fixture();
    let rec = &f.audit;
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Approver,
            &subject("bob"),
            &subject("root"),
        )
        .expect("create");
    f.reg
        .revoke_key(&key.key_id, &subject("root"))
        .expect("revoke");
    let expected = |action, notes: Option<&str>| RegistryAction {
        tenant_id: tenant("acme"),
        actor: subject("root"),
        action,
        target: AuditTarget::Key {
            key_id: key.key_id.clone(),
        },
        sha256: None,
        notes: notes.map(Into::into),
        refused: None,
        before: None,
        after: None,
        override_failing_tests: false,
    };
    assert_eq!(
        rec.take(),
        [
            expected(
                RegistryActionKind::KeyCreated,
                Some("role approver for bob")
            ),
            expected(RegistryActionKind::KeyRevoked, None)
        ]
    );

    f.audit.fail(true);
    let err = f.reg.create_key(
        &tenant("acme"),
        Role::Admin,
        &subject("eve"),
        &subject("root"),
    );
    f.audit.fail(false);
    assert!(matches!(err, Err(RegistryError::Audit(_))), "{err:?}");
    assert_eq!(
        f.reg.list_keys(None).expect("list").len(),
        1,
        "the unaudited key was kept"
    );
    let live = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Admin,
            &subject("eve"),
            &subject("root"),
        )
        .expect("create");
    f.audit.fail(true);
    let err = f.reg.revoke_key(&live.key_id, &subject("root"));
    f.audit.fail(false);
    assert!(matches!(err, Err(RegistryError::Audit(_))), "{err:?}");
    assert!(
        f.reg.authenticate(&live.secret).is_ok(),
        "the unaudited revocation was kept"
    );
}
