//! Fair shares of the cores between tenants. A guest runs only while its
//! call holds one of a few CPU slots (one per core by default): the call
//! takes a slot before each fuel slice and offers it back after, so no
//! more guests run at once than there are slots, and a freed slot goes to
//! the waiting tenant that has used the least guest CPU time. One tenant's
//! many long calls then share that tenant's part of the cores, and another
//! tenant's short call waits about one slice for a slot instead of queuing
//! behind all of them in the kernel's round robin.
//!
//! A tenant that becomes active starts level with the least-used active
//! tenant (a little ahead of it), so time spent idle is no credit for a
//! burst later. Nothing is kept about a tenant with no call in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::CancelToken;

/// How far ahead of the least-used active tenant a newly active one
/// starts: enough to win the next free slot, too little to be a burst.
const ARRIVAL_LEAD: Duration = Duration::from_millis(2);

/// How long a call keeps its slot while only tenants that have used as
/// much as its own wait: turns long enough that handing the slot on costs
/// little beside them.
const QUANTUM: Duration = Duration::from_millis(1);

/// How often a call waiting for a slot looks at its cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(5);

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The CPU slots and who waits for them.
pub(crate) struct Fair {
    state: Mutex<State>,
}

struct State {
    free: usize,
    tenants: HashMap<Arc<str>, Tenant>,
    /// Calls waiting, all tenants together.
    waiting: usize,
}

struct Tenant {
    /// Guest CPU time used, in nanoseconds, relative to the other active
    /// tenants.
    used: u64,
    /// Calls in flight (running, waiting or between slices).
    calls: usize,
    queue: VecDeque<Arc<Waiter>>,
}

/// A call waiting for a slot; `granted` is set under the state's lock
/// when a slot is handed to it.
struct Waiter {
    granted: AtomicBool,
    wake: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Fair {
    /// `slots` guests may run at once (at least one).
    pub(crate) fn new(slots: usize) -> Fair {
        Fair {
            state: Mutex::new(State {
                free: slots.max(1),
                tenants: HashMap::new(),
                waiting: 0,
            }),
        }
    }

    /// A call of `tenant` begins; its slices are scheduled through the
    /// returned share until it is dropped.
    pub(crate) fn enter(&self, tenant: &str) -> Share<'_> {
        let mut s = lock(&self.state);
        let floor = s.tenants.values().map(|t| t.used).min();
        let key: Arc<str> = match s.tenants.get_key_value(tenant) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(tenant),
        };
        let t = s.tenants.entry(Arc::clone(&key)).or_insert_with(|| Tenant {
            used: floor.map_or(0, |f| f.saturating_sub(nanos(ARRIVAL_LEAD))),
            calls: 0,
            queue: VecDeque::new(),
        });
        t.calls += 1;
        Share {
            fair: self,
            tenant: key,
            holding: None,
            turn: Instant::now(),
        }
    }
}

/// Why a call stopped waiting for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    Deadline,
    Cancelled,
}

/// One call's use of the slots.
pub(crate) struct Share<'a> {
    fair: &'a Fair,
    tenant: Arc<str>,
    /// Since when the slot it holds was last charged for.
    holding: Option<Instant>,
    /// When it took the slot it holds.
    turn: Instant,
}

impl Share<'_> {
    /// Holds a slot before a slice runs. A call that holds one keeps it
    /// while nobody waits, and for up to [`QUANTUM`] while only tenants
    /// that have used as much as its own wait; otherwise it offers the
    /// slot to the least-used waiting tenant and waits its turn. Gives up
    /// at `deadline` or when cancelled.
    pub(crate) fn slice(
        &mut self,
        deadline: Instant,
        cancel: Option<&CancelToken>,
    ) -> Result<(), Stopped> {
        let mut s = lock(&self.fair.state);
        if let Some(since) = self.holding {
            let mine = self.charge(&mut s, since);
            let now = Instant::now();
            if !must_yield(&s, mine, now.duration_since(self.turn)) {
                self.holding = Some(now);
                return Ok(());
            }
            self.holding = None;
            s.free += 1;
        } else if s.free > 0 && s.waiting == 0 {
            s.free -= 1;
            self.take();
            return Ok(());
        }
        let me = Arc::new(Waiter {
            granted: AtomicBool::new(false),
            wake: Condvar::new(),
        });
        s.tenants
            .entry(Arc::clone(&self.tenant))
            .or_insert_with(Tenant::idle)
            .queue
            .push_back(Arc::clone(&me));
        s.waiting += 1;
        // A slot is free (this call's own, or one that no waiter took):
        // the least-used tenant gets it, which may be this call.
        if s.free > 0 {
            s.free -= 1;
            hand_on(&mut s);
        }
        loop {
            if me.granted.load(Ordering::Relaxed) {
                self.take();
                return Ok(());
            }
            let now = Instant::now();
            let stop = if now >= deadline {
                Some(Stopped::Deadline)
            } else if cancel.is_some_and(CancelToken::is_cancelled) {
                Some(Stopped::Cancelled)
            } else {
                None
            };
            if let Some(why) = stop {
                if let Some(t) = s.tenants.get_mut(&self.tenant)
                    && let Some(i) = t.queue.iter().position(|w| Arc::ptr_eq(w, &me))
                {
                    t.queue.remove(i);
                    s.waiting -= 1;
                }
                return Err(why);
            }
            let mut wait = deadline - now;
            if cancel.is_some() {
                wait = wait.min(CANCEL_POLL);
            }
            s = me
                .wake
                .wait_timeout(s, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn take(&mut self) {
        let now = Instant::now();
        self.holding = Some(now);
        self.turn = now;
    }

    /// Adds the time since `since` to this tenant's use; its use now.
    fn charge(&self, s: &mut State, since: Instant) -> u64 {
        let used = nanos(since.elapsed());
        s.tenants.get_mut(&self.tenant).map_or(0, |t| {
            t.used = t.used.saturating_add(used);
            t.used
        })
    }
}

/// Whether a call whose tenant has used `mine` and that has held its slot
/// for `held` gives it up now.
fn must_yield(s: &State, mine: u64, held: Duration) -> bool {
    let Some(least) = s
        .tenants
        .values()
        .filter(|t| !t.queue.is_empty())
        .map(|t| t.used)
        .min()
    else {
        return false;
    };
    // A tenant clearly behind this one gets the core at once; among
    // equals, turns of a quantum.
    least.saturating_add(nanos(QUANTUM)) < mine || held >= QUANTUM
}

/// Hands a slot taken from the pool to the waiting call of the least-used
/// tenant, or returns it.
fn hand_on(s: &mut State) {
    let next = s
        .tenants
        .values_mut()
        .filter(|t| !t.queue.is_empty())
        .min_by_key(|t| t.used)
        .and_then(|t| t.queue.pop_front());
    match next {
        Some(w) => {
            s.waiting -= 1;
            w.granted.store(true, Ordering::Relaxed);
            w.wake.notify_one();
        }
        None => s.free += 1,
    }
}

impl Tenant {
    fn idle() -> Tenant {
        Tenant {
            used: 0,
            calls: 0,
            queue: VecDeque::new(),
        }
    }
}

impl Drop for Share<'_> {
    /// The call is done with the guest: its slot goes on, and a tenant
    /// with no call left is forgotten.
    fn drop(&mut self) {
        let mut s = lock(&self.fair.state);
        if let Some(since) = self.holding.take() {
            self.charge(&mut s, since);
            hand_on(&mut s);
        }
        if let Some(t) = s.tenants.get_mut(&self.tenant) {
            t.calls = t.calls.saturating_sub(1);
            if t.calls == 0 && t.queue.is_empty() {
                s.tenants.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests;
