//! Agent policies and tenant settings: set and deleted by the tenant's
//! admin, each change one write transaction with its record (before and
//! after) handed to the audit sink before commit; refusals recorded too.

use aifn_types::{
    AgentPolicy, AuditTarget, RegistryAction, RegistryActionKind, Role, Subject, TenantId,
    TenantSettings, Timestamp,
};
use serde_json::{Value, json};

use crate::registry::Result;
use crate::upload::require_role;
use crate::{AgentInfo, PolicyInfo, Principal, Registry, RegistryError, TenantInfo};

fn policy_json(p: &PolicyInfo) -> Value {
    json!({"version": p.version, "policy": p.policy})
}

fn settings_json(t: &TenantInfo) -> Value {
    json!({"version": t.version, "settings": t.settings})
}

/// A policy's limits only lower a function's: zero is no limit at all.
fn check_policy(policy: &AgentPolicy) -> Result<()> {
    for (name, l) in &policy.limits {
        for (field, v) in [
            ("fuel", l.fuel),
            ("timeout_ms", l.timeout_ms),
            ("memory_bytes", l.memory_bytes),
        ] {
            if v == Some(0) {
                return Err(RegistryError::InvalidPolicy(format!(
                    "invalid policy: limits.{name}.{field} must be at least 1"
                )));
            }
        }
    }
    Ok(())
}

impl Registry {
    /// The attempt of a change by `actor`, in the actor's tenant (a
    /// refusal never lands in another tenant's log).
    fn attempt(
        actor: &Principal,
        action: RegistryActionKind,
        target: AuditTarget,
    ) -> RegistryAction {
        RegistryAction {
            tenant_id: actor.tenant.clone(),
            actor: actor.subject.clone(),
            action,
            target,
            sha256: None,
            notes: None,
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        }
    }

    /// Creates or replaces the policy of agent `subject` in the actor's
    /// tenant; its version is one more than the last one ever set. The
    /// actor must be an admin.
    pub fn set_policy(
        &self,
        actor: &Principal,
        subject: &Subject,
        policy: AgentPolicy,
    ) -> Result<PolicyInfo> {
        let target = AuditTarget::Agent {
            subject: subject.clone(),
        };
        let attempt = Registry::attempt(actor, RegistryActionKind::PolicySet, target);
        let result = require_role(actor, Role::Admin, "set agent policies")
            .and_then(|()| check_policy(&policy))
            .and_then(|()| {
                self.write(|tx| {
                    let before = tx.policy(&actor.tenant, subject)?;
                    let info = PolicyInfo {
                        subject: subject.clone(),
                        version: tx.last_policy_version(&actor.tenant, subject)? + 1,
                        policy: policy.clone(),
                        updated_at: Timestamp::now(),
                        updated_by: actor.subject.clone(),
                    };
                    tx.put_policy(&actor.tenant, &info)?;
                    self.record(&RegistryAction {
                        before: before.as_ref().map(policy_json),
                        after: Some(policy_json(&info)),
                        ..attempt.clone()
                    })?;
                    Ok(info)
                })
            });
        result.map_err(|e| self.refused(attempt, e))
    }

    /// Deletes the policy of agent `subject`: it may invoke nothing from
    /// now on (unless the tenant is `open`). Its version count goes on.
    /// Returns the deleted policy. The actor must be an admin.
    pub fn delete_policy(&self, actor: &Principal, subject: &Subject) -> Result<PolicyInfo> {
        let target = AuditTarget::Agent {
            subject: subject.clone(),
        };
        let attempt = Registry::attempt(actor, RegistryActionKind::PolicyDeleted, target);
        let result = require_role(actor, Role::Admin, "delete agent policies").and_then(|()| {
            self.write(|tx| {
                let before = tx.policy(&actor.tenant, subject)?.ok_or_else(|| {
                    RegistryError::PolicyNotFound {
                        subject: subject.clone(),
                    }
                })?;
                tx.delete_policy(&actor.tenant, subject)?;
                self.record(&RegistryAction {
                    before: Some(policy_json(&before)),
                    ..attempt.clone()
                })?;
                Ok(before)
            })
        });
        result.map_err(|e| self.refused(attempt, e))
    }

    /// Changes the settings of the actor's tenant with `change`; their
    /// version goes up by one. The actor must be an admin; an `Err` from
    /// `change` refuses the change as invalid (and is recorded so).
    pub fn update_tenant_settings(
        &self,
        actor: &Principal,
        change: &dyn Fn(&mut TenantSettings) -> std::result::Result<(), String>,
    ) -> Result<TenantInfo> {
        let attempt = Registry::attempt(
            actor,
            RegistryActionKind::TenantSettings,
            AuditTarget::Tenant,
        );
        let result = require_role(actor, Role::Admin, "change tenant settings").and_then(|()| {
            self.write(|tx| {
                let before = tx.tenant_settings(&actor.tenant)?;
                let mut settings = before.settings.clone();
                change(&mut settings).map_err(RegistryError::InvalidPolicy)?;
                let info = TenantInfo {
                    tenant_id: actor.tenant.clone(),
                    settings,
                    version: before.version + 1,
                    updated_at: Some(Timestamp::now()),
                    updated_by: Some(actor.subject.clone()),
                };
                tx.put_tenant_settings(&info)?;
                self.record(&RegistryAction {
                    before: Some(settings_json(&before)),
                    after: Some(settings_json(&info)),
                    ..attempt.clone()
                })?;
                Ok(info)
            })
        });
        result.map_err(|e| self.refused(attempt, e))
    }

    /// The tenant's current policies, by subject.
    pub fn policies(&self, tenant: &TenantId) -> Result<Vec<PolicyInfo>> {
        self.store().policies(tenant)
    }

    /// One agent's current policy, if it has one.
    pub fn policy(&self, tenant: &TenantId, subject: &Subject) -> Result<Option<PolicyInfo>> {
        self.store().policy(tenant, subject)
    }

    /// The tenant's settings: the defaults (version 0) if never changed.
    pub fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantInfo> {
        self.store().tenant_settings(tenant)
    }

    /// The tenant's agents (subjects with agent keys or a policy), by
    /// subject.
    pub fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentInfo>> {
        self.store().agents(tenant)
    }

    /// The tenants in `open` mode, by id.
    pub fn open_tenants(&self) -> Result<Vec<TenantId>> {
        self.store().open_tenants()
    }
}
