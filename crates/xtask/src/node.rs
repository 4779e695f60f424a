//! Node.js for the tests that drive aifn with the official TypeScript MCP
//! SDK: `npm ci` in `tests/mcp-client` (the lock file pins the SDK). No
//! Node.js is an error, never a skipped test.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::tools::{find_in_path, output, run};

/// Where the TypeScript client and its lock file are.
pub(crate) const MCP_CLIENT: &str = "tests/mcp-client";

/// Installs the TypeScript MCP client's dependencies (`npm ci`).
pub(crate) fn install_mcp_client(root: &Path) -> Result<()> {
    for tool in ["node", "npm"] {
        if find_in_path(tool).is_none() {
            bail!(
                "{tool} is not on PATH: the MCP tests run the official TypeScript SDK with Node.js 18 or newer.\n  \
                 apt-get install -y nodejs npm   (Debian 12 / Ubuntu, as root)\n  \
                 brew install node               (macOS)"
            );
        }
    }
    let version = output(Command::new("node").arg("--version")).unwrap_or_default();
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 18 {
        bail!(
            "node {} is too old: the MCP SDK needs Node.js 18 or newer",
            version.trim()
        );
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(root.join(MCP_CLIENT)))
}
