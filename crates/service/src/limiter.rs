//! Admission control: a global cap on running invocations and, per tenant,
//! a concurrency cap and a token bucket. Nothing waits in a queue: past a
//! limit the call is refused at once with a retry hint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aifn_types::TenantId;

use crate::TenantLimits;

struct Bucket {
    tokens: f64,
    refilled: Instant,
    running: u32,
}

pub(crate) struct Limiter {
    tenant: TenantLimits,
    max_global: u32,
    global: AtomicU32,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

/// Why admission was refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Busy {
    pub(crate) retry_after: Duration,
    pub(crate) scope: &'static str,
}

/// Held while an invocation runs.
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    tenant: TenantId,
}

impl Limiter {
    pub(crate) fn new(tenant: TenantLimits, max_global: u32) -> Limiter {
        Limiter {
            tenant,
            max_global,
            global: AtomicU32::new(0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn running(&self) -> u32 {
        self.global.load(Ordering::Relaxed)
    }

    pub(crate) fn admit(&self, tenant: &TenantId) -> Result<Permit<'_>, Busy> {
        let busy = |scope| Busy {
            retry_after: Duration::from_secs(1),
            scope,
        };
        if self.global.fetch_add(1, Ordering::AcqRel) >= self.max_global {
            self.global.fetch_sub(1, Ordering::AcqRel);
            return Err(busy("host concurrency"));
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets.entry(tenant.clone()).or_insert_with(|| Bucket {
            tokens: f64::from(self.tenant.burst),
            refilled: now,
            running: 0,
        });
        let rate = self.tenant.rate_per_second.max(f64::MIN_POSITIVE);
        b.tokens = (b.tokens + now.duration_since(b.refilled).as_secs_f64() * rate)
            .min(f64::from(self.tenant.burst));
        b.refilled = now;
        let refused = if b.running >= self.tenant.max_concurrent {
            Some(busy("tenant concurrency"))
        } else if b.tokens < 1.0 {
            let wait = ((1.0 - b.tokens) / rate).ceil().max(1.0);
            Some(Busy {
                retry_after: Duration::from_secs_f64(wait.min(3600.0)),
                scope: "tenant rate",
            })
        } else {
            None
        };
        if let Some(r) = refused {
            drop(buckets);
            self.global.fetch_sub(1, Ordering::AcqRel);
            return Err(r);
        }
        b.tokens -= 1.0;
        b.running += 1;
        Ok(Permit {
            limiter: self,
            tenant: tenant.clone(),
        })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut buckets = self
            .limiter
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(&self.tenant) {
            b.running = b.running.saturating_sub(1);
        }
        drop(buckets);
        self.limiter.global.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).expect("tenant")
    }

    #[test]
    fn tenant_concurrency_is_capped_and_released() {
        let l = Limiter::new(
            TenantLimits {
                rate_per_second: 1000.0,
                burst: 1000,
                max_concurrent: 2,
                ..TenantLimits::default()
            },
            10,
        );
        let a = l.admit(&t("a")).expect("1");
        let _b = l.admit(&t("a")).expect("2");
        assert_eq!(
            l.admit(&t("a")).err().map(|b| b.scope),
            Some("tenant concurrency")
        );
        // Another tenant is unaffected.
        let _c = l.admit(&t("b")).expect("other tenant");
        drop(a);
        assert!(l.admit(&t("a")).is_ok());
    }

    #[test]
    fn the_rate_is_a_token_bucket() {
        let l = Limiter::new(
            TenantLimits {
                rate_per_second: 0.5,
                burst: 2,
                max_concurrent: 10,
                ..TenantLimits::default()
            },
            10,
        );
        assert!(l.admit(&t("a")).is_ok());
        assert!(l.admit(&t("a")).is_ok());
        let busy = l.admit(&t("a")).err().expect("bucket empty");
        assert_eq!(busy.scope, "tenant rate");
        assert_eq!(busy.retry_after, Duration::from_secs(2));
    }

    #[test]
    fn the_global_cap_holds_across_tenants() {
        let l = Limiter::new(TenantLimits::default(), 2);
        let _a = l.admit(&t("a")).expect("1");
        let _b = l.admit(&t("b")).expect("2");
        assert_eq!(
            l.admit(&t("c")).err().map(|b| b.scope),
            Some("host concurrency")
        );
        assert_eq!(l.running(), 2);
    }
}
