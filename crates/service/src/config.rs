use std::path::PathBuf;
use std::time::Duration;

use aifn_types::{DatabaseUrl, Limits};
use serde::{Deserialize, Serialize};

use crate::admin::{DataDir, DataDirError};

/// Per-tenant admission limits. Every tenant gets the same limits; one
/// tenant can never take the whole host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantLimits {
    /// Sustained invocations per second (token bucket refill). Default 200.
    pub rate_per_second: f64,
    /// Burst size (token bucket capacity). Default 400.
    pub burst: u32,
    /// Invocations of one tenant running at once. Default 8.
    pub max_concurrent: u32,
    /// Test runs of one tenant per UTC hour: manifest tests at upload
    /// and runs by approvers and authors; never counted as invocations.
    /// Default 600.
    pub test_runs_per_hour: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            rate_per_second: 200.0,
            burst: 400,
            max_concurrent: 8,
            test_runs_per_hour: 600,
        }
    }
}

impl TenantLimits {
    /// One node's share when `nodes` nodes serve the fleet: the rate, the
    /// burst, the concurrency and the hourly test runs divided evenly, so
    /// the fleet together admits what one node would (with an even load
    /// balancer; an uneven one reaches a node's share early). A share is
    /// never below one call (or 0.001 calls per second), so a limit
    /// smaller than the fleet can admit up to `nodes` at once; a limit of
    /// 0 stays 0.
    pub fn per_node(self, nodes: u32) -> TenantLimits {
        if nodes <= 1 {
            return self;
        }
        // A limit of 0 (nothing allowed) stays 0 on every node.
        let share = |v: u32| if v == 0 { 0 } else { (v / nodes).max(1) };
        TenantLimits {
            rate_per_second: (self.rate_per_second / f64::from(nodes)).max(0.001),
            burst: share(self.burst),
            max_concurrent: share(self.max_concurrent),
            test_runs_per_hour: share(self.test_runs_per_hour),
        }
    }
}

/// The audit log's settings (`[service.audit]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// The checkpoint signing key. Default `<data_dir>/audit-signing.key`;
    /// in production keep it outside the data dir.
    pub signing_key: Option<PathBuf>,
    /// Sign a checkpoint after this many records. Default 1,000.
    pub checkpoint_every: u64,
    /// Sign a checkpoint at least this often (seconds). Default 60.
    pub checkpoint_secs: u64,
    /// Delete records older than this many days (the pruning is itself
    /// recorded). Default: keep everything.
    pub retention_days: Option<u32>,
    /// Cap on the audit database's size in bytes. Past it, records cannot
    /// be written and calls are refused (fail closed) until records are
    /// pruned. Default: no cap beyond the disk.
    pub max_db_bytes: Option<u64>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            signing_key: None,
            checkpoint_every: 1_000,
            checkpoint_secs: 60,
            retention_days: None,
            max_db_bytes: None,
        }
    }
}

/// Everything the service needs to start. The CLI fills it from flags and
/// an optional TOML file; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Where the registry, the audit log and the module cache live.
    /// Default `./aifn-data`.
    pub data_dir: PathBuf,
    /// Name of this host in audit records. Default: generated once per
    /// data dir (`<hostname>-<random>`) and kept in `<data_dir>/node`, so
    /// the records of different nodes can be told apart.
    pub node: Option<String>,
    /// The PostgreSQL database a fleet of nodes shares (`[service]
    /// database`, `--database`, `AIFN_DATABASE_URL`): the registry and the
    /// audit log live there. Default none: SQLite files in `data_dir`.
    /// Each node keeps its own data dir for its module cache, its audit
    /// checkpoints and signing key, and its node name.
    pub database: Option<DatabaseUrl>,
    /// How many nodes serve the fleet (with `database`). The per-tenant
    /// limits (`[service.tenant]`) are the fleet's: each node enforces
    /// its share ([`TenantLimits::per_node`]). Agent and tenant budgets
    /// are counted in the shared database instead. Default 1.
    pub fleet_nodes: u32,
    /// Host maxima for every call; manifests may only lower them.
    pub limits: Limits,
    /// Per-tenant admission limits.
    pub tenant: TenantLimits,
    /// Invocations running at once on this host, all tenants together.
    /// Past it calls are refused with `rate_limited`. Default 16.
    pub max_concurrent: u32,
    /// The audit log: signing key, checkpoints, retention, quota.
    pub audit: AuditSettings,
    /// How long a cached active-version lookup (and an agent's policy, and
    /// a tenant's settings) is trusted before it is checked against the
    /// registry again; changes made through this service apply at once.
    /// Default 1,000 ms.
    pub active_cache_ms: u64,
    /// Bytes of each instance slot's linear memory kept resident between
    /// calls and zeroed in place (only the pages a call dirtied), instead
    /// of being returned to the kernel and faulted in again. Raise it for
    /// functions that touch much memory (BENCHMARKS.md, benchmark 4):
    /// resident memory grows by up to this much per slot (`max_concurrent`
    /// + 4 slots). Default 131,072 (128 KiB).
    pub memory_keep_resident: usize,
    /// Guests running at once, at least 1. Each fuel slice of a call waits
    /// for one of these slots, and a freed slot goes to the waiting tenant
    /// that has used the least guest CPU time, so that one tenant's long
    /// calls cannot crowd out another tenant's (SECURITY.md). Default: the
    /// host's cores.
    pub cpu_slots: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            data_dir: PathBuf::from("aifn-data"),
            node: None,
            database: None,
            fleet_nodes: 1,
            limits: Limits::default(),
            tenant: TenantLimits::default(),
            max_concurrent: 16,
            audit: AuditSettings::default(),
            active_cache_ms: 1_000,
            memory_keep_resident: 128 * 1024,
            cpu_slots: aifn_runtime::RuntimeConfig::default().cpu_slots,
        }
    }
}

impl ServiceConfig {
    /// The active-version cache lifetime.
    pub fn active_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.active_cache_ms)
    }

    /// The data dir's files as this configuration lays them out: created
    /// if missing, the node named (`node`, or the data dir's own name for
    /// itself), the signing key where `audit.signing_key` puts it.
    pub fn layout(&self) -> Result<DataDir, DataDirError> {
        let mut dir = DataDir::new(&self.data_dir, "");
        dir.create()?;
        dir.node = match &self.node {
            Some(n) => n.clone(),
            None => dir.node_name()?,
        };
        if let Some(k) = &self.audit.signing_key {
            dir.signing_key = k.clone();
        }
        dir.database = self.database.clone();
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_holds_its_share_of_the_tenant_limits() {
        let fleet = TenantLimits {
            rate_per_second: 200.0,
            burst: 400,
            max_concurrent: 3,
            test_runs_per_hour: 0,
        };
        assert_eq!(fleet.per_node(1), fleet);
        assert_eq!(fleet.per_node(0), fleet);
        let share = fleet.per_node(4);
        assert_eq!(
            (share.rate_per_second, share.burst, share.max_concurrent),
            (50.0, 100, 1),
            "a limit smaller than the fleet still admits one per node"
        );
        assert_eq!(share.test_runs_per_hour, 0, "nothing allowed stays nothing");
    }
}
