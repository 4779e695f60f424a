//! Agent policies and tenant settings: versions, roles, the record of
//! every change (before and after) and of every refusal.

use std::sync::Arc;

use aifn_registry::{Registry, RegistryError};
use aifn_types::{
    AgentPolicy, AuditTarget, Budget, FunctionLimits, FunctionPattern, Refusal, RefusalKind,
    RegistryActionKind, Role, TenantMode,
};
use serde_json::json;

use crate::{Fixture, fixture, fname, principal, subject, tenant};

fn allow(patterns: &[&str]) -> AgentPolicy {
    AgentPolicy {
        allow: patterns
            .iter()
            .map(|p| FunctionPattern::new(*p).expect("pattern"))
            .collect(),
        ..AgentPolicy::default()
    }
}

fn refusal_of(f: &Fixture, action: RegistryActionKind, kind: RefusalKind, err: &RegistryError) {
    let records = f.audit.take();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].action, action);
    assert_eq!(
        records[0].refused,
        Some(Refusal {
            kind,
            reason: err.to_string()
        })
    );
}

#[test]
fn versions_start_at_one_and_go_on_after_a_delete_each_change_with_before_and_after() {
    let f = fixture();
    let admin = principal("acme", Role::Admin, "carol");
    let bot = subject("bot");
    let v1 = f.reg.set_policy(&admin, &bot, allow(&["a"])).expect("set");
    assert_eq!((v1.version, v1.updated_by.as_str()), (1, "carol"));
    let v2 = f
        .reg
        .set_policy(&admin, &bot, allow(&["b_*"]))
        .expect("set");
    assert_eq!(v2.version, 2);
    let deleted = f.reg.delete_policy(&admin, &bot).expect("delete");
    assert_eq!(deleted, v2);
    assert_eq!(f.reg.policy(&tenant("acme"), &bot).expect("read"), None);
    let v3 = f
        .reg
        .set_policy(&admin, &bot, allow(&["c"]))
        .expect("set again");
    assert_eq!(v3.version, 3, "the count goes on after a delete");
    let records = f.audit.take();
    let kinds: Vec<_> = records.iter().map(|r| r.action).collect();
    assert_eq!(
        kinds,
        [
            RegistryActionKind::PolicySet,
            RegistryActionKind::PolicySet,
            RegistryActionKind::PolicyDeleted,
            RegistryActionKind::PolicySet
        ]
    );
    for r in &records {
        assert_eq!(
            r.target,
            AuditTarget::Agent {
                subject: bot.clone()
            }
        );
        assert_eq!((r.actor.as_str(), r.tenant_id.as_str()), ("carol", "acme"));
        assert_eq!(r.refused, None);
    }
    assert_eq!(records[0].before, None);
    assert_eq!(
        records[0].after,
        Some(json!({"version": 1, "policy": {"allow": ["a"], "deny": []}}))
    );
    assert_eq!(records[1].before, records[0].after);
    assert_eq!(records[2].before, records[1].after);
    assert_eq!(records[2].after, None);
    assert_eq!(records[3].before, None);
}

#[test]
fn only_admins_change_policies_and_settings_and_each_refusal_is_recorded() {
    let f = fixture();
    let bot = subject("bot");
    for role in [Role::Agent, Role::Approver, Role::Author] {
        let who = principal("acme", role, "mallory");
        let e = f
            .reg
            .set_policy(&who, &bot, allow(&["*"]))
            .expect_err("set");
        assert!(matches!(e, RegistryError::Forbidden { .. }), "{e:?}");
        refusal_of(
            &f,
            RegistryActionKind::PolicySet,
            RefusalKind::Forbidden,
            &e,
        );
        let e = f.reg.delete_policy(&who, &bot).expect_err("delete");
        refusal_of(
            &f,
            RegistryActionKind::PolicyDeleted,
            RefusalKind::Forbidden,
            &e,
        );
        let e = f
            .reg
            .update_tenant_settings(&who, &|s| {
                s.mode = TenantMode::Open;
                Ok(())
            })
            .expect_err("settings");
        refusal_of(
            &f,
            RegistryActionKind::TenantSettings,
            RefusalKind::Forbidden,
            &e,
        );
    }
    assert!(f.reg.policies(&tenant("acme")).expect("list").is_empty());
    assert_eq!(
        f.reg
            .tenant_settings(&tenant("acme"))
            .expect("read")
            .version,
        0
    );
    // The admin may; deleting what is not there is refused as not found.
    let admin = principal("acme", Role::Admin, "carol");
    let e = f.reg.delete_policy(&admin, &bot).expect_err("no policy");
    assert!(matches!(e, RegistryError::PolicyNotFound { .. }), "{e:?}");
    refusal_of(
        &f,
        RegistryActionKind::PolicyDeleted,
        RefusalKind::NotFound,
        &e,
    );
}

#[test]
fn invalid_policies_and_settings_are_refused_as_invalid_and_store_nothing() {
    let f = fixture();
    let admin = principal("acme", Role::Admin, "carol");
    let mut p = allow(&["f"]);
    p.limits.insert(
        fname("f"),
        FunctionLimits {
            fuel: Some(0),
            ..FunctionLimits::default()
        },
    );
    let e = f
        .reg
        .set_policy(&admin, &subject("bot"), p.clone())
        .expect_err("zero fuel");
    assert!(e.to_string().contains("limits.f.fuel"), "{e}");
    refusal_of(
        &f,
        RegistryActionKind::PolicySet,
        RefusalKind::InvalidRequest,
        &e,
    );
    let e = f
        .reg
        .update_tenant_settings(&admin, &|_| Err("bad pattern".into()))
        .expect_err("refused by the change");
    refusal_of(
        &f,
        RegistryActionKind::TenantSettings,
        RefusalKind::InvalidRequest,
        &e,
    );
    assert_eq!(
        f.reg
            .tenant_settings(&tenant("acme"))
            .expect("read")
            .version,
        0
    );
    // The same policy with a lowered (not zero) limit is stored.
    p.limits.insert(
        fname("f"),
        FunctionLimits {
            fuel: Some(10),
            ..FunctionLimits::default()
        },
    );
    let stored = f
        .reg
        .set_policy(&admin, &subject("bot"), p.clone())
        .expect("set");
    assert_eq!(stored.version, 1, "refusals took no version");
    assert_eq!(stored.policy, p);
}

#[test]
fn tenant_settings_start_as_defaults_and_each_change_is_the_next_version() {
    let f = fixture();
    let admin = principal("acme", Role::Admin, "carol");
    let t = f.reg.tenant_settings(&tenant("acme")).expect("defaults");
    assert_eq!(
        (t.version, t.updated_by, t.settings.mode),
        (0, None, TenantMode::Allowlist)
    );
    let open = f
        .reg
        .update_tenant_settings(&admin, &|s| {
            s.mode = TenantMode::Open;
            Ok(())
        })
        .expect("open");
    assert_eq!(open.version, 1);
    let budget = Budget {
        calls_per_hour: Some(5),
        fuel_per_hour: None,
    };
    let two = f
        .reg
        .update_tenant_settings(&admin, &|s| {
            s.budget = budget;
            Ok(())
        })
        .expect("budget");
    assert_eq!(
        (two.version, two.settings.mode, two.settings.budget),
        (2, TenantMode::Open, budget)
    );
    assert_eq!(f.reg.tenant_settings(&tenant("acme")).expect("read"), two);
    assert_eq!(f.reg.open_tenants().expect("open"), vec![tenant("acme")]);
    // Another tenant is untouched, and not open.
    assert_eq!(
        f.reg
            .tenant_settings(&tenant("globex"))
            .expect("read")
            .version,
        0
    );
    let records = f.audit.take();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].target, AuditTarget::Tenant);
    assert_eq!(
        records[0].before.as_ref().map(|b| &b["version"]),
        Some(&json!(0))
    );
    assert_eq!(
        records[1].after.as_ref().map(|a| &a["settings"]["mode"]),
        Some(&json!("open"))
    );
    assert_eq!(records[1].before, records[0].after);
}

#[test]
fn agents_are_the_subjects_with_agent_keys_or_a_policy_in_the_tenant() {
    let f = fixture();
    let acme = tenant("acme");
    let by = subject("setup");
    let k1 = f
        .reg
        .create_key(&acme, Role::Agent, &subject("bot"), &by)
        .expect("key");
    f.reg
        .create_key(&acme, Role::Agent, &subject("bot"), &by)
        .expect("key");
    f.reg
        .create_key(&acme, Role::Author, &subject("alice"), &by)
        .expect("key");
    f.reg
        .create_key(&tenant("globex"), Role::Agent, &subject("other"), &by)
        .expect("key");
    f.reg.revoke_key(&k1.key_id, &by).expect("revoke");
    let admin = principal("acme", Role::Admin, "carol");
    f.reg
        .set_policy(&admin, &subject("planned"), allow(&["*"]))
        .expect("set");
    let agents = f.reg.agents(&acme).expect("agents");
    let got: Vec<_> = agents
        .iter()
        .map(|a| (a.subject.as_str(), a.active_keys, a.policy_version))
        .collect();
    assert_eq!(got, [("bot", 1, None), ("planned", 0, Some(1))]);
    // The policy is acme's only.
    assert_eq!(
        f.reg
            .policy(&tenant("globex"), &subject("planned"))
            .expect("read"),
        None
    );
    assert_eq!(f.reg.policies(&acme).expect("list").len(), 1);
}

#[test]
fn concurrent_sets_each_get_their_own_version() {
    let f = fixture();
    let reg = Arc::new(f.reg);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let reg = Arc::clone(&reg);
            std::thread::spawn(move || {
                let admin = principal("acme", Role::Admin, "carol");
                (0..5)
                    .map(|j| {
                        let p = allow(&[&format!("f{i}_{j}")]);
                        reg.set_policy(&admin, &subject("bot"), p)
                            .expect("set")
                            .version
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut versions: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
}

#[test]
fn a_change_whose_record_fails_is_rolled_back() {
    let f = fixture();
    let admin = principal("acme", Role::Admin, "carol");
    f.audit.fail(true);
    let e = f
        .reg
        .set_policy(&admin, &subject("bot"), allow(&["*"]))
        .expect_err("no record");
    assert!(matches!(e, RegistryError::Audit(_)), "{e:?}");
    f.audit.fail(false);
    assert_eq!(
        f.reg
            .policy(&tenant("acme"), &subject("bot"))
            .expect("read"),
        None
    );
    assert_eq!(
        f.reg
            .set_policy(&admin, &subject("bot"), allow(&["*"]))
            .expect("set")
            .version,
        1
    );
}

/// SQLite-specific: its migrations (see `postgres` for its counterpart).
#[test]
fn a_database_of_the_first_schema_upgrades_and_keeps_its_data() {
    let f = crate::sqlite_fixture();
    let path = f.reg.database_path().expect("a file").to_owned();
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Agent,
            &subject("bot"),
            &subject("setup"),
        )
        .expect("key");
    drop(f.reg);
    // Back to schema 1, as an older aifn left it.
    let conn = rusqlite::Connection::open(&path).expect("raw");
    conn.execute_batch(crate::source_and_tests::UNDO_V3)
        .expect("undo schema 3");
    conn.execute_batch(
        "DROP TABLE agent_policies; DROP TABLE policy_history; DROP TABLE tenant_settings; \
         PRAGMA user_version = 1;",
    )
    .expect("downgrade");
    drop(conn);
    let reg = Registry::open(&path, crate::NoAudit).expect("upgrade");
    assert!(reg.authenticate(&key.secret).is_ok(), "keys survive");
    let admin = principal("acme", Role::Admin, "carol");
    assert_eq!(
        reg.set_policy(&admin, &subject("bot"), allow(&["*"]))
            .expect("set")
            .version,
        1
    );
    let version: u32 = rusqlite::Connection::open(&path)
        .expect("raw")
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, 4);
    drop(f.dir);
}
