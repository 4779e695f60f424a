//! The fuzz smoke run of `cargo xtask test`: every target of `fuzz/`
//! for a few seconds (`fuzz/run.sh`).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::test::Step;

/// Seconds each fuzz target runs in the smoke run of `cargo xtask test`.
const FUZZ_SMOKE_SECONDS: &str = "15";

/// Runs `fuzz/run.sh` as one step of the suite, when the script exists.
pub(crate) fn smoke(root: &Path, step: &Step<'_>) -> Result<()> {
    let script = root.join("fuzz/run.sh");
    if !script.exists() {
        return Ok(());
    }
    step("fuzz smoke run", &mut || {
        let status = Command::new("bash")
            .arg(&script)
            .arg(FUZZ_SMOKE_SECONDS)
            .current_dir(root)
            .status()
            .context("cannot run fuzz/run.sh")?;
        if !status.success() {
            bail!("fuzz/run.sh failed ({status})");
        }
        Ok(())
    })
}
