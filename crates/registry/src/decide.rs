//! Decisions on a version: approve, reject, revoke (and the supersede an
//! approval brings), with separation of duties and the hash binding.

use aifn_types::{AuditTarget, RegistryAction, RegistryActionKind, Role, Timestamp, VersionState};

use crate::registry::Result;
use crate::store::{VersionHead, WriteTx};
use crate::transition::{VersionAction, transition};
use crate::upload::require_role;
use crate::{Decision, Principal, Registry, RegistryError, VersionInfo, VersionRef};

/// One decision asked for.
struct Ask<'a> {
    actor: &'a Principal,
    target: &'a VersionRef,
    action: VersionAction,
    inspected_sha256: Option<&'a str>,
    notes: &'a str,
    /// The approver overrides failing manifest tests.
    override_failing_tests: bool,
}

impl<'a> Ask<'a> {
    /// A decision bound to the module hash the approver inspected.
    fn bound(
        actor: &'a Principal,
        target: &'a VersionRef,
        action: VersionAction,
        sha256: &'a str,
        notes: &'a str,
    ) -> Ask<'a> {
        Ask {
            actor,
            target,
            action,
            inspected_sha256: Some(sha256),
            notes,
            override_failing_tests: false,
        }
    }
}

impl Registry {
    /// Activates a pending version; the function's previously active
    /// version, if any, becomes `superseded` in the same transaction.
    ///
    /// The actor must be an approver of the target's tenant and not the
    /// version's author; `sha256` is the module hash the approver inspected
    /// and must be the stored one; `notes` must not be blank.
    ///
    /// While a manifest test failed at upload the approval is refused
    /// ([`RegistryError::FailingTests`]) unless `override_failing_tests`:
    /// then the decision and its record carry the override. An override
    /// with no failing test overrides nothing and is recorded as none.
    pub fn approve(
        &self,
        actor: &Principal,
        target: &VersionRef,
        sha256: &str,
        notes: &str,
        override_failing_tests: bool,
    ) -> Result<VersionInfo> {
        self.decide(Ask {
            override_failing_tests,
            ..Ask::bound(actor, target, VersionAction::Approve, sha256, notes)
        })
    }

    /// Refuses a pending version, for good. Same rules as [`Registry::approve`].
    pub fn reject(
        &self,
        actor: &Principal,
        target: &VersionRef,
        sha256: &str,
        notes: &str,
    ) -> Result<VersionInfo> {
        self.decide(Ask::bound(
            actor,
            target,
            VersionAction::Reject,
            sha256,
            notes,
        ))
    }

    /// Withdraws the active version; the function then has none. The actor
    /// must be an approver of the target's tenant; unlike approving, the
    /// version's own author may revoke it (stopping code is never the risk).
    pub fn revoke(
        &self,
        actor: &Principal,
        target: &VersionRef,
        notes: &str,
    ) -> Result<VersionInfo> {
        self.decide(Ask {
            actor,
            target,
            action: VersionAction::Revoke,
            inspected_sha256: None,
            notes,
            override_failing_tests: false,
        })
    }

    /// Runs a decision; a refused one is recorded as refused, with the
    /// stored hash when the version was found.
    fn decide(&self, ask: Ask<'_>) -> Result<VersionInfo> {
        let kind = match ask.action {
            VersionAction::Approve => RegistryActionKind::Approve,
            VersionAction::Reject => RegistryActionKind::Reject,
            VersionAction::Revoke => RegistryActionKind::Revoke,
            VersionAction::Supersede => {
                return Err(RegistryError::forbidden(
                    "supersede follows an approval; it is not asked for",
                ));
            }
        };
        let notes = ask.notes.trim();
        let mut attempt = RegistryAction {
            // The actor's tenant: a refusal never lands in another's log.
            tenant_id: ask.actor.tenant.clone(),
            actor: ask.actor.subject.clone(),
            action: kind,
            target: AuditTarget::Version {
                name: ask.target.name.clone(),
                version: ask.target.version,
            },
            sha256: None,
            notes: (!notes.is_empty()).then(|| notes.to_owned()),
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        };
        let mut stored_sha256 = None;
        let result = self.decide_in_tx(&ask, notes, &attempt, &mut stored_sha256);
        result.map_err(|e| {
            attempt.sha256 = stored_sha256;
            self.refused(attempt, e)
        })
    }

    fn decide_in_tx(
        &self,
        ask: &Ask<'_>,
        notes: &str,
        attempt: &RegistryAction,
        stored_sha256: &mut Option<String>,
    ) -> Result<VersionInfo> {
        let Ask {
            actor,
            target,
            action,
            ..
        } = *ask;
        require_role(actor, Role::Approver, action.as_str())?;
        if actor.tenant != target.tenant {
            return Err(RegistryError::forbidden(
                "the key belongs to another tenant",
            ));
        }
        if notes.is_empty() {
            return Err(RegistryError::NotesRequired { action });
        }
        let at = Timestamp::now();
        self.write(|tx| {
            // Re-read under the write lock: the state and hash decided on
            // are the ones committed.
            let head = tx
                .version_head(target)?
                .ok_or_else(|| RegistryError::NotFound {
                    tenant: target.tenant.clone(),
                    name: target.name.clone(),
                    version: Some(target.version),
                })?;
            *stored_sha256 = Some(head.sha256.clone());
            let overriding = check_decision(ask, &head)?;
            let to = transition(head.state, action)?;
            if to == VersionState::Active
                && let Some(old) = tx.active_head(head.function_id)?
            {
                let notes = format!("superseded by version {}", head.version);
                apply(tx, &old, VersionAction::Supersede, actor, at, &notes, false)?;
            }
            apply(tx, &head, action, actor, at, notes, overriding)?;
            let info = tx
                .version(target)?
                .ok_or_else(|| RegistryError::Corrupt("decided version vanished".into()))?;
            // The attempt's tenant is the target's: checked above.
            self.record(&RegistryAction {
                sha256: Some(head.sha256.clone()),
                override_failing_tests: overriding,
                ..attempt.clone()
            })?;
            Ok(info)
        })
    }
}

/// Separation of duties, the state, the hash binding, then the manifest
/// tests of an approval; whether the approval overrides failing tests.
fn check_decision(ask: &Ask<'_>, head: &VersionHead) -> Result<bool> {
    if ask.action != VersionAction::Revoke && head.author == ask.actor.subject {
        return Err(RegistryError::forbidden(format!(
            "separation of duties: the author of a version may not {} it",
            ask.action
        )));
    }
    transition(head.state, ask.action)?;
    if let Some(given) = ask.inspected_sha256
        && !given.eq_ignore_ascii_case(&head.sha256)
    {
        return Err(RegistryError::HashMismatch {
            version: head.version,
            stored: head.sha256.clone(),
            given: given.to_owned(),
        });
    }
    if ask.action != VersionAction::Approve || head.failing_tests.is_empty() {
        return Ok(false);
    }
    if ask.override_failing_tests {
        Ok(true)
    } else {
        Err(RegistryError::FailingTests {
            names: head.failing_tests.clone(),
        })
    }
}

/// Keeps the decision and moves the version to the state it leads to.
fn apply(
    tx: &mut dyn WriteTx,
    head: &VersionHead,
    action: VersionAction,
    actor: &Principal,
    at: Timestamp,
    notes: &str,
    override_failing_tests: bool,
) -> Result<()> {
    let to = transition(head.state, action)?;
    tx.insert_decision(
        head.id,
        &Decision {
            action,
            actor: actor.subject.clone(),
            at,
            notes: notes.to_owned(),
            sha256: head.sha256.clone(),
            override_failing_tests,
        },
    )?;
    tx.set_state(head.id, head.state, to)
}
