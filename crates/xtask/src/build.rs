//! `cargo xtask build-functions`: every guest function to
//! `<target dir>/wasm/<name>.wasm`, skipped when the stamp says the outputs
//! are current.

use std::collections::BTreeMap;
use std::fs;
use std::time::Instant;

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use crate::c::Clang;
use crate::layout::{Layout, find_functions};
use crate::rust::RustToolchain;
use crate::stamp::{STAMP, cached, inputs_hash};

pub(crate) fn build_functions(force: bool) -> Result<()> {
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
