//! The per-tenant cap on test runs: a count per fixed UTC hour, kept in
//! memory on this node (like the budgets).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aifn_types::TenantId;

const HOUR_SECS: u64 = 3600;

/// At most `per_hour` admissions per tenant in each UTC hour.
pub(crate) struct HourlyCap {
    per_hour: u32,
    /// The hour (since the epoch) counted, and each tenant's count in it.
    window: Mutex<(u64, HashMap<TenantId, u32>)>,
}

impl HourlyCap {
    pub(crate) fn new(per_hour: u32) -> HourlyCap {
        HourlyCap {
            per_hour,
            window: Mutex::new((0, HashMap::new())),
        }
    }

    /// Counts one for `tenant` at `now`, or says how long until the next
    /// hour (at least a second) when its count is used up.
    pub(crate) fn admit(&self, tenant: &TenantId, now: SystemTime) -> Result<(), Duration> {
        self.admit_many(tenant, now, 1)
    }

    /// Counts `n` for `tenant` at `now`, all of them or none.
    pub(crate) fn admit_many(
        &self,
        tenant: &TenantId,
        now: SystemTime,
        n: u32,
    ) -> Result<(), Duration> {
        let since_epoch = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let hour = since_epoch.as_secs() / HOUR_SECS;
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if window.0 != hour {
            *window = (hour, HashMap::new());
        }
        let count = window.1.entry(tenant.clone()).or_insert(0);
        if count.saturating_add(n) > self.per_hour {
            let next = Duration::from_secs((hour + 1) * HOUR_SECS);
            return Err(next.saturating_sub(since_epoch).max(Duration::from_secs(1)));
        }
        *count += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).expect("tenant")
    }

    #[test]
    fn each_tenant_gets_its_count_per_hour() {
        let cap = HourlyCap::new(2);
        let ten_past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_261_600 + 600);
        assert_eq!(cap.admit(&t("a"), ten_past), Ok(()));
        assert_eq!(cap.admit(&t("a"), ten_past), Ok(()));
        assert_eq!(
            cap.admit(&t("a"), ten_past),
            Err(Duration::from_secs(3000)),
            "until the next hour"
        );
        assert_eq!(cap.admit(&t("b"), ten_past), Ok(()), "another tenant");
        let next_hour = ten_past + Duration::from_secs(3000);
        assert_eq!(cap.admit(&t("a"), next_hour), Ok(()));
        assert!(HourlyCap::new(0).admit(&t("a"), next_hour).is_err());
    }

    #[test]
    fn many_are_counted_all_or_none() {
        let cap = HourlyCap::new(5);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_261_600);
        assert_eq!(cap.admit_many(&t("a"), now, 3), Ok(()));
        assert!(cap.admit_many(&t("a"), now, 3).is_err(), "3 + 3 > 5");
        assert_eq!(cap.admit_many(&t("a"), now, 2), Ok(()), "none were taken");
        assert!(cap.admit(&t("a"), now).is_err());
        assert_eq!(cap.admit_many(&t("a"), now, 0), Ok(()));
    }
}
