//! A real service over a fresh temporary data dir, with the local admin
//! that makes its keys (as `aifn keys create` does), as the server's and
//! the service's tests and the `http_request` fuzz target set one up.

use std::path::Path;
use std::sync::Arc;

use aifn_service::{
    Clock, Credential, DataDir, LocalAdmin, NewKey, Origin, PolicyInfo, Service, ServiceConfig,
    SystemClock,
};
use aifn_types::{AgentPolicy, FunctionPattern, Role, Subject, TenantId};
use tempfile::TempDir;

/// The node name of every test service.
const NODE: &str = "test";

/// Host limits for tests that run spinning guests: plenty of fuel, so a
/// spinning guest ends by its deadline (`timeout`) and never by its fuel
/// unless its manifest asks.
pub fn plenty_of_fuel(c: &mut ServiceConfig) {
    c.limits.fuel = 1_000_000_000_000;
}

fn base_config(dir: &Path) -> ServiceConfig {
    ServiceConfig {
        data_dir: dir.to_path_buf(),
        node: Some(NODE.into()),
        ..ServiceConfig::default()
    }
}

/// A service and its local admin over one temporary data dir.
pub struct TempService {
    /// The service, opened after the admin.
    pub service: Service,
    /// The local admin (keys), open beside the service.
    pub admin: LocalAdmin,
    /// The data dir; last, so the files outlive everything that has them
    /// open.
    pub dir: TempDir,
}

impl TempService {
    /// A service in a new directory under the system's temp dir, with the
    /// default configuration (node `test`) that `tune` adjusts.
    pub fn open(tune: impl FnOnce(&mut ServiceConfig)) -> TempService {
        TempService::open_in(&std::env::temp_dir(), tune)
    }

    /// [`TempService::open`] in a new directory under `base` (a tmpfs such
    /// as `/dev/shm` spares the disk under a fuzzer).
    pub fn open_in(base: &Path, tune: impl FnOnce(&mut ServiceConfig)) -> TempService {
        TempService::open_with_clock(base, Arc::new(SystemClock), tune)
    }

    /// [`TempService::open_in`] with the clock budgets are counted in (an
    /// `aifn_service::ManualClock` for tests of budget windows).
    pub fn open_with_clock(
        base: &Path,
        clock: Arc<dyn Clock>,
        tune: impl FnOnce(&mut ServiceConfig),
    ) -> TempService {
        let dir = tempfile::Builder::new()
            .prefix("aifn-test-")
            .tempdir_in(base)
            .expect("tempdir");
        let admin = LocalAdmin::open(DataDir::new(dir.path(), NODE)).expect("local admin");
        let mut config = base_config(dir.path());
        tune(&mut config);
        let service = Service::open_with_clock(config, clock).expect("service");
        TempService {
            service,
            admin,
            dir,
        }
    }

    /// The data dir's layout.
    pub fn data_dir(&self) -> DataDir {
        DataDir::new(self.dir.path(), NODE)
    }

    /// A new key of `role` for `subject` in `tenant`, created by the local
    /// admin `test-admin`.
    pub fn key(&self, tenant: &str, role: Role, subject: &str) -> NewKey {
        self.admin
            .create_key(
                &TenantId::new(tenant).expect("tenant"),
                role,
                &Subject::new(subject).expect("subject"),
                &Subject::new("test-admin").expect("actor"),
            )
            .expect("create key")
    }
}

impl TempService {
    /// Grants agent `agent` of `tenant` the functions `allow` (names or
    /// prefixes ending in `*`), as an admin does through the API: a
    /// policy set by an admin key of the tenant (`test-admin`).
    pub fn grant(&self, tenant: &str, agent: &str, allow: &[&str]) -> PolicyInfo {
        let policy = AgentPolicy {
            allow: allow
                .iter()
                .map(|p| FunctionPattern::new(*p).expect("pattern"))
                .collect(),
            ..AgentPolicy::default()
        };
        self.set_policy(tenant, agent, policy)
    }

    /// Sets the policy of agent `agent` of `tenant` through the service,
    /// as the tenant's admin `test-admin`.
    pub fn set_policy(&self, tenant: &str, agent: &str, policy: AgentPolicy) -> PolicyInfo {
        let admin = self.key(tenant, Role::Admin, "test-admin");
        let who = self
            .service
            .authenticate(
                &Credential::ApiKey(admin.secret),
                Origin {
                    route: "/test",
                    remote: None,
                },
            )
            .expect("admin authenticates");
        self.service
            .set_policy(&who, &Subject::new(agent).expect("subject"), policy)
            .expect("set policy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_in_the_temporary_data_dir_and_the_config_is_tuned() {
        let t = TempService::open(|c| c.limits.fuel = 1234);
        let key = t.key("acme", Role::Agent, "acme-agent");
        assert!(!key.secret.is_empty());
        assert!(t.data_dir().root.starts_with(std::env::temp_dir()));
        let mut c = ServiceConfig::default();
        plenty_of_fuel(&mut c);
        assert_eq!(c.limits.fuel, 1_000_000_000_000);
        let listed = t.admin.list_keys(None).expect("keys");
        assert_eq!(listed.len(), 1);
        // A grant is a real policy, version 1 and then 2.
        assert_eq!(t.grant("acme", "acme-agent", &["*"]).version, 1);
        assert_eq!(t.grant("acme", "acme-agent", &["f_*"]).version, 2);
    }
}
