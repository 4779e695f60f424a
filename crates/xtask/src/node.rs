//! Node.js for the tests that drive aifn from Node: the official
//! TypeScript MCP SDK (`npm ci` in `tests/mcp-client`) and the console's
//! browser test (`npm ci` in `tests/console` for playwright-core, and
//! Debian's `chromium`, installed with apt when missing). The lock files
//! pin both. No Node.js or no browser is an error, never a skipped test.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::tools::{find_in_path, output, run};

/// Where the TypeScript client and its lock file are.
pub(crate) const MCP_CLIENT: &str = "tests/mcp-client";

/// Where the console's Playwright script and its lock file are.
pub(crate) const CONSOLE_TEST: &str = "tests/console";

/// The browser the console test drives (`npx playwright install` cannot
/// download browsers here).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Installs the TypeScript MCP client's dependencies (`npm ci`).
pub(crate) fn install_mcp_client(root: &Path) -> Result<()> {
    check_node()?;
    npm_ci(root, MCP_CLIENT)
}

/// Installs playwright-core (`npm ci`) and Debian's Chromium for the
/// console's browser test.
pub(crate) fn install_console_test(root: &Path) -> Result<()> {
    check_node()?;
    if !Path::new(CHROMIUM).exists()
        && !crate::tools::apt_install(&["chromium", "fonts-liberation"])?
    {
        bail!(
            "{CHROMIUM} is missing: the console test drives Debian's Chromium.\n  \
             apt-get install -y chromium fonts-liberation   (Debian 12, as root)"
        );
    }
    if !Path::new(CHROMIUM).exists() {
        bail!("apt-get installed chromium, but {CHROMIUM} is still missing");
    }
    npm_ci(root, CONSOLE_TEST)
}

fn npm_ci(root: &Path, dir: &str) -> Result<()> {
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(root.join(dir)))
}

fn check_node() -> Result<()> {
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
    Ok(())
}
