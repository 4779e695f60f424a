//! Build automation for aifn: `cargo xtask build-functions` and
//! `cargo xtask test` (the whole test suite, as CI runs it).
//!
//! Builds the example guest functions under `functions/` to
//! `<target dir>/wasm/<name>.wasm`:
//!
//! * Rust functions (workspace members with a `Cargo.toml`) with rustup's
//!   toolchain when its `wasm32-unknown-unknown` target is installed, and
//!   otherwise with Debian's rustc 1.63 + cargo 1.65 (installed with
//!   apt-get when missing and running as root). Debian's cargo cannot read
//!   the crates.io index here, so the locked dependencies are vendored
//!   with the modern cargo first (see /work/shared/guest-toolchain.md).
//! * C functions (a folder with `<name>.c` and no `Cargo.toml`) with clang
//!   and wasm-ld, freestanding (`-nostdlib`).
//!
//! A stamp in `<target dir>/wasm/` holds a sha256 over every input (the
//! SDK, the functions, the lockfile, the toolchain versions and this
//! program); a run whose inputs are unchanged and whose outputs are intact
//! builds nothing.

use std::collections::BTreeMap;
use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest, Sha256};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_PACKAGES: &[&str] = &[
    "rustc",
    "cargo",
    "libstd-rust-dev-wasm32",
    "lld-14",
    "clang-14",
];
const C_PACKAGES: &[&str] = &["clang-14", "lld-14"];
const STAMP: &str = ".build-stamp";

const USAGE: &str = "usage: cargo xtask build-functions [--force]
       cargo xtask test [--no-fuzz]

  build-functions   build functions/* to <target dir>/wasm/<name>.wasm
                    (cached: unchanged inputs build nothing)
      --force       rebuild even when the cache says the outputs are current
  test              the whole suite: build the functions, run every test of
                    the workspace, compile the benchmarks, run the guest SDK's
                    and the functions' host tests, and a short fuzz smoke run
      --no-fuzz     skip the fuzz smoke run";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-functions") => match &args[1..] {
            [] => build_functions(false),
            [f] if f == "--force" => build_functions(true),
            _ => usage_error(),
        },
        Some("test") => match &args[1..] {
            [] => test(true),
            [f] if f == "--no-fuzz" => test(false),
            _ => usage_error(),
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => usage_error(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error() -> Result<()> {
    bail!("{USAGE}")
}

/// Seconds each fuzz target runs in the smoke run of `cargo xtask test`.
const FUZZ_SMOKE_SECONDS: &str = "15";

/// The whole test suite. Each step prints its duration; the first failure
/// stops the run.
fn test(fuzz: bool) -> Result<()> {
    let started = Instant::now();
    let layout = Layout::discover()?;
    let root = &layout.root;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let step = |name: &str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        let t = Instant::now();
        eprintln!("==> {name}");
        f().with_context(|| format!("step failed: {name}"))?;
        eprintln!(
            "==> {name}: ok in {:.0} s (total {:.0} s)",
            t.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    };
    let run = |args: &[&str], dir: &Path| -> Result<()> {
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(dir)
            .status()
            .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
        if !status.success() {
            bail!("cargo {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    step("build the example functions from source", &mut || {
        build_functions(false)
    })?;
    step("workspace tests", &mut || {
        run(&["test", "--workspace", "--locked"], root)
    })?;
    step("benchmarks compile", &mut || {
        run(
            &[
                "test",
                "-p",
                "aifn-benches",
                "--benches",
                "--no-run",
                "--locked",
            ],
            root,
        )
    })?;
    step("guest SDK tests on the host", &mut || {
        run(
            &[
                "test",
                "--locked",
                "--manifest-path",
                "guest-sdk/Cargo.toml",
            ],
            root,
        )
    })?;
    step("function unit tests on the host", &mut || {
        run(
            &[
                "test",
                "--locked",
                "--manifest-path",
                "functions/Cargo.toml",
            ],
            root,
        )
    })?;
    let script = root.join("fuzz/run.sh");
    if fuzz && script.exists() {
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
        })?;
    }
    eprintln!(
        "==> all tests passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Where things are.
struct Layout {
    root: PathBuf,
    functions: PathBuf,
    sdk: PathBuf,
    /// `<target>/wasm`: the results.
    out: PathBuf,
    /// `<target>/guest`: vendored sources and the guest cargo target dirs.
    work: PathBuf,
}

impl Layout {
    fn discover() -> Result<Layout> {
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
struct Functions {
    /// Rust workspace members (folder name = package name).
    rust: Vec<String>,
    /// C functions: folder name and its `.c` files.
    c: Vec<(String, Vec<PathBuf>)>,
}

fn find_functions(dir: &Path) -> Result<Functions> {
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

fn build_functions(force: bool) -> Result<()> {
    let started = Instant::now();
    let layout = Layout::discover()?;
    let funcs = find_functions(&layout.functions)?;
    let rust = if funcs.rust.is_empty() {
        None
    } else {
        Some(RustToolchain::find()?)
    };
    let clang = if funcs.c.is_empty() {
        None
    } else {
        Some(Clang::find()?)
    };

    let mut names: Vec<String> = funcs.rust.clone();
    names.extend(funcs.c.iter().map(|(n, _)| n.clone()));
    names.sort();

    let key = inputs_hash(&layout, rust.as_ref(), clang.as_ref())?;
    let stamp_path = layout.out.join(STAMP);
    if !force && let Some(sizes) = cached(&stamp_path, &key, &layout.out, &names) {
        println!("guest functions are up to date in {}", layout.out.display());
        report(&sizes);
        return Ok(());
    }
    // The stamp only comes back once every output is written.
    let _ = fs::remove_file(&stamp_path);
    fs::create_dir_all(&layout.out)?;

    if let Some(tc) = &rust {
        eprintln!(
            "building {} Rust function(s) with {}",
            funcs.rust.len(),
            tc.describe()
        );
        let built = tc.build(&layout, &funcs.rust)?;
        for name in &funcs.rust {
            let from = built.join(format!("{name}.wasm"));
            fs::copy(&from, layout.out.join(format!("{name}.wasm")))
                .with_context(|| format!("copying {}", from.display()))?;
        }
    }
    if let Some(cc) = &clang {
        eprintln!(
            "building {} C function(s) with {}",
            funcs.c.len(),
            cc.describe()
        );
        for (name, sources) in &funcs.c {
            cc.build(sources, &layout.out.join(format!("{name}.wasm")))?;
        }
    }

    let mut sizes = BTreeMap::new();
    let mut stamp = format!("inputs {key}\n");
    for name in &names {
        let bytes = fs::read(layout.out.join(format!("{name}.wasm")))?;
        stamp.push_str(&format!("{name} {}\n", hex::encode(Sha256::digest(&bytes))));
        sizes.insert(name.clone(), bytes.len() as u64);
    }
    fs::write(&stamp_path, stamp)?;
    println!(
        "built {} guest function(s) into {} in {:.1} s",
        names.len(),
        layout.out.display(),
        started.elapsed().as_secs_f64()
    );
    report(&sizes);
    Ok(())
}

fn report(sizes: &BTreeMap<String, u64>) {
    for (name, size) in sizes {
        println!(
            "  {:<28} {:>8} bytes  ({:.1} KiB)",
            format!("{name}.wasm"),
            size,
            *size as f64 / 1024.0
        );
    }
}

/// The outputs' sizes when the stamp matches `key` and every output is
/// present with the recorded hash.
fn cached(stamp: &Path, key: &str, out: &Path, names: &[String]) -> Option<BTreeMap<String, u64>> {
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
fn inputs_hash(
    layout: &Layout,
    rust: Option<&RustToolchain>,
    clang: Option<&Clang>,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"aifn-xtask-build-functions-v1\0");
    // This program: a change to how things are built invalidates the cache.
    h.update(include_str!("main.rs").as_bytes());
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
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
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

// ---------------------------------------------------------------------------
// Tools

/// Runs a command with inherited output; fails with the command line.
fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

/// stdout of a command that succeeded, or `None`.
fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An executable named `name` on PATH.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

/// Installs Debian packages when running as root with apt-get available.
/// Returns false when that is not possible.
fn apt_install(packages: &[&str]) -> Result<bool> {
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
fn clean_env(cmd: &mut Command) -> &mut Command {
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

// ---------------------------------------------------------------------------
// Rust

enum RustKind {
    /// rustup's toolchain with its wasm32 target installed: plain cargo.
    Rustup,
    /// Debian's rustc/cargo at /usr/bin, dependencies vendored.
    Debian,
}

struct RustToolchain {
    kind: RustKind,
    /// `rustc -vV`.
    version: String,
}

impl RustToolchain {
    fn find() -> Result<RustToolchain> {
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

    fn describe(&self) -> String {
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
    fn build(&self, layout: &Layout, members: &[String]) -> Result<PathBuf> {
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

// ---------------------------------------------------------------------------
// C

struct Clang {
    cc: PathBuf,
    /// Absolute path of wasm-ld, passed with -fuse-ld (Debian only has it
    /// versioned, `wasm-ld-14`, which clang does not look for).
    ld: PathBuf,
    /// `clang --version`, first line.
    version: String,
}

impl Clang {
    fn find() -> Result<Clang> {
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

    fn describe(&self) -> String {
        format!("{} + {}", self.version, self.ld.display())
    }

    fn build(&self, sources: &[PathBuf], out: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = env::temp_dir().join(format!("aifn-xtask-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn finds_rust_and_c_functions() {
        let dir = scratch("find");
        for d in ["b_rust/src", "a_c", "target/x", ".cargo", "empty"] {
            fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        fs::write(dir.join("b_rust/Cargo.toml"), "").expect("write");
        fs::write(dir.join("a_c/a_c.c"), "").expect("write");
        fs::write(dir.join("a_c/notes.md"), "").expect("write");
        let f = find_functions(&dir).expect("scan");
        assert_eq!(f.rust, ["b_rust"]);
        assert_eq!(f.c.len(), 1);
        assert_eq!(f.c[0].0, "a_c");
        assert_eq!(f.c[0].1, [dir.join("a_c/a_c.c")]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stamp_matches_only_unchanged_outputs() {
        let dir = scratch("stamp");
        let names = vec!["f".to_owned()];
        fs::write(dir.join("f.wasm"), b"\0asm").expect("write");
        let stamp = dir.join(STAMP);
        fs::write(
            &stamp,
            format!("inputs k1\nf {}\n", hex::encode(Sha256::digest(b"\0asm"))),
        )
        .expect("write");
        assert_eq!(cached(&stamp, "k1", &dir, &names).map(|s| s["f"]), Some(4));
        assert!(cached(&stamp, "k2", &dir, &names).is_none(), "other inputs");
        fs::write(dir.join("f.wasm"), b"\0asm\x01").expect("write");
        assert!(
            cached(&stamp, "k1", &dir, &names).is_none(),
            "output changed"
        );
        fs::remove_file(dir.join("f.wasm")).expect("rm");
        assert!(
            cached(&stamp, "k1", &dir, &names).is_none(),
            "output missing"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
