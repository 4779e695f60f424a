//! Budgets: calls and fuel per hour, per agent and per tenant.
//!
//! Windows are FIXED hours aligned to the UTC hour (10:00:00 to
//! 10:59:59.999), not sliding: a window's counts start again from zero
//! at the hour. A call counts when the gateway admits it; the fuel it used
//! counts when it ends (timeouts and failures included), in the window it
//! ends in. A call is admitted while the used amount is below the budget,
//! so the last call of a window may take the fuel used past it.
//!
//! On SQLite the counts are kept in this node's memory. On a fleet's
//! PostgreSQL they are counted in the database (`budget_windows`), so the
//! nodes hold each budget together: an admission locks the tenant's and
//! the agent's rows, checks and counts in one transaction. A fleet counts
//! only agents and tenants that have a budget (one write per call, two
//! with its fuel); the others' usage reads as zero there.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use aifn_registry::{BudgetVerdict, BudgetWindow, Registry, RegistryError, WindowCounts};
use aifn_types::{Budget, Subject, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

const HOUR_SECS: u64 = 3600;

/// What one window has used of one budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowUsage {
    /// Calls admitted in the window.
    pub calls: u64,
    /// Fuel used by the calls that ended in the window.
    pub fuel: u64,
    /// The budget the counts are held to.
    pub budget: Budget,
}

/// An agent's usage in the current window, and its tenant's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The agent.
    pub subject: Subject,
    /// The window's start (an hour, UTC).
    pub window_start: Timestamp,
    /// The window's end (the next hour).
    pub window_end: Timestamp,
    /// The agent's counts, against its policy's budget.
    pub agent: WindowUsage,
    /// The tenant's counts (all its agents), against the tenant's budget.
    pub tenant: WindowUsage,
}

/// A budget that is used up, and when its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted {
    /// `agent budget` or `tenant budget`.
    pub(crate) scope: &'static str,
    /// Until the window's end, at least a second.
    pub(crate) retry_after: Duration,
}

/// One window's counts: the registry's type, counted here in memory on
/// one node and in the database on a fleet.
type Counts = WindowCounts;

fn against(c: Counts, budget: Budget) -> WindowUsage {
    WindowUsage {
        calls: c.calls,
        fuel: c.fuel,
        budget,
    }
}

#[derive(Default)]
struct TenantCounts {
    total: Counts,
    agents: HashMap<Subject, Counts>,
}

#[derive(Default)]
struct Window {
    /// Hours since the epoch.
    hour: u64,
    tenants: HashMap<TenantId, TenantCounts>,
}

/// The counts of the current window, for every tenant and agent.
#[derive(Default)]
pub(crate) struct Budgets {
    window: Mutex<Window>,
}

fn hour_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / HOUR_SECS)
}

fn hour_start(hour: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(hour.saturating_mul(HOUR_SECS))
}

/// Refused until the window's end, at least a second.
fn exhausted(scope: &'static str, hour: u64, now: SystemTime) -> Exhausted {
    Exhausted {
        scope,
        retry_after: hour_start(hour + 1)
            .duration_since(now)
            .unwrap_or_default()
            .max(Duration::from_secs(1)),
    }
}

impl Budgets {
    /// The window `now` is in; the counts of an older window are dropped.
    fn at(&self, now: SystemTime) -> MutexGuard<'_, Window> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let hour = hour_of(now);
        if w.hour != hour {
            *w = Window {
                hour,
                tenants: HashMap::new(),
            };
        }
        w
    }

    /// Admits one call of `subject` if neither its budget nor its tenant's
    /// is used up, and counts it: in the fleet's database when the
    /// registry counts budgets, else here. `Err` only if the database
    /// could not answer (the call is refused then).
    pub(crate) fn admit(
        &self,
        registry: &Registry,
        tenant: &TenantId,
        subject: &Subject,
        agent_budget: &Budget,
        tenant_budget: &Budget,
        now: SystemTime,
    ) -> Result<Result<(), Exhausted>, RegistryError> {
        if !registry.counts_budgets() {
            return Ok(self.admit_here(tenant, subject, agent_budget, tenant_budget, now));
        }
        if agent_budget.is_unlimited() && tenant_budget.is_unlimited() {
            return Ok(Ok(()));
        }
        let hour = hour_of(now);
        let w = BudgetWindow {
            tenant,
            subject,
            hour,
        };
        Ok(
            match registry.budget_admit(w, agent_budget, tenant_budget)? {
                BudgetVerdict::Admitted => Ok(()),
                BudgetVerdict::TenantExhausted => Err(exhausted("tenant budget", hour, now)),
                BudgetVerdict::AgentExhausted => Err(exhausted("agent budget", hour, now)),
            },
        )
    }

    /// Counts the fuel of a call that ended at `now`; `budgeted` says
    /// whether the agent or its tenant has a budget (a fleet counts only
    /// those).
    pub(crate) fn add_fuel(
        &self,
        registry: &Registry,
        w: (&TenantId, &Subject),
        fuel: u64,
        budgeted: bool,
        now: SystemTime,
    ) -> Result<(), RegistryError> {
        if !registry.counts_budgets() {
            self.add_fuel_here(w.0, w.1, fuel, now);
            return Ok(());
        }
        if !budgeted || fuel == 0 {
            return Ok(());
        }
        registry.budget_add_fuel(
            BudgetWindow {
                tenant: w.0,
                subject: w.1,
                hour: hour_of(now),
            },
            fuel,
        )
    }

    /// The counts of `subject` and its tenant in the window of `now`.
    pub(crate) fn usage(
        &self,
        registry: &Registry,
        tenant: &TenantId,
        subject: &Subject,
        budgets: (Budget, Budget),
        now: SystemTime,
    ) -> Result<Usage, RegistryError> {
        if !registry.counts_budgets() {
            return Ok(self.usage_here(tenant, subject, budgets.0, budgets.1, now));
        }
        let hour = hour_of(now);
        let (agent, total) = registry.budget_counts(BudgetWindow {
            tenant,
            subject,
            hour,
        })?;
        Ok(Usage {
            subject: subject.clone(),
            window_start: hour_start(hour).into(),
            window_end: hour_start(hour + 1).into(),
            agent: against(agent, budgets.0),
            tenant: against(total, budgets.1),
        })
    }

    fn admit_here(
        &self,
        tenant: &TenantId,
        subject: &Subject,
        agent_budget: &Budget,
        tenant_budget: &Budget,
        now: SystemTime,
    ) -> Result<(), Exhausted> {
        let mut w = self.at(now);
        let hour = w.hour;
        let exhausted = |scope| exhausted(scope, hour, now);
        if !w.tenants.contains_key(tenant) {
            w.tenants.insert(tenant.clone(), TenantCounts::default());
        }
        let Some(t) = w.tenants.get_mut(tenant) else {
            return Ok(());
        };
        if t.total.used_up(tenant_budget) {
            return Err(exhausted("tenant budget"));
        }
        if !t.agents.contains_key(subject) {
            t.agents.insert(subject.clone(), Counts::default());
        }
        let Some(a) = t.agents.get_mut(subject) else {
            return Ok(());
        };
        if a.used_up(agent_budget) {
            return Err(exhausted("agent budget"));
        }
        a.calls += 1;
        t.total.calls += 1;
        Ok(())
    }

    fn add_fuel_here(&self, tenant: &TenantId, subject: &Subject, fuel: u64, now: SystemTime) {
        let mut w = self.at(now);
        let t = w.tenants.entry(tenant.clone()).or_default();
        t.total.fuel = t.total.fuel.saturating_add(fuel);
        let a = t.agents.entry(subject.clone()).or_default();
        a.fuel = a.fuel.saturating_add(fuel);
    }

    fn usage_here(
        &self,
        tenant: &TenantId,
        subject: &Subject,
        agent_budget: Budget,
        tenant_budget: Budget,
        now: SystemTime,
    ) -> Usage {
        let w = self.at(now);
        let t = w.tenants.get(tenant);
        let total = t.map(|t| t.total).unwrap_or_default();
        let agent = t
            .and_then(|t| t.agents.get(subject).copied())
            .unwrap_or_default();
        Usage {
            subject: subject.clone(),
            window_start: hour_start(w.hour).into(),
            window_end: hour_start(w.hour + 1).into(),
            agent: against(agent, agent_budget),
            tenant: against(total, tenant_budget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, Subject, Subject) {
        (
            TenantId::new("acme").expect("tenant"),
            Subject::new("bot").expect("subject"),
            Subject::new("other").expect("subject"),
        )
    }

    #[test]
    fn a_window_admits_up_to_its_budget_and_reopens_at_the_hour() {
        let (t, a, _) = ids();
        let b = Budgets::default();
        let two = Budget {
            calls_per_hour: Some(2),
            fuel_per_hour: None,
        };
        let start = hour_start(500_000);
        let none = Budget::default();
        assert_eq!(b.admit_here(&t, &a, &two, &none, start), Ok(()));
        assert_eq!(b.admit_here(&t, &a, &two, &none, start), Ok(()));
        let late = start + Duration::from_secs(3000);
        let e = b.admit_here(&t, &a, &two, &none, late).expect_err("third");
        assert_eq!(e.scope, "agent budget");
        assert_eq!(e.retry_after, Duration::from_secs(600));
        // The next hour starts from zero.
        let next = start + Duration::from_secs(HOUR_SECS);
        assert_eq!(b.admit_here(&t, &a, &two, &none, next), Ok(()));
        assert_eq!(b.usage_here(&t, &a, two, none, next).agent.calls, 1);
    }

    #[test]
    fn fuel_counts_at_the_end_and_the_tenant_budget_holds_every_agent() {
        let (t, a, o) = ids();
        let b = Budgets::default();
        let fuel = Budget {
            fuel_per_hour: Some(100),
            calls_per_hour: None,
        };
        let none = Budget::default();
        let now = hour_start(500_000);
        assert_eq!(b.admit_here(&t, &a, &none, &fuel, now), Ok(()));
        // Admitted while below: the call may overshoot.
        b.add_fuel_here(&t, &a, 150, now);
        let e = b
            .admit_here(&t, &o, &none, &fuel, now)
            .expect_err("tenant used up");
        assert_eq!(e.scope, "tenant budget");
        let u = b.usage_here(&t, &a, none, fuel, now);
        assert_eq!((u.agent.fuel, u.tenant.fuel, u.tenant.calls), (150, 150, 1));
    }
}
