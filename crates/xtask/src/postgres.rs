//! PostgreSQL for the registry's, the audit log's and the fleet's tests: Debian's server binaries, which
//! the tests run themselves (`initdb`, `pg_ctl` in a temporary directory;
//! see crates/test-support/src/postgres.rs). Installed with apt-get when
//! missing and running as root, as the guest toolchains are.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::tools::apt_install;

/// Where Debian puts each major version's server binaries.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
const PACKAGES: &[&str] = &["postgresql"];

/// The variable that runs the registry's and the audit's suites against
/// PostgreSQL.
pub(crate) const BACKEND_ENV: &str = "AIFN_TEST_BACKEND";

/// The directory with `initdb`, installing PostgreSQL when it is missing.
pub(crate) fn ensure() -> Result<PathBuf> {
    if let Some(bin) = find() {
        return Ok(bin);
    }
    if apt_install(PACKAGES)?
        && let Some(bin) = find()
    {
        return Ok(bin);
    }
    bail!(
        "PostgreSQL's initdb is not installed (looked in {DEBIAN_ROOT}/*/bin); the registry's \
         PostgreSQL tests need it. Install it, e.g.\n  apt-get install -y {}   (Debian 12, as root)",
        PACKAGES.join(" ")
    )
}

fn find() -> Option<PathBuf> {
    let entries = std::fs::read_dir(DEBIAN_ROOT).ok()?;
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn has_server(bin: &Path) -> bool {
    ["initdb", "pg_ctl", "psql"]
        .iter()
        .all(|t| bin.join(t).is_file())
}
