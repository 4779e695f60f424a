//! The service: one registry, one audit log, one runtime, and the state
//! the use cases share. The use cases themselves are in their own modules
//! (`auth`, `functions`, `catalog`, `invoke`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aifn_audit::{AuditLog, AuditPage, AuditQuery};
use aifn_registry::{Principal, Registry};
use aifn_runtime::{Runtime, RuntimeConfig};
use aifn_types::Role;

use crate::active_cache::ActiveCache;
use crate::auth::require;
use crate::clock::{Clock, SystemClock};
use crate::gateway::Gateway;
use crate::limiter::Limiter;
use crate::metrics::Series;
use crate::testing::HourlyCap;
use crate::{Metrics, ServiceConfig, ServiceError};

pub(crate) struct Inner {
    pub(crate) config: ServiceConfig,
    pub(crate) runtime: Runtime,
    pub(crate) registry: Registry,
    pub(crate) audit: AuditLog,
    pub(crate) limiter: Limiter,
    pub(crate) metrics: Metrics,
    pub(crate) active: ActiveCache,
    pub(crate) gateway: Gateway,
    /// The per-tenant hourly cap on test runs.
    pub(crate) test_runs: HourlyCap,
    /// Always true, except in the benchmark baseline (feature
    /// `bench-unaudited`), which measures what the invocation records cost.
    pub(crate) record_invocations: bool,
}

/// The aifn service. Cheap to clone; share it across threads.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Opens the data dir (creating it), the registry, the audit log and
    /// the runtime with its on-disk module cache.
    pub fn open(config: ServiceConfig) -> Result<Service, ServiceError> {
        Service::open_inner(config, true, Arc::new(SystemClock))
    }

    /// [`Service::open`] with the clock the budget windows are counted in
    /// (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn open_with_clock(
        config: ServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, ServiceError> {
        Service::open_inner(config, true, clock)
    }

    /// FOR BENCHMARKS ONLY: a service that records registry actions but
    /// writes no invocation record at all, so that a benchmark can compare
    /// the same run with and without the audit of every call. Compiled
    /// only with the `bench-unaudited` feature; nothing in the `aifn`
    /// binary calls it.
    #[cfg(feature = "bench-unaudited")]
    pub fn open_unaudited_baseline(config: ServiceConfig) -> Result<Service, ServiceError> {
        Service::open_inner(config, false, Arc::new(SystemClock))
    }

    fn open_inner(
        config: ServiceConfig,
        record_invocations: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, ServiceError> {
        let unavailable = crate::admin::open_err;
        let dir = config.layout().map_err(|e| unavailable("data dir", &e))?;
        let mut audit_cfg = dir.audit_config();
        audit_cfg.checkpoint_every_records = config.audit.checkpoint_every;
        audit_cfg.checkpoint_interval = Duration::from_secs(config.audit.checkpoint_secs);
        audit_cfg.max_db_bytes = config.audit.max_db_bytes;
        let audit = AuditLog::open(audit_cfg).map_err(|e| unavailable("audit log", &e))?;
        let registry = dir
            .open_registry(&audit)
            .map_err(|e| unavailable("registry", &e))?;
        let runtime_config = RuntimeConfig {
            limits: config.limits,
            // Room for every admitted call, so admission, not the pool, decides.
            max_instances: config.max_concurrent.max(1) + 4,
            cache_dir: Some(dir.module_cache()),
            memory_keep_resident: config.memory_keep_resident,
            cpu_slots: config.cpu_slots,
            ..RuntimeConfig::default()
        };
        let active = ActiveCache::new(
            runtime_config.memory_cache_entries,
            config.active_cache_ttl(),
        );
        let config_ttl = config.active_cache_ttl();
        let runtime = Runtime::new(runtime_config).map_err(|e| unavailable("runtime", &e))?;
        let service = Service {
            inner: Arc::new(Inner {
                limiter: Limiter::new(
                    config.tenant.per_node(config.fleet_nodes),
                    config.max_concurrent.max(1),
                ),
                test_runs: HourlyCap::new(
                    config
                        .tenant
                        .per_node(config.fleet_nodes)
                        .test_runs_per_hour,
                ),
                config,
                runtime,
                registry,
                audit,
                metrics: Metrics::default(),
                active,
                gateway: Gateway::new(config_ttl, clock),
                record_invocations,
            }),
        };
        // Another node's approval, revocation or policy change empties the
        // caches at once; the TTL is the fallback. Weak: the listener must
        // not keep a closed service alive.
        let weak = Arc::downgrade(&service.inner);
        service
            .inner
            .registry
            .watch_changes(Arc::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.active.clear();
                    inner.gateway.clear();
                }
            }))
            .map_err(|e| unavailable("registry's change listener", &e))?;
        Ok(service)
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// Refuses unless `who` may read the audit log (admins and approvers).
    /// Transports call it before they parse the query's parameters.
    pub fn authorize_audit(&self, who: &Principal) -> Result<(), ServiceError> {
        require(who, &[Role::Admin, Role::Approver], "reading the audit log")
    }

    /// The caller's tenant's audit records (admins and approvers).
    pub fn audit(&self, who: &Principal, q: AuditQuery) -> Result<AuditPage, ServiceError> {
        self.authorize_audit(who)?;
        self.inner
            .audit
            .query(&who.tenant, &q)
            .map_err(crate::admin::query_error)
    }

    /// Ready to serve: the audit log can write.
    pub fn ready(&self) -> Result<(), ServiceError> {
        if self.inner.audit.is_healthy() {
            Ok(())
        } else {
            Err(ServiceError::Unavailable {
                message: "the audit log cannot write".into(),
            })
        }
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let audit = self.inner.audit.stats();
        let runtime = self.inner.runtime.stats();
        let cached = runtime.cached_modules as u64;
        let series = |name, help, value| Series { name, help, value };
        self.inner.metrics.render(
            self.inner.limiter.running(),
            &[
                series(
                    "aifn_audit_records_total",
                    "Audit records appended by this process.",
                    audit.records,
                ),
                series(
                    "aifn_audit_commits_total",
                    "Audit commits (each one fsync).",
                    audit.commits,
                ),
                series(
                    "aifn_module_cache_hits_total",
                    "Compiled modules loaded from the memory or disk cache.",
                    runtime.memory_hits + runtime.disk_hits,
                ),
                series(
                    "aifn_module_compiles_total",
                    "Modules compiled by this process.",
                    runtime.compiles,
                ),
            ],
            &[
                series(
                    "aifn_audit_healthy",
                    "1 when the audit log can write.",
                    u64::from(self.inner.audit.is_healthy()),
                ),
                series(
                    "aifn_cached_modules",
                    "Compiled modules held in memory.",
                    cached,
                ),
            ],
        )
    }

    /// The metrics counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Applies the audit retention setting, if any (the pruning is recorded).
    pub fn apply_retention(&self) -> Result<u64, ServiceError> {
        let Some(days) = self.inner.config.audit.retention_days else {
            return Ok(0);
        };
        let cutoff = SystemTime::now() - Duration::from_secs(u64::from(days) * 86_400);
        let report = self
            .inner
            .audit
            .prune(cutoff, "retention")
            .map_err(|e| ServiceError::internal("audit retention", &e))?;
        Ok(report.pruned)
    }

    /// Flushes the audit log and signs a final checkpoint.
    pub fn close(&self) -> Result<(), ServiceError> {
        self.inner
            .audit
            .close()
            .map_err(|e| ServiceError::internal("audit close", &e))
    }
}
