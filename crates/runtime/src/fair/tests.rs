//! The slots obeyed and their order: no more guests than slots, a freed
//! slot to the least-used waiting tenant, FIFO within a tenant, and the
//! stops while waiting.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Fair, QUANTUM, Stopped, lock};
use crate::CancelToken;

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn waiting(fair: &Fair) -> usize {
    lock(&fair.state).waiting
}

/// Blocks until `n` calls wait for a slot.
fn until_waiting(fair: &Fair, n: usize) {
    while waiting(fair) < n {
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn no_more_guests_run_than_there_are_slots() {
    for slots in [1, 2] {
        let fair = Fair::new(slots);
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        thread::scope(|s| {
            for i in 0..4 {
                let (fair, running, most) = (&fair, &running, &most);
                s.spawn(move || {
                    let mut share = fair.enter(if i % 2 == 0 { "a" } else { "b" });
                    for _ in 0..20 {
                        share.slice(far(), None).expect("no deadline");
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // A slice of guest work, past the quantum so that
                        // turns change hands.
                        thread::sleep(QUANTUM + Duration::from_micros(200));
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        // Four calls wanted the cores, `slots` of them had them.
        assert_eq!(most.load(Ordering::SeqCst), slots);
        assert!(lock(&fair.state).tenants.is_empty(), "nothing kept after");
        assert_eq!(lock(&fair.state).free, slots);
    }
}

/// One slot: a call of `busy` holds it, more of `busy` queue, then one of
/// `late`; the order in which the waiting calls get the slot.
fn grant_order(late: &'static str) -> Vec<String> {
    let fair = Fair::new(1);
    let order = Mutex::new(Vec::new());
    let mut holder = fair.enter("busy");
    holder.slice(far(), None).expect("a free slot");
    thread::scope(|s| {
        let spawn = |tenant: &'static str, label: &'static str, ahead: usize| {
            let (fair, order) = (&fair, &order);
            s.spawn(move || {
                let mut share = fair.enter(tenant);
                share.slice(far(), None).expect("no deadline");
                lock_vec(order).push(label.to_owned());
            });
            until_waiting(fair, ahead + 1);
        };
        spawn("busy", "busy-1", 0);
        spawn("busy", "busy-2", 1);
        spawn(late, "late", 2);
        // The holder has had its quantum; at its next slice it hands on.
        thread::sleep(QUANTUM * 2);
        holder.slice(far(), None).expect("its turn comes back");
        drop(holder);
    });
    lock_vec(&order).clone()
}

fn lock_vec(m: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    m.lock().expect("not poisoned")
}

#[test]
fn a_freed_slot_goes_to_the_least_used_tenant_first() {
    // Another tenant, arriving last, is served first.
    assert_eq!(grant_order("other"), ["late", "busy-1", "busy-2"]);
    // The same tenant's calls take turns in the order they came.
    assert_eq!(grant_order("busy"), ["busy-1", "busy-2", "late"]);
}

#[test]
fn a_call_keeps_its_slot_while_nobody_waits() {
    let fair = Fair::new(1);
    let mut share = fair.enter("a");
    for _ in 0..1000 {
        share.slice(far(), None).expect("always its own");
    }
    assert_eq!(lock(&fair.state).free, 0);
    drop(share);
    assert_eq!(lock(&fair.state).free, 1, "given back at the end");
}

#[test]
fn waiting_for_a_slot_stops_at_the_deadline_and_on_cancel() {
    let fair = Fair::new(1);
    let mut holder = fair.enter("a");
    holder.slice(far(), None).expect("a free slot");

    let mut late = fair.enter("b");
    let deadline = Instant::now() + Duration::from_millis(30);
    assert_eq!(late.slice(deadline, None), Err(Stopped::Deadline));
    assert!(Instant::now() >= deadline);
    assert_eq!(waiting(&fair), 0, "the stopped call left the queue");

    let cancel = CancelToken::new();
    let canceller = cancel.clone();
    thread::scope(|s| {
        s.spawn(|| {
            until_waiting(&fair, 1);
            canceller.cancel();
        });
        assert_eq!(late.slice(far(), Some(&cancel)), Err(Stopped::Cancelled));
    });
    assert_eq!(waiting(&fair), 0);

    // The pair: with the holder gone, the same wait is served.
    drop(holder);
    assert_eq!(late.slice(deadline + Duration::from_secs(60), None), Ok(()));
}

#[test]
fn a_newly_active_tenant_starts_level_with_the_least_used() {
    let fair = Fair::new(1);
    let mut old = fair.enter("old");
    old.slice(far(), None).expect("a free slot");
    thread::sleep(Duration::from_millis(10));
    old.slice(far(), None).expect("nobody waits");
    let old_used = lock(&fair.state).tenants["old"].used;
    assert!(old_used >= 10_000_000, "charged for its slice: {old_used}");
    let new = fair.enter("new");
    let new_used = lock(&fair.state).tenants["new"].used;
    // Idle time is no credit: it starts just ahead, not at zero.
    assert!(new_used < old_used && new_used + 3_000_000 > old_used);
    drop((old, new));
    assert!(lock(&fair.state).tenants.is_empty());
}
