//! The answer to one append: the writer completes it after the commit, the
//! caller blocks on it ([`Pending::wait`]) or awaits it (it is a
//! `Future`), so an async caller needs no thread parked per record.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::{Appended, AuditError};

type Answer = Result<Appended, AuditError>;

#[derive(Default)]
struct State {
    answer: Option<Answer>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    ready: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Neither side panics while holding the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A record handed to the writer, not yet known to be durable. Block with
/// [`Pending::wait`] or `.await` it; either way the answer comes only once
/// the commit holding the record is durable, or failed.
#[must_use = "the record is durable only once this resolves"]
pub struct Pending(Arc<Slot>);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("answered", &self.0.lock().answer.is_some())
            .finish()
    }
}

/// The writer's side. Dropping it unanswered (the writer stopped) answers
/// [`AuditError::Closed`], so no caller waits forever.
pub(crate) struct Ack(Option<Arc<Slot>>);

pub(crate) fn pair() -> (Ack, Pending) {
    let slot = Arc::new(Slot::default());
    (Ack(Some(Arc::clone(&slot))), Pending(slot))
}

impl Ack {
    pub(crate) fn send(mut self, answer: Answer) {
        if let Some(slot) = self.0.take() {
            answer_slot(&slot, answer);
        }
    }
}

fn answer_slot(slot: &Slot, answer: Answer) {
    let waker = {
        let mut state = slot.lock();
        state.answer = Some(answer);
        state.waker.take()
    };
    slot.ready.notify_one();
    if let Some(w) = waker {
        w.wake();
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            answer_slot(&slot, Err(AuditError::Closed));
        }
    }
}

impl Pending {
    /// An answer known at once (a record that was refused before queueing).
    pub(crate) fn ready(answer: Answer) -> Pending {
        let slot = Slot::default();
        slot.lock().answer = Some(answer);
        Pending(Arc::new(slot))
    }

    /// Blocks until the record is durable (or its commit failed).
    pub fn wait(self) -> Result<Appended, AuditError> {
        let mut state = self.0.lock();
        loop {
            if let Some(answer) = state.answer.take() {
                return answer;
            }
            state = self
                .0
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Future for Pending {
    type Output = Result<Appended, AuditError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.0.lock();
        match state.answer.take() {
            Some(answer) => Poll::Ready(answer),
            None => {
                match &state.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn appended(seq: u64) -> Answer {
        Ok(Appended {
            seq,
            hash: "h".into(),
        })
    }

    #[test]
    fn a_blocked_waiter_gets_the_answer_sent_from_another_thread() {
        let (ack, pending) = pair();
        let t = std::thread::spawn(move || pending.wait());
        std::thread::sleep(std::time::Duration::from_millis(20));
        ack.send(appended(7));
        assert_eq!(t.join().expect("waiter").expect("answer").seq, 7);
    }

    #[test]
    fn polling_registers_the_waker_and_the_answer_wakes_it() {
        let (ack, mut pending) = pair();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut pending).poll(&mut cx).is_pending());
        ack.send(appended(3));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        match Pin::new(&mut pending).poll(&mut cx) {
            Poll::Ready(Ok(a)) => assert_eq!(a.seq, 3),
            other => panic!("expected the answer, got {other:?}"),
        }
    }

    #[test]
    fn a_dropped_ack_answers_closed_rather_than_hanging() {
        let (ack, pending) = pair();
        drop(ack);
        assert!(matches!(pending.wait(), Err(AuditError::Closed)));
        assert!(matches!(
            Pending::ready(Err(AuditError::Closed)).wait(),
            Err(AuditError::Closed)
        ));
    }
}
