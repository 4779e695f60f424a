//! The build stamp: a sha256 over every input of a build, and the hashes
//! of the outputs it wrote.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use crate::c::Clang;
use crate::layout::Layout;
use crate::rust::RustToolchain;

/// The stamp's file name, in `<target dir>/wasm/`.
pub(crate) const STAMP: &str = ".build-stamp";

/// This program's sources: a change to how things are built invalidates
/// the cache.
const SOURCES: &[&str] = &[
    include_str!("main.rs"),
    include_str!("build.rs"),
    include_str!("c.rs"),
    include_str!("fuzz.rs"),
    include_str!("layout.rs"),
    include_str!("rust.rs"),
    include_str!("stamp.rs"),
    include_str!("test.rs"),
    include_str!("tools.rs"),
];

/// The outputs' sizes when the stamp matches `key` and every output is
/// present with the recorded hash.
pub(crate) fn cached(
    stamp: &Path,
    key: &str,
    out: &Path,
    names: &[String],
) -> Option<BTreeMap<String, u64>> {
    let text = fs::read_to_string(stamp).ok()?;
    let mut lines = text.lines();
    if lines.next()? != format!("inputs {key}") {
        return None;
    }
    let recorded: BTreeMap<&str, &str> = lines.filter_map(|l| l.split_once(' ')).collect();
    let mut sizes = BTreeMap::new();
    for name in names {
        let bytes = fs::read(out.join(format!("{name}.wasm"))).ok()?;
        if recorded.get(name.as_str()).copied()
            != Some(hex::encode(Sha256::digest(&bytes)).as_str())
        {
            return None;
        }
        sizes.insert(name.clone(), bytes.len() as u64);
    }
    (recorded.len() == names.len()).then_some(sizes)
}

/// sha256 over everything a build depends on.
pub(crate) fn inputs_hash(
    layout: &Layout,
    rust: Option<&RustToolchain>,
    clang: Option<&Clang>,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"aifn-xtask-build-functions-v1\0");
    for source in SOURCES {
        h.update(source.as_bytes());
    }
    for dir in [&layout.sdk, &layout.functions] {
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        for f in files {
            let rel = f.strip_prefix(&layout.root).unwrap_or(&f);
            h.update(rel.to_string_lossy().as_bytes());
            h.update(b"\0");
            let bytes = fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    if let Some(r) = rust {
        h.update(r.describe().as_bytes());
        h.update(r.version.as_bytes());
    }
    if let Some(c) = clang {
        h.update(c.describe().as_bytes());
        h.update(c.version.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Every file below `dir`, skipping build output (`target/`) and VCS data.
pub(crate) fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name();
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            if name != "target" && name != ".git" {
                walk(&path, files)?;
            }
        } else if ty.is_file() {
            files.push(path);
        }
    }
    Ok(())
}
