//! The version state machine, as a pure table and through the API.

use aifn_registry::{Registry, RegistryError, VersionAction, VersionInfo, transition};
use aifn_types::{Role, VersionState};

use crate::{approve, fixture, principal, target, upload};

use VersionAction as A;
use VersionState as S;

/// Every (state, action) pair and what it must lead to; `None` is refused.
const TABLE: [(S, A, Option<S>); 20] = [
    (S::Pending, A::Approve, Some(S::Active)),
    (S::Pending, A::Reject, Some(S::Rejected)),
    (S::Pending, A::Revoke, None),
    (S::Pending, A::Supersede, None),
    (S::Active, A::Approve, None),
    (S::Active, A::Reject, None),
    (S::Active, A::Revoke, Some(S::Revoked)),
    (S::Active, A::Supersede, Some(S::Superseded)),
    (S::Rejected, A::Approve, None),
    (S::Rejected, A::Reject, None),
    (S::Rejected, A::Revoke, None),
    (S::Rejected, A::Supersede, None),
    (S::Revoked, A::Approve, None),
    (S::Revoked, A::Reject, None),
    (S::Revoked, A::Revoke, None),
    (S::Revoked, A::Supersede, None),
    (S::Superseded, A::Approve, None),
    (S::Superseded, A::Reject, None),
    (S::Superseded, A::Revoke, None),
    (S::Superseded, A::Supersede, None),
];

#[test]
fn table_covers_every_state_and_action_once() {
    for state in S::ALL {
        for action in A::ALL {
            let rows = TABLE
                .iter()
                .filter(|(s, a, _)| *s == state && *a == action)
                .count();
            assert_eq!(rows, 1, "{state} x {action}");
        }
    }
}

#[test]
fn transition_function_is_exactly_the_table() {
    for (from, action, expected) in TABLE {
        match (transition(from, action), expected) {
            (Ok(to), Some(want)) => assert_eq!(to, want, "{from} x {action}"),
            (Err(RegistryError::IllegalTransition { from: f, action: a }), None) => {
                assert_eq!((f, a), (from, action));
            }
            (got, want) => panic!("{from} x {action}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn illegal_transition_message_names_state_and_action() {
    let err = transition(S::Rejected, A::Approve).expect_err("final state");
    assert_eq!(err.to_string(), "cannot approve a version that is rejected");
    assert_eq!(err.kind(), None);
}

/// Uploads a fresh function and brings its newest version to `state`
/// through the API only.
fn version_in(reg: &Registry, name: &str, state: S) -> VersionInfo {
    let author = principal("acme", Role::Author, "alice");
    let approver = principal("acme", Role::Approver, "bob");
    let v1 = upload(reg, &author, name, &format!("{name}-1"));
    let v = match state {
        S::Pending => v1,
        S::Active => approve(reg, &approver, &v1),
        S::Rejected => reg
            .reject(&approver, &target(&v1), &v1.sha256, "no")
            .expect("reject"),
        S::Revoked => {
            approve(reg, &approver, &v1);
            reg.revoke(&approver, &target(&v1), "withdrawn")
                .expect("revoke")
        }
        S::Superseded => {
            approve(reg, &approver, &v1);
            let v2 = upload(reg, &author, name, &format!("{name}-2"));
            approve(reg, &approver, &v2);
            reg.get_version(&v1.tenant, &v1.name, 1).expect("v1")
        }
    };
    assert_eq!(v.state, state, "setup of {name}");
    v
}

#[test]
fn every_state_and_requestable_action_through_the_api() {
    let f = fixture();
    let approver = principal("acme", Role::Approver, "bob");
    for (i, (from, action, expected)) in TABLE.into_iter().enumerate() {
        if action == A::Supersede {
            continue; // not requestable; covered by the supersede tests
        }
        let name = format!("case_{i}");
        let v = version_in(&f.reg, &name, from);
        let decisions_before = v.decisions.len();
        let t = target(&v);
        let result = match action {
            A::Approve => f.reg.approve(&approver, &t, &v.sha256, "ok", false),
            A::Reject => f.reg.reject(&approver, &t, &v.sha256, "no"),
            A::Revoke => f.reg.revoke(&approver, &t, "stop"),
            A::Supersede => unreachable!(),
        };
        let after = f
            .reg
            .get_version(&t.tenant, &t.name, t.version)
            .expect("reread");
        match (result, expected) {
            (Ok(info), Some(want)) => {
                assert_eq!(info.state, want, "{from} x {action}");
                assert_eq!(after.state, want, "{from} x {action} stored");
                assert_eq!(after.decisions.len(), decisions_before + 1);
                let last = after.decisions.last().expect("decision");
                assert_eq!(
                    (last.action, last.sha256.as_str()),
                    (action, v.sha256.as_str())
                );
            }
            (
                Err(RegistryError::IllegalTransition {
                    from: f0,
                    action: a0,
                }),
                None,
            ) => {
                assert_eq!((f0, a0), (from, action));
                assert_eq!(
                    after.state, from,
                    "{from} x {action} must not change the state"
                );
                assert_eq!(
                    after.decisions.len(),
                    decisions_before,
                    "{from} x {action} left a decision"
                );
            }
            (got, want) => panic!("{from} x {action}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn versions_are_numbered_from_one_and_diffed_against_the_previous() {
    let f = fixture();
    let author = principal("acme", Role::Author, "alice");
    let v1 = upload(&f.reg, &author, "calc", "a");
    let v2 = upload(&f.reg, &author, "calc", "abcd");
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.state, S::Pending);
    assert_eq!(v1.report.diff, None);
    let diff = v2.report.diff.expect("diff against v1");
    assert_eq!(diff.previous_version, 1);
    assert_eq!(diff.size_change_bytes, 3);
    assert_eq!(v2.report.effective_limits, aifn_types::Limits::default());
}
