//! C guest functions: clang and wasm-ld, freestanding (`-nostdlib`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::tools::{apt_install, find_in_path, output, run};

const C_PACKAGES: &[&str] = &["clang-14", "lld-14"];

pub(crate) struct Clang {
    cc: PathBuf,
    /// Absolute path of wasm-ld, passed with -fuse-ld (Debian only has it
    /// versioned, `wasm-ld-14`, which clang does not look for).
    ld: PathBuf,
    /// `clang --version`, first line.
    pub(crate) version: String,
}

impl Clang {
    pub(crate) fn find() -> Result<Clang> {
        if let Some(c) = Clang::probe() {
            return Ok(c);
        }
        if apt_install(C_PACKAGES)?
            && let Some(c) = Clang::probe()
        {
            return Ok(c);
        }
        bail!(
            "no clang with wasm-ld found for the C functions. Install clang and lld, e.g.\n  \
             apt-get install -y {}   (Debian 12 / Ubuntu, as root)\n  \
             brew install llvm lld   (macOS)",
            C_PACKAGES.join(" ")
        )
    }

    fn probe() -> Option<Clang> {
        let versions = ["", "-19", "-18", "-17", "-16", "-15", "-14"];
        let cc = versions
            .iter()
            .find_map(|v| find_in_path(&format!("clang{v}")))?;
        let ld = versions
            .iter()
            .find_map(|v| find_in_path(&format!("wasm-ld{v}")))?;
        let version = output(Command::new(&cc).arg("--version"))?
            .lines()
            .next()?
            .trim()
            .to_owned();
        Some(Clang { cc, ld, version })
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} + {}", self.version, self.ld.display())
    }

    pub(crate) fn build(&self, sources: &[PathBuf], out: &Path) -> Result<()> {
        run(Command::new(&self.cc)
            .args([
                "--target=wasm32",
                "-O2",
                "-nostdlib",
                "-fno-builtin",
                "-Wall",
                "-Wextra",
            ])
            .args(["-Wl,--no-entry", "-Wl,--strip-all"])
            .arg(format!("-fuse-ld={}", self.ld.display()))
            .arg("-o")
            .arg(out)
            .args(sources))
    }
}
