//! Running commands, finding programs, and installing Debian packages.

use std::env;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// Runs a command with inherited output; fails with the command line.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

/// stdout of a command that succeeded, or `None`.
pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An executable named `name` on PATH.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

/// Installs Debian packages when running as root with apt-get available.
/// Returns false when that is not possible.
pub(crate) fn apt_install(packages: &[&str]) -> Result<bool> {
    if !is_root() || find_in_path("apt-get").is_none() {
        return Ok(false);
    }
    eprintln!("installing {} with apt-get", packages.join(" "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if install() {
        return Ok(true);
    }
    // A fresh machine may have no package lists yet.
    run(Command::new("apt-get")
        .args(["update"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null()))?;
    if !install() {
        bail!("apt-get install {} failed", packages.join(" "));
    }
    Ok(true)
}

/// Removes the variables `cargo run` sets for xtask itself and anything
/// that would change how guests are compiled behind the cache's back.
pub(crate) fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in env::vars_os() {
        let k = k.to_string_lossy();
        let drop = (k.starts_with("CARGO")
            && k != "CARGO_HOME"
            && k != "CARGO_NET_OFFLINE"
            && !k.starts_with("CARGO_HTTP")
            && !k.starts_with("CARGO_REGISTRIES"))
            || matches!(
                &*k,
                "RUSTC"
                    | "RUSTDOC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
            );
        if drop {
            cmd.env_remove(&*k);
        }
    }
    cmd
}
