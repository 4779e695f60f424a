//! Unit tests of the function scan and the build stamp.

use std::env;
use std::fs;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::layout::find_functions;
use crate::stamp::{STAMP, cached};

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
