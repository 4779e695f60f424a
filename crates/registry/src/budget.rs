//! Budget windows counted in the database, so that a fleet's nodes hold
//! an agent's (and a tenant's) hourly budget together. The window rules
//! (fixed UTC hours, a call admitted while below its budget, fuel counted
//! when it ends) are the service's; the database only counts, atomically.
//! SQLite keeps no such counters: one node counts in its own memory.

use aifn_types::{Budget, Subject, TenantId};

use crate::Registry;
use crate::error::RegistryError;

/// What one window has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Calls admitted.
    pub calls: u64,
    /// Fuel used by calls that ended in the window.
    pub fuel: u64,
}

impl WindowCounts {
    /// True if `budget` admits no more calls.
    pub fn used_up(&self, budget: &Budget) -> bool {
        budget.calls_per_hour.is_some_and(|b| self.calls >= b)
            || budget.fuel_per_hour.is_some_and(|b| self.fuel >= b)
    }
}

/// The database's answer to one call's admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetVerdict {
    /// Counted.
    Admitted,
    /// The tenant's budget is used up (nothing counted).
    TenantExhausted,
    /// The agent's budget is used up (nothing counted).
    AgentExhausted,
}

/// One agent's window: the tenant, the agent, the hour since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct BudgetWindow<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// The agent.
    pub subject: &'a Subject,
    /// Hours since the Unix epoch.
    pub hour: u64,
}

impl BudgetWindow<'_> {
    pub(crate) fn hour_param(&self) -> Result<i64, RegistryError> {
        i64::try_from(self.hour).map_err(|_| RegistryError::Corrupt("hour out of range".into()))
    }
}

impl Registry {
    /// Whether budgets are counted here for every node (PostgreSQL), so
    /// the service must ask, not count in memory.
    pub fn counts_budgets(&self) -> bool {
        self.store().counts_budgets()
    }

    /// Admits one call in `w` if neither budget is used up, counting it
    /// for the agent and the tenant in one transaction. Only when
    /// [`Registry::counts_budgets`].
    pub fn budget_admit(
        &self,
        w: BudgetWindow<'_>,
        agent: &Budget,
        tenant: &Budget,
    ) -> Result<BudgetVerdict, RegistryError> {
        self.store().budget_admit(w, agent, tenant)
    }

    /// Adds the fuel of a call that ended in `w`.
    pub fn budget_add_fuel(&self, w: BudgetWindow<'_>, fuel: u64) -> Result<(), RegistryError> {
        self.store().budget_add_fuel(w, fuel)
    }

    /// The agent's and the tenant's counts in `w`.
    pub fn budget_counts(
        &self,
        w: BudgetWindow<'_>,
    ) -> Result<(WindowCounts, WindowCounts), RegistryError> {
        self.store().budget_counts(w)
    }
}
