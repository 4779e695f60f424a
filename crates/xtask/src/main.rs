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
//! `cargo xtask js-engine` builds the JavaScript engine module that the
//! runtime embeds, from pinned source (see crates/runtime/js/).
//!
//! A stamp in `<target dir>/wasm/` holds a sha256 over every input (the
//! SDK, the functions, the lockfile, the toolchain versions and this
//! program); a run whose inputs are unchanged and whose outputs are intact
//! builds nothing.

mod build;
mod c;
mod docrefs;
mod fuzz;
mod js;
mod layout;
mod node;
mod postgres;
mod rust;
mod stamp;
mod test;
#[cfg(test)]
mod tests;
mod tools;

use std::env;
use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask build-functions [--force]
       cargo xtask js-engine [--check]
       cargo xtask test [--no-fuzz]

  build-functions   build functions/* to <target dir>/wasm/<name>.wasm
                    (cached: unchanged inputs build nothing)
      --force       rebuild even when the cache says the outputs are current
  js-engine         build the JavaScript engine (QuickJS-ng + driver) from
                    pinned source into crates/runtime/js/ with its sha256
      --check       rebuild it and fail unless it is the committed one
  test              the whole suite: build the functions, run every test of
                    the workspace (the registry's and the audit log's a second
                    time on PostgreSQL,
                    installed with apt when missing), compile the benchmarks,
                    run the guest SDK's and the functions' host tests, and a
                    short fuzz smoke run
      --no-fuzz     skip the fuzz smoke run";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-functions") => match &args[1..] {
            [] => build::build_functions(false),
            [f] if f == "--force" => build::build_functions(true),
            _ => usage_error(),
        },
        Some("js-engine") => match &args[1..] {
            [] => js::js_engine(false),
            [f] if f == "--check" => js::js_engine(true),
            _ => usage_error(),
        },
        Some("test") => match &args[1..] {
            [] => test::test(true),
            [f] if f == "--no-fuzz" => test::test(false),
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
