//! The active-version cache: what the invoke path looks up on every call,
//! so that a call costs no registry query while its entry is fresh.
//!
//! Entries are trusted for a TTL, then checked against the registry
//! again; a decision made through this service forgets the entry at once.
//! Bounded: past its capacity the entry checked longest ago goes.
//!
//! The same cache, keyed by tenant and agent, holds the gateway's policies
//! (and, keyed by the tenant alone, its settings).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use aifn_registry::VersionInfo;
use aifn_runtime::LoadedModule;
use aifn_types::{FunctionName, Limits, TenantId};

/// An active version, ready to run.
pub(crate) struct Active {
    pub(crate) info: VersionInfo,
    pub(crate) module: LoadedModule,
    pub(crate) input: Arc<jsonschema::Validator>,
    pub(crate) output: Option<Arc<jsonschema::Validator>>,
    pub(crate) limits: Limits,
}

impl Active {
    /// Whether `info` names exactly this prepared version (then its module,
    /// schemas and limits are still the ones to use).
    pub(crate) fn is(&self, info: &VersionInfo) -> bool {
        (self.info.version, &self.info.sha256) == (info.version, &info.sha256)
    }
}

/// Tenant, then function: a lookup borrows both names, so the invoke path
/// allocates nothing to find its entry.
type Map<K, V> = HashMap<TenantId, HashMap<K, Entry<V>>>;

struct Entry<V> {
    value: Arc<V>,
    checked: Instant,
}

/// A bounded map from `(tenant, function)` to its prepared active version
/// (or from another key within a tenant to a value).
pub(crate) struct ActiveCache<V = Active, K = FunctionName> {
    map: RwLock<Map<K, V>>,
    capacity: usize,
    ttl: Duration,
}

/// What a lookup found.
pub(crate) enum Lookup<V> {
    /// Checked within the TTL: use it.
    Fresh(Arc<V>),
    /// Past its TTL: check the registry, and reuse it if it is unchanged.
    Stale(Arc<V>),
    /// Not cached.
    Missing,
}

impl<V, K: Eq + Hash + Clone> ActiveCache<V, K> {
    /// A cache of at most `capacity` entries (at least one), each trusted
    /// for `ttl` after it was checked.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> ActiveCache<V, K> {
        ActiveCache {
            map: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    // A panic while the lock was held leaves the map consistent (every
    // write is one insert or remove), so a poisoned lock is still usable.
    fn read(&self) -> RwLockReadGuard<'_, Map<K, V>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Map<K, V>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, tenant: &TenantId, function: &K) -> Lookup<V> {
        match self.read().get(tenant).and_then(|m| m.get(function)) {
            Some(e) if e.checked.elapsed() < self.ttl => Lookup::Fresh(Arc::clone(&e.value)),
            Some(e) => Lookup::Stale(Arc::clone(&e.value)),
            None => Lookup::Missing,
        }
    }

    /// Stores `value` as checked just now.
    pub(crate) fn insert(&self, tenant: &TenantId, function: &K, value: Arc<V>) {
        let mut map = self.write();
        let present = map.get(tenant).is_some_and(|m| m.contains_key(function));
        let len: usize = map.values().map(HashMap::len).sum();
        if len >= self.capacity
            && !present
            && let Some((t, f)) = map
                .iter()
                .flat_map(|(t, m)| m.iter().map(move |(f, e)| (t, f, e.checked)))
                .min_by_key(|(_, _, checked)| *checked)
                .map(|(t, f, _)| (t.clone(), f.clone()))
        {
            remove(&mut map, &t, &f);
        }
        map.entry(tenant.clone()).or_default().insert(
            function.clone(),
            Entry {
                value,
                checked: Instant::now(),
            },
        );
    }

    pub(crate) fn forget(&self, tenant: &TenantId, function: &K) {
        remove(&mut self.write(), tenant, function);
    }

    /// Drops every entry (another node changed the registry).
    pub(crate) fn clear(&self) {
        self.write().clear();
    }
}

/// Removes one entry, and its tenant's map when that empties.
fn remove<K: Eq + Hash, V>(map: &mut Map<K, V>, tenant: &TenantId, function: &K) {
    if let Some(m) = map.get_mut(tenant) {
        m.remove(function);
        if m.is_empty() {
            map.remove(tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, f: &str) -> (TenantId, FunctionName) {
        (
            TenantId::new(t).expect("tenant"),
            FunctionName::new(f).expect("name"),
        )
    }

    fn fresh(c: &ActiveCache<u32>, (t, f): &(TenantId, FunctionName)) -> Option<u32> {
        match c.get(t, f) {
            Lookup::Fresh(v) => Some(*v),
            _ => None,
        }
    }

    #[test]
    fn entries_are_fresh_within_the_ttl_and_stale_after_it() {
        let c = ActiveCache::new(8, Duration::from_millis(40));
        let k = key("acme", "f");
        assert!(matches!(c.get(&k.0, &k.1), Lookup::Missing));
        c.insert(&k.0, &k.1, Arc::new(1));
        assert_eq!(fresh(&c, &k), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(c.get(&k.0, &k.1), Lookup::Stale(v) if *v == 1));
        // Checked again: fresh again.
        c.insert(&k.0, &k.1, Arc::new(1));
        assert_eq!(fresh(&c, &k), Some(1));
        // A zero TTL is never fresh.
        let never = ActiveCache::new(8, Duration::ZERO);
        never.insert(&k.0, &k.1, Arc::new(2));
        assert!(matches!(never.get(&k.0, &k.1), Lookup::Stale(_)));
    }

    #[test]
    fn the_capacity_holds_and_the_oldest_check_goes_first() {
        let c = ActiveCache::new(2, Duration::from_secs(60));
        let (a, b, d) = (key("acme", "a"), key("acme", "b"), key("globex", "a"));
        c.insert(&a.0, &a.1, Arc::new(1));
        std::thread::sleep(Duration::from_millis(2));
        c.insert(&b.0, &b.1, Arc::new(2));
        std::thread::sleep(Duration::from_millis(2));
        // Re-inserting a present key evicts nothing.
        c.insert(&b.0, &b.1, Arc::new(3));
        assert_eq!((fresh(&c, &a), fresh(&c, &b)), (Some(1), Some(3)));
        // A third key evicts the oldest check (a), not the newest.
        c.insert(&d.0, &d.1, Arc::new(4));
        assert_eq!(fresh(&c, &a), None);
        assert_eq!((fresh(&c, &b), fresh(&c, &d)), (Some(3), Some(4)));
        // Tenants are part of the key: acme's `a` is not globex's `a`.
        c.forget(&d.0, &d.1);
        assert_eq!((fresh(&c, &b), fresh(&c, &d)), (Some(3), None));
        // A zero capacity still caches one entry.
        let one = ActiveCache::new(0, Duration::from_secs(60));
        one.insert(&a.0, &a.1, Arc::new(5));
        assert_eq!(fresh(&one, &a), Some(5));
        one.insert(&b.0, &b.1, Arc::new(6));
        assert_eq!((fresh(&one, &a), fresh(&one, &b)), (None, Some(6)));
    }
}
