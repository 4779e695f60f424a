//! Cancelling a call from outside: the caller went away, so the guest is
//! interrupted at the end of its fuel slice instead of running to its
//! deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A handle the caller keeps while a call runs; [`CancelToken::cancel`]
/// interrupts the guest at the end of its current fuel slice. Clones share
/// one flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks the call to stop. Idempotent.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
