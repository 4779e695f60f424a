use std::path::PathBuf;

use aifn_types::Limits;

/// How a [`Runtime`](crate::Runtime) is set up. Everything has a default.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The host maxima. A call's limits are clamped to these whatever the
    /// caller passes. Default: [`Limits::default`].
    pub limits: Limits,
    /// Instances that may run at once: the pooling allocator's slots.
    /// Callers should cap their own concurrency at or below it; past it a
    /// call is refused with `rate_limited`. Default 64.
    pub max_instances: u32,
    /// Bytes of each linear memory slot kept resident and zeroed with
    /// `memset` on reuse instead of being returned to the kernel; small
    /// guests then reuse warm pages. Default 128 KiB.
    pub memory_keep_resident: usize,
    /// Directory of the on-disk cache of compiled modules; `None` keeps
    /// them in memory only. Default `None`.
    pub cache_dir: Option<PathBuf>,
    /// Compiled modules kept in memory (least recently used are dropped).
    /// Default 1,024.
    pub memory_cache_entries: usize,
    /// Compilations at once, counting ones abandoned after a
    /// `compile_timeout` that are still finishing. Default 1.
    pub max_concurrent_compiles: usize,
    /// Threads one compilation spreads its functions over. They run at a
    /// low CPU priority (nice 10), so calls keep the cores whenever both
    /// want them. Default: the host's cores.
    pub compile_threads: usize,
    /// Guests that run at once, at least one: a call's fuel slices each
    /// wait for one of these slots, and a freed slot goes to the waiting
    /// tenant that has used the least guest CPU time, so one tenant's long
    /// calls cannot crowd out another's. Default: the host's cores.
    pub cpu_slots: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            max_instances: 64,
            memory_keep_resident: 128 * 1024,
            cache_dir: None,
            memory_cache_entries: 1024,
            max_concurrent_compiles: 1,
            compile_threads: cores(),
            cpu_slots: cores(),
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
