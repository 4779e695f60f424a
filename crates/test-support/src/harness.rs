//! A real service over a fresh temporary data dir, with the local admin
//! that makes its keys (as `aifn keys create` does), as the server's and
//! the service's tests and the `http_request` fuzz target set one up.

use std::path::Path;

use aifn_service::{DataDir, LocalAdmin, NewKey, Service, ServiceConfig};
use aifn_types::{Role, Subject, TenantId};
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
        let dir = tempfile::Builder::new()
            .prefix("aifn-test-")
            .tempdir_in(base)
            .expect("tempdir");
        let admin = LocalAdmin::open(DataDir::new(dir.path(), NODE)).expect("local admin");
        let mut config = base_config(dir.path());
        tune(&mut config);
        let service = Service::open(config).expect("service");
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
    }
}
