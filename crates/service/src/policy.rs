//! The admin's use cases of the gateway: agent policies, the tenant's
//! mode, budget and output guard, and an agent's usage. Admins change
//! them (each change a registry action with its before and after);
//! approvers and authors read them; agents get `forbidden` on every one.
//! A change made through this service takes effect at the next call.

use aifn_registry::Principal;
pub use aifn_registry::{AgentInfo, PolicyInfo, TenantInfo};
use aifn_types::{AgentPolicy, Budget, GuardSettings, Role, Subject, TenantId, TenantMode};

use crate::auth::require;
use crate::budget::Usage;
use crate::{Service, ServiceError};

const READERS: &[Role] = &[Role::Admin, Role::Approver, Role::Author];

impl Service {
    /// The caller's tenant's agents: subjects with agent keys or a policy.
    pub fn agents(&self, who: &Principal) -> Result<Vec<AgentInfo>, ServiceError> {
        require(who, READERS, "reading agent policies")?;
        Ok(self.inner.registry.agents(&who.tenant)?)
    }

    /// The policy of `agent`; `not_found` if it has none.
    pub fn policy(&self, who: &Principal, agent: &Subject) -> Result<PolicyInfo, ServiceError> {
        require(who, READERS, "reading agent policies")?;
        self.inner
            .registry
            .policy(&who.tenant, agent)?
            .ok_or_else(|| ServiceError::NotFound {
                what: format!("policy of agent {agent}"),
            })
    }

    /// Creates or replaces the policy of `agent` (admins).
    pub fn set_policy(
        &self,
        who: &Principal,
        agent: &Subject,
        policy: AgentPolicy,
    ) -> Result<PolicyInfo, ServiceError> {
        let info = self.inner.registry.set_policy(who, agent, policy)?;
        self.inner.gateway.forget_policy(&who.tenant, agent);
        Ok(info)
    }

    /// Deletes the policy of `agent` (admins); `not_found` if it has none.
    /// The agent may invoke nothing from the next call on (unless the
    /// tenant is `open`).
    pub fn delete_policy(&self, who: &Principal, agent: &Subject) -> Result<(), ServiceError> {
        let deleted = self.inner.registry.delete_policy(who, agent);
        self.inner.gateway.forget_policy(&who.tenant, agent);
        deleted.map(drop).map_err(Into::into)
    }

    /// What `agent` and the tenant have used of their budgets in the
    /// current window (admins).
    pub fn usage(&self, who: &Principal, agent: &Subject) -> Result<Usage, ServiceError> {
        require(who, &[Role::Admin], "reading budget usage")?;
        let (agent_budget, tenant_budget) = self.budgets_of(&who.tenant, agent)?;
        let gate = &self.inner.gateway;
        Ok(gate.budgets.usage(
            &self.inner.registry,
            &who.tenant,
            agent,
            (agent_budget, tenant_budget),
            gate.clock.now(),
        )?)
    }

    /// The caller's tenant's settings.
    pub fn tenant(&self, who: &Principal) -> Result<TenantInfo, ServiceError> {
        require(who, READERS, "reading tenant settings")?;
        Ok(self.inner.registry.tenant_settings(&who.tenant)?)
    }

    /// Sets the tenant's mode (admins): `open` lets every agent invoke
    /// every active function, for development only.
    pub fn set_tenant_mode(
        &self,
        who: &Principal,
        mode: TenantMode,
    ) -> Result<TenantInfo, ServiceError> {
        self.change_tenant(who, &|s| {
            s.mode = mode;
            Ok(())
        })
    }

    /// Sets the tenant's budgets, over all its agents (admins).
    pub fn set_tenant_budget(
        &self,
        who: &Principal,
        budget: Budget,
    ) -> Result<TenantInfo, ServiceError> {
        self.change_tenant(who, &|s| {
            s.budget = budget;
            Ok(())
        })
    }

    /// Sets the tenant's output guard (admins); a pattern that does not
    /// compile is `invalid_request`.
    pub fn set_output_guard(
        &self,
        who: &Principal,
        guard: GuardSettings,
    ) -> Result<TenantInfo, ServiceError> {
        self.change_tenant(who, &|s| {
            crate::gateway::check_guard(&guard)?;
            s.output_guard = guard.clone();
            Ok(())
        })
    }

    /// The tenants in `open` mode (host-level: for `/readyz` and the
    /// server's warnings).
    pub fn open_tenants(&self) -> Result<Vec<TenantId>, ServiceError> {
        Ok(self.inner.registry.open_tenants()?)
    }

    fn change_tenant(
        &self,
        who: &Principal,
        change: &dyn Fn(&mut aifn_types::TenantSettings) -> Result<(), String>,
    ) -> Result<TenantInfo, ServiceError> {
        let info = self.inner.registry.update_tenant_settings(who, change)?;
        self.inner.gateway.forget_settings(&who.tenant);
        Ok(info)
    }
}
