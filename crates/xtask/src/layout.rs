//! Where things are: the repository, the target directory, and the guest
//! functions found under `functions/`.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// Where things are.
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
    pub(crate) functions: PathBuf,
    pub(crate) sdk: PathBuf,
    /// `<target>/wasm`: the results.
    pub(crate) out: PathBuf,
    /// `<target>/guest`: vendored sources and the guest cargo target dirs.
    pub(crate) work: PathBuf,
}

impl Layout {
    pub(crate) fn discover() -> Result<Layout> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .context("xtask is not inside the repository")?
            .to_path_buf();
        let target = match env::var_os("CARGO_TARGET_DIR") {
            Some(t) if !t.is_empty() => env::current_dir()?.join(t),
            _ => root.join("target"),
        };
        Ok(Layout {
            functions: root.join("functions"),
            sdk: root.join("guest-sdk"),
            out: target.join("wasm"),
            work: target.join("guest"),
            root,
        })
    }
}

/// The guest functions found under `functions/`.
pub(crate) struct Functions {
    /// Rust workspace members (folder name = package name).
    pub(crate) rust: Vec<String>,
    /// C functions: folder name and its `.c` files.
    pub(crate) c: Vec<(String, Vec<PathBuf>)>,
}

pub(crate) fn find_functions(dir: &Path) -> Result<Functions> {
    let mut rust = Vec::new();
    let mut c = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !path.is_dir() || name.starts_with('.') || name == "target" {
            continue;
        }
        if path.join("Cargo.toml").is_file() {
            rust.push(name);
            continue;
        }
        let mut sources: Vec<PathBuf> = fs::read_dir(&path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension() == Some(OsStr::new("c")))
            .collect();
        sources.sort();
        if !sources.is_empty() {
            c.push((name, sources));
        }
    }
    Ok(Functions { rust, c })
}
