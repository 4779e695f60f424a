//! Rust guest functions: rustup's toolchain with the wasm32 target, or
//! Debian's rustc 1.63 + cargo 1.65 with the dependencies vendored.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest, Sha256};

use crate::layout::Layout;
use crate::tools::{apt_install, clean_env, output, run};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_PACKAGES: &[&str] = &[
    "rustc",
    "cargo",
    "libstd-rust-dev-wasm32",
    "lld-14",
    "clang-14",
];

enum RustKind {
    /// rustup's toolchain with its wasm32 target installed: plain cargo.
    Rustup,
    /// Debian's rustc/cargo at /usr/bin, dependencies vendored.
    Debian,
}

pub(crate) struct RustToolchain {
    kind: RustKind,
    /// `rustc -vV`.
    pub(crate) version: String,
}

impl RustToolchain {
    pub(crate) fn find() -> Result<RustToolchain> {
        if let Some(installed) =
            output(Command::new("rustup").args(["target", "list", "--installed"]))
            && installed.lines().any(|l| l.trim() == WASM_TARGET)
            && let Some(version) = output(Command::new("rustc").arg("-vV"))
        {
            return Ok(RustToolchain {
                kind: RustKind::Rustup,
                version,
            });
        }
        if let Some(version) = debian_rustc() {
            return Ok(RustToolchain {
                kind: RustKind::Debian,
                version,
            });
        }
        if apt_install(DEBIAN_PACKAGES)?
            && let Some(version) = debian_rustc()
        {
            return Ok(RustToolchain {
                kind: RustKind::Debian,
                version,
            });
        }
        bail!(
            "no Rust toolchain for {WASM_TARGET} found. Install one of:\n  \
             rustup target add {WASM_TARGET}\n  \
             apt-get install -y {}   (Debian 12 / Ubuntu, as root)",
            DEBIAN_PACKAGES.join(" ")
        )
    }

    pub(crate) fn describe(&self) -> String {
        let release = self
            .version
            .lines()
            .next()
            .unwrap_or("rustc")
            .trim()
            .to_owned();
        match self.kind {
            RustKind::Rustup => format!("rustup ({release})"),
            RustKind::Debian => format!("Debian /usr/bin ({release})"),
        }
    }

    /// Builds the members; returns the directory holding `<name>.wasm`.
    pub(crate) fn build(&self, layout: &Layout, members: &[String]) -> Result<PathBuf> {
        match self.kind {
            RustKind::Rustup => {
                let target_dir = layout.work.join("rustup");
                let mut cmd = Command::new("cargo");
                clean_env(&mut cmd)
                    .current_dir(&layout.functions)
                    .args([
                        "build",
                        "--release",
                        "--locked",
                        "--target",
                        WASM_TARGET,
                        "--target-dir",
                    ])
                    .arg(&target_dir);
                for m in members {
                    cmd.args(["-p", m]);
                }
                run(&mut cmd)?;
                Ok(target_dir.join(WASM_TARGET).join("release"))
            }
            RustKind::Debian => {
                let vendor = vendor(layout)?;
                let target_dir = layout.work.join("debian");
                let path = match env::var_os("PATH") {
                    Some(p) => {
                        let mut dirs = vec![PathBuf::from("/usr/bin")];
                        dirs.extend(env::split_paths(&p));
                        env::join_paths(dirs)?
                    }
                    None => "/usr/bin".into(),
                };
                let mut cmd = Command::new("/usr/bin/cargo");
                clean_env(&mut cmd)
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env("PATH", path)
                    .env("RUSTC", "/usr/bin/rustc")
                    .current_dir(&layout.functions)
                    .args([
                        "build",
                        "--offline",
                        "--locked",
                        "--release",
                        "--target",
                        WASM_TARGET,
                        "--target-dir",
                    ])
                    .arg(&target_dir)
                    .args([
                        "--config",
                        "source.crates-io.replace-with=\"aifn-vendored\"",
                    ])
                    .arg("--config")
                    .arg(format!(
                        "source.aifn-vendored.directory={}",
                        toml_string(&vendor)?
                    ));
                for m in members {
                    cmd.args(["-p", m]);
                }
                run(&mut cmd)?;
                Ok(target_dir.join(WASM_TARGET).join("release"))
            }
        }
    }
}

/// rustc -vV of Debian's toolchain when it is complete: rustc, cargo and
/// the wasm32 standard library.
fn debian_rustc() -> Option<String> {
    if !Path::new("/usr/bin/cargo").is_file() {
        return None;
    }
    let sysroot = output(Command::new("/usr/bin/rustc").args(["--print", "sysroot"]))?;
    let std = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib");
    if !std.is_dir() {
        return None;
    }
    output(Command::new("/usr/bin/rustc").arg("-vV"))
}

fn toml_string(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .context("the target directory path is not UTF-8")?;
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Vendors the functions' locked dependencies with the modern cargo (the
/// one running xtask), once per lockfile.
fn vendor(layout: &Layout) -> Result<PathBuf> {
    let dir = layout.work.join("vendor");
    let lock =
        fs::read(layout.functions.join("Cargo.lock")).context("functions/Cargo.lock is missing")?;
    let lock_hash = hex::encode(Sha256::digest(&lock));
    let stamp = layout.work.join("vendor.lock-sha256");
    if dir.is_dir() && fs::read_to_string(&stamp).ok().as_deref() == Some(lock_hash.as_str()) {
        return Ok(dir);
    }
    eprintln!(
        "vendoring the functions' dependencies into {}",
        dir.display()
    );
    fs::create_dir_all(&layout.work)?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    clean_env(&mut cmd)
        .current_dir(&layout.functions)
        .args(["vendor", "--locked", "--versioned-dirs", "--quiet"])
        .arg(&dir)
        .stdout(Stdio::null());
    run(&mut cmd).context(
        "vendoring needs the modern cargo (rustup) and access to crates.io or its cache",
    )?;
    fs::write(&stamp, lock_hash)?;
    Ok(dir)
}
