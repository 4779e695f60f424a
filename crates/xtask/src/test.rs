//! `cargo xtask test`: the whole suite, step by step, as CI runs it.

use std::env;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::build::build_functions;
use crate::layout::Layout;

/// One step of the suite: runs its closure under a name, timed; the
/// first failure stops the run.
pub(crate) type Step<'a> = dyn Fn(&str, &mut dyn FnMut() -> Result<()>) -> Result<()> + 'a;

/// The whole test suite. Each step prints its duration; the first failure
/// stops the run.
pub(crate) fn test(fuzz: bool) -> Result<()> {
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
    let run_with = |args: &[&str], dir: &Path, env: &[(&str, &str)]| -> Result<()> {
        let status = Command::new(&cargo)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .status()
            .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
        if !status.success() {
            bail!("cargo {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    let run = |args: &[&str], dir: &Path| run_with(args, dir, &[]);
    step("build the example functions from source", &mut || {
        build_functions(false)
    })?;
    step(
        "the JavaScript engine, rebuilt from pinned source",
        &mut || crate::js::js_engine(true),
    )?;
    step("the TypeScript MCP client (npm ci)", &mut || {
        crate::node::install_mcp_client(root)
    })?;
    step("the console's browser test (chromium, npm ci)", &mut || {
        crate::node::install_console_test(root)
    })?;
    step(
        "PostgreSQL for the registry's, audit's and fleet tests (apt)",
        &mut || crate::postgres::ensure().map(drop),
    )?;
    step("workspace tests", &mut || {
        run(&["test", "--workspace", "--locked"], root)
    })?;
    // The same registry and audit suites again, every fixture on
    // PostgreSQL (the first run used SQLite, plus the PostgreSQL-only
    // tests and the fleet's end-to-end tests).
    step("registry and audit tests on PostgreSQL", &mut || {
        run_with(
            &[
                "test",
                "--workspace",
                "--locked",
                "--test",
                "registry",
                "--test",
                "audit",
            ],
            root,
            &[(crate::postgres::BACKEND_ENV, "postgres")],
        )
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
    if fuzz {
        crate::fuzz::smoke(root, &step)?;
    }
    eprintln!(
        "==> all tests passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
