//! Compiled-module caches: in memory (least recently used dropped) and on
//! disk, keyed by the module's sha256 and the engine's configuration.
//!
//! Disk entries are authenticated with HMAC-SHA256 under a per-cache key
//! before they are deserialized, so only bytes this host compiled itself
//! are ever turned into executable code; a corrupted or planted file is
//! ignored and the module is compiled again.

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aifn_types::{Limits, ModuleReport};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::{Engine, Module};

use crate::RuntimeError;

const MAGIC: &[u8; 12] = b"AIFNCACHE01\n";
const TAG_LEN: usize = 32;

/// Entries with the logical time of their last use, and the clock.
type Lru<V> = (u64, HashMap<[u8; 32], (V, u64)>);

/// Least-recently-used map from module sha256 to a loaded module.
pub(crate) struct MemoryCache<V> {
    entries: Mutex<Lru<V>>,
    capacity: usize,
}

impl<V: Clone> MemoryCache<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        MemoryCache {
            entries: Mutex::new((0, HashMap::new())),
            capacity,
        }
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<V> {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (clock, map) = &mut *guard;
        *clock += 1;
        let now = *clock;
        map.get_mut(key).map(|(v, used)| {
            *used = now;
            v.clone()
        })
    }

    pub(crate) fn insert(&self, key: [u8; 32], value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (clock, map) = &mut *guard;
        *clock += 1;
        if map.len() >= self.capacity && !map.contains_key(&key) {
            // Linear scan: eviction only happens on insert, after a compile
            // or a disk load that costs far more.
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(key, (value, *clock));
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .len()
    }
}

/// What is stored beside the compiled code.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    pub(crate) report: ModuleReport,
    pub(crate) has_initialize: bool,
}

pub(crate) struct DiskCache {
    dir: PathBuf,
    key: [u8; 32],
}

impl DiskCache {
    /// Opens `root`, creating it and its key. Entries live under a
    /// directory named after the engine configuration and the static caps,
    /// so a changed configuration never loads code validated under another.
    pub(crate) fn open(
        root: &Path,
        engine: &Engine,
        limits: &Limits,
    ) -> Result<DiskCache, RuntimeError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RuntimeError::Cache { path, source }
        };
        fs::create_dir_all(root).map_err(io(root))?;
        let key_path = root.join("cache.key");
        let key = read_or_create_key(&key_path).map_err(io(&key_path))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        (
            limits.module_bytes,
            limits.functions,
            limits.function_body_bytes,
            limits.locals,
        )
            .hash(&mut h);
        (
            limits.memory_bytes,
            limits.table_elements,
            limits.stack_bytes,
        )
            .hash(&mut h);
        let dir = root.join(format!("{:016x}", h.finish()));
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(DiskCache { dir, key })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.cwasm"))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"))
    }

    /// Loads a module this host compiled earlier, or `None` when there is
    /// no valid entry (missing, corrupt, planted, or for another module).
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<(Module, Meta)> {
        let bytes = fs::read(self.path(sha256)).ok()?;
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        // Every length comes from the file: split only where it is there.
        let (tag, body) = rest.split_at_checked(TAG_LEN)?;
        let mut mac = self.mac();
        mac.update(sha256.as_bytes());
        mac.update(body);
        mac.verify_slice(tag).ok()?;
        let (meta_len, body) = body.split_first_chunk::<4>()?;
        let meta_len = usize::try_from(u32::from_le_bytes(*meta_len)).ok()?;
        let (meta_bytes, artifact) = body.split_at_checked(meta_len)?;
        let meta: Meta = serde_json::from_slice(meta_bytes).ok()?;
        if meta.report.sha256 != sha256 {
            return None;
        }
        let module = deserialize(engine, artifact)?;
        Some((module, meta))
    }

    /// Stores a compiled module; failures only cost a later recompile.
    pub(crate) fn store(&self, sha256: &str, module: &Module, meta: &Meta) {
        let result = (|| -> Result<(), Box<dyn std::error::Error>> {
            let artifact = module.serialize()?;
            let meta_bytes = serde_json::to_vec(meta)?;
            let mut body = Vec::with_capacity(4 + meta_bytes.len() + artifact.len());
            body.extend_from_slice(&u32::try_from(meta_bytes.len())?.to_le_bytes());
            body.extend_from_slice(&meta_bytes);
            body.extend_from_slice(&artifact);
            let mut mac = self.mac();
            mac.update(sha256.as_bytes());
            mac.update(&body);
            let tag = mac.finalize().into_bytes();
            let final_path = self.path(sha256);
            let tmp = final_path.with_extension(format!("tmp{}", std::process::id()));
            let mut f = fs::File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&tag)?;
            f.write_all(&body)?;
            f.sync_all()?;
            fs::rename(&tmp, &final_path)?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(sha256, error = %e, "could not write the compiled-module cache");
        }
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> Option<Module> {
    // SAFETY: `Module::deserialize` trusts its input to be wasmtime's own
    // output. These bytes passed an HMAC check under a key only this host
    // holds, so they are exactly what `Module::serialize` wrote here; and
    // wasmtime itself refuses artifacts from another version or config.
    unsafe { Module::deserialize(engine, artifact) }.ok()
}

/// Reads the cache's key, creating it first if it does not exist. Create
/// first, read on `AlreadyExists`: one path for a new key, an existing one
/// and another process's racing one, and a dangling symlink is an error,
/// not a retry forever.
fn read_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(std::io::Error::other)?;
            f.write_all(&k)?;
            f.sync_all()?;
            Ok(k)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            <[u8; 32]>::try_from(fs::read(path)?).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "cache key must be 32 bytes",
                )
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryCache;

    enum Op {
        Insert(u8),
        Get(u8),
    }
    use Op::{Get, Insert};

    /// Runs `ops` on fresh caches of capacity 2 (each with its own hash
    /// order, so a tie in the recency clock would show) and returns which
    /// of keys 1..=3 are still cached.
    fn kept_after(ops: &[Op]) -> Vec<u8> {
        let mut first = None;
        for _ in 0..20 {
            let c = MemoryCache::new(2);
            for op in ops {
                match op {
                    Insert(k) => c.insert([*k; 32], *k),
                    Get(k) => assert_eq!(c.get(&[*k; 32]), Some(*k)),
                }
            }
            assert!(c.len() <= 2);
            let kept: Vec<u8> = (1..=3).filter(|k| c.get(&[*k; 32]).is_some()).collect();
            assert_eq!(*first.get_or_insert(kept.clone()), kept, "deterministic");
        }
        first.unwrap_or_default()
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted_at_capacity() {
        // The oldest insert goes first; a hit makes an entry the newest.
        assert_eq!(kept_after(&[Insert(1), Insert(2), Insert(3)]), [2, 3]);
        assert_eq!(
            kept_after(&[Insert(1), Insert(2), Get(1), Insert(3)]),
            [1, 3]
        );
        // Below capacity, and inserting a key again, evicts nothing.
        assert_eq!(kept_after(&[Insert(1), Insert(2), Insert(2)]), [1, 2]);
        assert_eq!(kept_after(&[Insert(1)]), [1]);
    }

    #[test]
    fn a_cache_of_capacity_zero_keeps_nothing() {
        let none = MemoryCache::new(0);
        none.insert([1; 32], 1u8);
        assert_eq!((none.len(), none.get(&[1; 32])), (0, None));
    }

    /// Code compiled with epoch checks (the engine before fuel slices) has
    /// its own cache directory, and wasmtime refuses it besides: an
    /// upgraded host recompiles instead of running code that never yields.
    #[test]
    fn artifacts_of_the_epoch_engine_are_never_loaded() {
        use super::{DiskCache, deserialize};
        use crate::{RuntimeConfig, engine};
        let cfg = RuntimeConfig::default();
        let today = engine::build(&cfg).expect("engine");
        let mut old = engine::config(&cfg).expect("config");
        old.epoch_interruption(true);
        let old = wasmtime::Engine::new(&old).expect("epoch engine");
        let root = tempfile::tempdir().expect("tempdir");
        let limits = aifn_types::Limits::default();
        let a = DiskCache::open(root.path(), &old, &limits).expect("open");
        let b = DiskCache::open(root.path(), &today, &limits).expect("open");
        assert_ne!(a.dir, b.dir);
        let wat = r#"(module (func (export "f")))"#;
        let artifact = wasmtime::Module::new(&old, wat)
            .and_then(|m| m.serialize())
            .expect("compiles");
        assert!(deserialize(&old, &artifact).is_some());
        assert!(deserialize(&today, &artifact).is_none());
    }
}
