//! `cargo xtask js-engine [--check]`: builds aifn's JavaScript engine
//! (QuickJS-ng + `crates/runtime/js/driver.c`) from pinned source with
//! clang and wasi-libc, reproducibly. The result is committed with its
//! sha256 and embedded in the runtime; `--check` (run by the test command)
//! rebuilds it and fails when the bytes differ.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest, Sha256};

use crate::layout::Layout;
use crate::tools::{apt_install, clean_env, find_in_path, output, run};

const PACKAGES: &[&str] = &[
    "clang-14",
    "lld-14",
    "wasi-libc",
    "libclang-rt-14-dev-wasm32",
    "binaryen",
];

/// The compiler the committed engine was built with: another clang makes
/// other bytes, so the check names the one it needs.
const CLANG: &str = "clang-14";
const WASM_LD: &str = "wasm-ld-14";
/// clang runs `wasm-opt` (at its own -O level) on the linked module whenever one is on PATH
/// (and silently skips it when none is): the engine is built with Debian
/// 12's binaryen (version 108), so the build requires it.
const WASM_OPT: &str = "wasm-opt";

/// The upstream files compiled (quickjs.c through the driver, which
/// includes it) and the headers they need.
const UNITS: &[&str] = &["libregexp.c", "libunicode.c", "dtoa.c"];
const FILES: &[&str] = &[
    "quickjs.c",
    "quickjs.h",
    "quickjs-atom.h",
    "quickjs-opcode.h",
    "quickjs-c-atomics.h",
    "libregexp.c",
    "libregexp.h",
    "libregexp-opcode.h",
    "libunicode.c",
    "libunicode.h",
    "libunicode-table.h",
    "dtoa.c",
    "dtoa.h",
    "cutils.h",
    "list.h",
    "builtin-array-fromasync.h",
    "builtin-iterator-zip.h",
    "builtin-iterator-zip-keyed.h",
];

/// The edits to quickjs.c, each an anchor and what replaces it (see
/// crates/runtime/js/EDITS).
const EDITS: &[(&str, &str)] = &[
    (
        "static JSValue JS_ThrowStackOverflow(JSContext *ctx)\n{\n",
        "static JSValue JS_ThrowStackOverflow(JSContext *ctx)\n{\n    AIFN_ON_STACK_OVERFLOW();\n",
    ),
    (
        "static void update_stack_limit(JSRuntime *rt)\n{\n#if defined(__wasi__)\n",
        "static void update_stack_limit(JSRuntime *rt)\n{\n#if defined(__wasi__) && !defined(AIFN_ENGINE)\n",
    ),
];

const CFLAGS: &[&str] = &[
    "--target=wasm32-wasi",
    // Speed over size: -Oz made calls ~1.3x slower for a 1.7x smaller module,
    // and the module is compiled once per host.
    "-O2",
    "-D_GNU_SOURCE",
    "-Wno-everything",
];
const LDFLAGS: &[&str] = &[
    "-nostartfiles",
    "-Wl,--no-entry",
    "-Wl,-z,stack-size=1048576",
    // The shadow stack below the data: an overflow traps at address 0
    // instead of overwriting the heap.
    "-Wl,--stack-first",
    "-Wl,--strip-all",
    "-lwasi-emulated-signal",
    "-lwasi-emulated-process-clocks",
];

pub(crate) fn js_engine(check: bool) -> Result<()> {
    let layout = Layout::discover()?;
    let dir = layout.root.join("crates/runtime/js");
    let committed = dir.join("quickjs-aifn.wasm");
    let pinned_hash = fs::read_to_string(dir.join("quickjs-aifn.wasm.sha256"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let built = build(&layout, &dir)?;
    let hash = hex::encode(Sha256::digest(&built));
    if !check {
        fs::write(&committed, &built)?;
        fs::write(dir.join("quickjs-aifn.wasm.sha256"), format!("{hash}\n"))?;
        eprintln!("js engine: {} bytes, sha256 {hash}", built.len());
        return Ok(());
    }
    let have = fs::read(&committed).with_context(|| format!("reading {}", committed.display()))?;
    let have_hash = hex::encode(Sha256::digest(&have));
    if have_hash != pinned_hash {
        bail!(
            "{} has sha256 {have_hash} but quickjs-aifn.wasm.sha256 says {pinned_hash}",
            committed.display()
        );
    }
    if hash != pinned_hash {
        bail!(
            "the JavaScript engine rebuilt from source has sha256 {hash}, but the committed one is \
             {pinned_hash}: the source, the driver, the flags or the compiler ({CLANG}, wasi-libc and \
             binaryen's {WASM_OPT} from Debian 12) changed. Review the change, then run `cargo xtask js-engine` and commit both files."
        );
    }
    eprintln!(
        "js engine: rebuilt from source, {} bytes, sha256 {hash} as committed",
        built.len()
    );
    Ok(())
}

fn tools() -> Result<(PathBuf, PathBuf)> {
    let probe = || {
        find_in_path(WASM_OPT)?;
        Some((find_in_path(CLANG)?, find_in_path(WASM_LD)?))
    };
    let sysroot_ok = || Path::new("/usr/lib/wasm32-wasi/libc.a").is_file();
    if let Some(t) = probe().filter(|_| sysroot_ok()) {
        return Ok(t);
    }
    if apt_install(PACKAGES)?
        && let Some(t) = probe().filter(|_| sysroot_ok())
    {
        return Ok(t);
    }
    bail!(
        "the JavaScript engine needs {CLANG}, {WASM_LD}, {WASM_OPT} and Debian's wasi-libc: \
         apt-get install -y {} (as root)",
        PACKAGES.join(" ")
    )
}

/// The pinned upstream source folder, fetched by cargo with its checksum.
fn upstream(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("source/Cargo.toml");
    let mut cmd = Command::new("cargo");
    clean_env(&mut cmd).args([
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--manifest-path",
    ]);
    let meta = output(cmd.arg(&manifest)).with_context(|| {
        format!(
            "cargo metadata --locked --manifest-path {} failed",
            manifest.display()
        )
    })?;
    // `"manifest_path":"…/rquickjs-sys-0.14.0/Cargo.toml"`, without a JSON parser.
    let key = "rquickjs-sys-0.14.0/Cargo.toml\"";
    let end = meta
        .find(key)
        .context("rquickjs-sys 0.14.0 is not in the engine source's metadata")?;
    let start = meta[..end].rfind('"').context("malformed cargo metadata")? + 1;
    let path = PathBuf::from(&meta[start..end + key.len() - 1]);
    Ok(path.parent().context("manifest path")?.join("quickjs"))
}

fn build(layout: &Layout, dir: &Path) -> Result<Vec<u8>> {
    let (cc, ld) = tools()?;
    let src = upstream(dir)?;
    let work = layout.work.join("js-engine");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    for f in FILES {
        fs::copy(src.join(f), work.join(f)).with_context(|| format!("copying {f}"))?;
    }
    let mut quickjs = fs::read_to_string(work.join("quickjs.c"))?;
    for (i, (anchor, replacement)) in EDITS.iter().enumerate() {
        if quickjs.matches(anchor).count() != 1 {
            bail!(
                "edit {} to quickjs.c no longer applies exactly once: review crates/runtime/js/EDITS",
                i + 1
            );
        }
        quickjs = quickjs.replacen(anchor, replacement, 1);
    }
    fs::write(work.join("quickjs.c"), quickjs)?;
    fs::copy(dir.join("driver.c"), work.join("driver.c"))?;
    // Relative paths and a fixed prefix: the bytes do not depend on where
    // the repository or cargo's registry is.
    let prefix = format!("-ffile-prefix-map={}=quickjs", work.display());
    let mut objects = Vec::new();
    for unit in std::iter::once("driver.c").chain(UNITS.iter().copied()) {
        let obj = unit.replace(".c", ".o");
        run(Command::new(&cc)
            .current_dir(&work)
            .args(CFLAGS)
            .arg(&prefix)
            .args(["-c", unit, "-o", &obj]))?;
        objects.push(obj);
    }
    run(Command::new(&cc)
        .current_dir(&work)
        .args(CFLAGS)
        .arg(format!("-fuse-ld={}", ld.display()))
        .args(&objects)
        .args(LDFLAGS)
        .args(["-o", "engine.wasm"]))?;
    Ok(fs::read(work.join("engine.wasm"))?)
}
