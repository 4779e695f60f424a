//! The gateway: the decision made on every call of an agent before any
//! other work (before the rate limiter, the lookup of the active version,
//! the schema check and the run). First the tenant's mode and the agent's
//! policy (`not_allowed`, `denied`), then the budgets (`budget_exhausted`).
//!
//! Policies and tenant settings are cached like active versions: trusted
//! for the active cache's TTL, forgotten at once when changed through
//! this service, so a change takes effect at the next call.

use std::sync::Arc;
use std::time::Duration;

use aifn_registry::{PolicyInfo, Principal, TenantInfo};
use aifn_types::{
    Admission, AllowedBy, Budget, FunctionLimits, FunctionName, Limits, PolicyDecision,
    RejectReason, Subject, TenantId, TenantMode,
};

use crate::active_cache::{ActiveCache, Lookup};
use crate::budget::Budgets;
use crate::clock::Clock;
use crate::guard::OutputGuard;
use crate::{Service, ServiceError};

/// Cached policies and settings beyond this many go, oldest check first.
const CACHE_ENTRIES: usize = 4096;

/// A tenant's settings as the invoke path uses them.
pub(crate) struct TenantView {
    pub(crate) info: TenantInfo,
    /// The tenant's output guard, compiled once per settings version.
    pub(crate) guard: OutputGuard,
}

impl TenantView {
    fn compile(info: TenantInfo) -> Result<TenantView, ServiceError> {
        // Stored settings compiled when they were set: a failure now is
        // the host's fault, and calls fail closed.
        let guard = OutputGuard::compile(&info.settings.output_guard)
            .map_err(|e| ServiceError::internal("compile the output guard", &e))?;
        Ok(TenantView { info, guard })
    }
}

/// The gateway's state: its caches, the budgets' counts and their clock.
pub(crate) struct Gateway {
    settings: ActiveCache<TenantView, ()>,
    policies: ActiveCache<Option<PolicyInfo>, Subject>,
    pub(crate) budgets: Budgets,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Gateway {
    pub(crate) fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Gateway {
        Gateway {
            settings: ActiveCache::new(CACHE_ENTRIES, ttl),
            policies: ActiveCache::new(CACHE_ENTRIES, ttl),
            budgets: Budgets::default(),
            clock,
        }
    }

    pub(crate) fn forget_policy(&self, tenant: &TenantId, subject: &Subject) {
        self.policies.forget(tenant, subject);
    }

    pub(crate) fn forget_settings(&self, tenant: &TenantId) {
        self.settings.forget(tenant, &());
    }

    /// Drops every cached policy and setting (another node changed them).
    pub(crate) fn clear(&self) {
        self.settings.clear();
        self.policies.clear();
    }
}

/// An admitted call: its admission and what the policy lowers.
pub(crate) struct Admitted {
    pub(crate) admission: Admission,
    pub(crate) limits: Option<FunctionLimits>,
    pub(crate) tenant: Arc<TenantView>,
    /// The agent or its tenant has a budget (a fleet counts its fuel).
    pub(crate) budgeted: bool,
}

/// A call the gateway refused, with its admission when it decided one.
pub(crate) struct Turned {
    pub(crate) admission: Option<Admission>,
    pub(crate) error: ServiceError,
}

impl From<ServiceError> for Turned {
    fn from(error: ServiceError) -> Turned {
        Turned {
            admission: None,
            error,
        }
    }
}

/// The policy's word on `function`, budgets aside: an agent with a policy
/// is held to it (in `open` mode too); one without is allowed only by
/// `open` mode.
pub(crate) fn decide(
    mode: TenantMode,
    policy: Option<&PolicyInfo>,
    function: Option<&FunctionName>,
) -> Result<AllowedBy, RejectReason> {
    match (policy, function) {
        (Some(p), Some(f)) => p.policy.admits(f).map(|()| AllowedBy::Policy),
        // No pattern matches a name that is not a function name.
        (Some(_), None) => Err(RejectReason::NotAllowed),
        (None, _) if mode == TenantMode::Open => Ok(AllowedBy::OpenMode),
        (None, _) => Err(RejectReason::NotAllowed),
    }
}

fn rejection(reason: RejectReason, who: &Principal, function: &str) -> ServiceError {
    let message = match reason {
        RejectReason::Denied => format!("the policy of agent {} denies {function}", who.subject),
        _ => format!(
            "agent {} may not invoke {function}: its policy does not allow it",
            who.subject
        ),
    };
    ServiceError::Rejected { reason, message }
}

/// The call's limits: the function's, lowered field by field by the policy.
pub(crate) fn lowered(limits: Limits, by: Option<&FunctionLimits>) -> Limits {
    let Some(by) = by else { return limits };
    let min = |own: u64, policy: Option<u64>| policy.map_or(own, |p| own.min(p));
    Limits {
        fuel: min(limits.fuel, by.fuel),
        timeout_ms: min(limits.timeout_ms, by.timeout_ms),
        memory_bytes: min(limits.memory_bytes, by.memory_bytes),
        ..limits
    }
}

/// A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, ids not all
/// zeros), or nothing: an invalid one is dropped, not recorded.
pub(crate) fn traceparent(raw: Option<String>) -> Option<String> {
    let raw = raw?;
    let parts: Vec<&str> = raw.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let ok = matches!(parts.as_slice(), [v, trace, span, flags]
        if *v == "00" && hex(trace, 32) && hex(span, 16) && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0') && span.bytes().any(|b| b != b'0'));
    ok.then_some(raw)
}

/// Refuses guard settings that do not compile, with why.
pub(crate) fn check_guard(guard: &aifn_types::GuardSettings) -> Result<(), String> {
    OutputGuard::compile(guard)
        .map(drop)
        .map_err(|e| format!("invalid output guard: {e}"))
}

impl Service {
    /// The tenant's settings, from the cache while fresh.
    pub(crate) fn tenant_view(&self, tenant: &TenantId) -> Result<Arc<TenantView>, ServiceError> {
        let cache = &self.inner.gateway.settings;
        let stale = match cache.get(tenant, &()) {
            Lookup::Fresh(v) => return Ok(v),
            Lookup::Stale(v) => Some(v),
            Lookup::Missing => None,
        };
        let info = self.inner.registry.tenant_settings(tenant)?;
        let view = match stale {
            Some(v) if v.info.version == info.version => v,
            _ => Arc::new(TenantView::compile(info)?),
        };
        cache.insert(tenant, &(), Arc::clone(&view));
        Ok(view)
    }

    /// The agent's policy, from the cache while fresh.
    pub(crate) fn agent_policy(
        &self,
        tenant: &TenantId,
        subject: &Subject,
    ) -> Result<Arc<Option<PolicyInfo>>, ServiceError> {
        let cache = &self.inner.gateway.policies;
        if let Lookup::Fresh(p) = cache.get(tenant, subject) {
            return Ok(p);
        }
        let policy = Arc::new(self.inner.registry.policy(tenant, subject)?);
        cache.insert(tenant, subject, Arc::clone(&policy));
        Ok(policy)
    }

    /// Whether the agent `who` may invoke `function` (budgets aside): what
    /// the tool catalog lists.
    pub(crate) fn permitted(
        &self,
        who: &Principal,
    ) -> Result<impl Fn(&FunctionName) -> bool, ServiceError> {
        let mode = self.tenant_view(&who.tenant)?.info.settings.mode;
        let policy = self.agent_policy(&who.tenant, &who.subject)?;
        Ok(move |f: &FunctionName| decide(mode, policy.as_ref().as_ref(), Some(f)).is_ok())
    }

    /// The gateway's decision on a call of `function` by the agent `who`.
    pub(crate) fn admit(&self, who: &Principal, function: &str) -> Result<Admitted, Turned> {
        let tenant = self.tenant_view(&who.tenant)?;
        let policy = self.agent_policy(&who.tenant, &who.subject)?;
        let policy = policy.as_ref().as_ref();
        let name = FunctionName::new(function).ok();
        let mut admission = Admission {
            decision: PolicyDecision::Reject,
            reason: None,
            allowed_by: None,
            policy_version: policy.map(|p| p.version),
        };
        let allowed_by = match decide(tenant.info.settings.mode, policy, name.as_ref()) {
            Ok(by) => by,
            Err(reason) => {
                admission.reason = Some(reason);
                return Err(Turned {
                    admission: Some(admission),
                    error: rejection(reason, who, function),
                });
            }
        };
        let agent_budget = policy.map(|p| p.policy.budget).unwrap_or_default();
        let gate = &self.inner.gateway;
        let budgeted = !agent_budget.is_unlimited() || !tenant.info.settings.budget.is_unlimited();
        let counted = gate
            .budgets
            .admit(
                &self.inner.registry,
                &who.tenant,
                &who.subject,
                &agent_budget,
                &tenant.info.settings.budget,
                gate.clock.now(),
            )
            .map_err(|e| Turned {
                admission: None,
                error: e.into(),
            })?;
        if let Err(e) = counted {
            self.inner.metrics.budget_rejected(&who.tenant);
            admission.reason = Some(RejectReason::BudgetExhausted);
            return Err(Turned {
                admission: Some(admission),
                error: ServiceError::RateLimited {
                    retry_after: e.retry_after,
                    scope: e.scope,
                },
            });
        }
        admission.decision = PolicyDecision::Allow;
        admission.allowed_by = Some(allowed_by);
        let limits = policy.and_then(|p| name.as_ref().and_then(|n| p.policy.limits.get(n)));
        Ok(Admitted {
            admission,
            limits: limits.copied(),
            tenant,
            budgeted,
        })
    }

    /// The budgets of agent `subject` and of its tenant.
    pub(crate) fn budgets_of(
        &self,
        tenant: &TenantId,
        subject: &Subject,
    ) -> Result<(Budget, Budget), ServiceError> {
        let agent = self
            .agent_policy(tenant, subject)?
            .as_ref()
            .as_ref()
            .map(|p| p.policy.budget)
            .unwrap_or_default();
        Ok((agent, self.tenant_view(tenant)?.info.settings.budget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_are_kept() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(traceparent(Some(good.into())).as_deref(), Some(good));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(traceparent(Some(bad.into())), None, "{bad:?} kept");
        }
        assert_eq!(traceparent(None), None);
    }

    #[test]
    fn policy_limits_only_lower() {
        let own = Limits::default();
        let by = FunctionLimits {
            fuel: Some(10),
            timeout_ms: Some(u64::MAX),
            memory_bytes: None,
        };
        let l = lowered(own, Some(&by));
        assert_eq!(
            (l.fuel, l.timeout_ms, l.memory_bytes),
            (10, own.timeout_ms, own.memory_bytes)
        );
        assert_eq!(lowered(own, None), own);
    }
}
