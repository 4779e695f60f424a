//! Compiled-module caches: memory hits, disk round trips across runtimes,
//! and refusal of tampered or planted cache files.

use std::fs;
use std::path::Path;

use crate::*;

fn disk_runtime(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn cache_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in fs::read_dir(dir).expect("dir").flatten() {
        if sub.path().is_dir() {
            for f in fs::read_dir(sub.path()).expect("subdir").flatten() {
                out.push(f.path());
            }
        }
    }
    out
}

#[test]
fn a_second_load_is_a_memory_hit() {
    let rt = runtime();
    let bytes = wat::parse_str(echo_with("")).expect("wat");
    let a = rt.load(&bytes).expect("load");
    let b = rt.load(&bytes).expect("load");
    assert_eq!(a.sha256(), b.sha256());
    let s = rt.stats();
    assert_eq!((s.compiles, s.memory_hits, s.cached_modules), (1, 1, 1));
}

#[test]
fn the_memory_cache_is_bounded() {
    let rt = Runtime::new(RuntimeConfig {
        memory_cache_entries: 2,
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("rt");
    for i in 0..5 {
        let m = module("", &format!("(i32.const {i}) (drop) (i32.const 0)"));
        rt.load(&wat::parse_str(m).expect("wat")).expect("load");
    }
    assert_eq!(rt.stats().cached_modules, 2);
}

#[test]
fn a_restart_loads_from_disk_without_compiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wat::parse_str(echo_with("")).expect("wat");
    let report = {
        let rt = disk_runtime(dir.path());
        let m = rt.load(&bytes).expect("load");
        assert_eq!(rt.stats().compiles, 1);
        m.report().clone()
    };
    assert_eq!(cache_files(dir.path()).len(), 1);
    let rt = disk_runtime(dir.path());
    let m = rt.load(&bytes).expect("load");
    let s = rt.stats();
    assert_eq!((s.compiles, s.disk_hits), (0, 1));
    assert_eq!(m.report(), &report);
    let e = rt.invoke(
        &m,
        &Invocation::new(br#"{"a":1}"#, &Context::local(), Limits::default()),
    );
    assert_eq!(output(&e), serde_json::json!({"a": 1}));
}

#[test]
fn a_tampered_cache_file_is_ignored_and_recompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wat::parse_str(echo_with("")).expect("wat");
    disk_runtime(dir.path()).load(&bytes).expect("load");
    let file = cache_files(dir.path()).pop().expect("one cache file");
    let mut data = fs::read(&file).expect("read");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&file, &data).expect("write");
    let rt = disk_runtime(dir.path());
    let m = rt.load(&bytes).expect("still loads");
    assert_eq!((rt.stats().compiles, rt.stats().disk_hits), (1, 0));
    assert_kind(
        &rt.invoke(
            &m,
            &Invocation::new(b"{}", &Context::local(), Limits::default()),
        ),
        OutcomeKind::Ok,
    );
}

#[test]
fn a_planted_file_for_another_module_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = wat::parse_str(echo_with("")).expect("wat");
    let b = wat::parse_str(module("", "(i32.const 0)")).expect("wat");
    let rt = disk_runtime(dir.path());
    let ma = rt.load(&a).expect("a");
    let mb = rt.load(&b).expect("b");
    drop(rt);
    // Copy a's valid entry over b's name: its MAC binds it to a's hash.
    let files = cache_files(dir.path());
    let fa = files
        .iter()
        .find(|p| p.to_string_lossy().contains(ma.sha256()))
        .expect("a file");
    let fb = files
        .iter()
        .find(|p| p.to_string_lossy().contains(mb.sha256()))
        .expect("b file");
    fs::copy(fa, fb).expect("copy");
    let rt = disk_runtime(dir.path());
    let m = rt.load(&b).expect("b loads");
    assert_eq!(m.sha256(), mb.sha256());
    assert_eq!(rt.stats().compiles, 1);
    assert_eq!(
        output(&rt.invoke(
            &m,
            &Invocation::new(b"[5]", &Context::local(), Limits::default())
        )),
        serde_json::json!({"ok": true})
    );
}

/// Loads once to store an entry, cuts the entry to its magic and `n` more
/// bytes, and checks that a new runtime ignores it and compiles again.
fn truncated_entry_is_recompiled(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wat::parse_str(echo_with("")).expect("wat");
    disk_runtime(dir.path()).load(&bytes).expect("load");
    let file = cache_files(dir.path()).pop().expect("one cache file");
    let mut data = fs::read(&file).expect("read");
    data.truncate(12 + n);
    fs::write(&file, &data).expect("write");
    let rt = disk_runtime(dir.path());
    let m = rt.load(&bytes).expect("still loads");
    assert_eq!((rt.stats().compiles, rt.stats().disk_hits), (1, 0), "{n}");
    assert_eq!(
        output(&rt.invoke(
            &m,
            &Invocation::new(b"[3]", &Context::local(), Limits::default())
        )),
        serde_json::json!([3])
    );
}

#[test]
fn truncated_cache_files_are_ignored_and_recompiled() {
    // Shorter than the tag, inside the tag, and the tag with no body.
    for n in [0, 10, 30, 36] {
        truncated_entry_is_recompiled(n);
    }
}

fn key_path(dir: &Path) -> std::path::PathBuf {
    dir.join("cache.key")
}

#[test]
fn each_cache_gets_its_own_random_32_byte_key() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    drop((disk_runtime(a.path()), disk_runtime(b.path())));
    let ka = fs::read(key_path(a.path())).expect("key a");
    let kb = fs::read(key_path(b.path())).expect("key b");
    assert_eq!((ka.len(), kb.len()), (32, 32));
    assert_ne!(ka, kb);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(key_path(a.path()))
            .expect("meta")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
    // A restart keeps the key.
    drop(disk_runtime(a.path()));
    assert_eq!(fs::read(key_path(a.path())).expect("key a"), ka);
}

fn open_error(dir: &Path) -> (std::path::PathBuf, std::io::ErrorKind) {
    let err = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .expect_err("refused");
    match err {
        aifn_runtime::RuntimeError::Cache { path, source } => (path, source.kind()),
        other => panic!("not a cache error: {other}"),
    }
}

#[test]
fn a_key_of_the_wrong_length_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(key_path(dir.path()), [7u8; 32]).expect("write");
    drop(disk_runtime(dir.path()));
    fs::write(key_path(dir.path()), [7u8; 31]).expect("write");
    assert_eq!(
        open_error(dir.path()),
        (key_path(dir.path()), std::io::ErrorKind::InvalidData)
    );
}

#[cfg(unix)]
#[test]
fn a_dangling_key_symlink_is_refused_not_retried_forever() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(dir.path().join("gone"), key_path(dir.path())).expect("symlink");
    assert_eq!(
        open_error(dir.path()),
        (key_path(dir.path()), std::io::ErrorKind::NotFound)
    );
}

#[test]
fn a_key_that_cannot_be_created_is_refused_with_the_reason() {
    // Nothing may be created at the root of sysfs, not even by root.
    let sys = Path::new("/sys");
    if !sys.is_dir() {
        return;
    }
    let (path, kind) = open_error(sys);
    assert_eq!(path, key_path(sys));
    assert_ne!(kind, std::io::ErrorKind::NotFound, "the open error itself");
}
