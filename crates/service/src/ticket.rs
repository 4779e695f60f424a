//! The invocation ticket: a call that ran and whose audit record is
//! queued. Its answer may be given only once the record is durable, so it
//! resolves then (blocking or as a future), or withholds the output.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aifn_audit::{AuditError, Pending};

use crate::ServiceError;
use crate::invoke::{InvokeOutcome, Refused};
use crate::service::Inner;

/// An invocation that ran and whose record is queued: resolves to the
/// answer once the record is durable, or to a refusal (`unavailable`, the
/// output withheld) if the record could not be written. Block on it with
/// [`InvokeTicket::wait`] or `.await` it.
#[must_use = "the answer may be given only once this resolves"]
pub struct InvokeTicket(pub(crate) Ticket);

pub(crate) enum Ticket {
    Done(Option<Result<InvokeOutcome, Refused>>),
    Recording {
        /// `None` in the benchmark baseline (no record).
        pending: Option<Pending>,
        outcome: Option<InvokeOutcome>,
        duration: Duration,
        inner: Arc<Inner>,
    },
}

impl std::fmt::Debug for InvokeTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.0 {
            Ticket::Done(_) => "done",
            Ticket::Recording { .. } => "recording",
        };
        f.debug_tuple("InvokeTicket").field(&state).finish()
    }
}

impl InvokeTicket {
    /// Blocks until the record is durable; then the answer.
    pub fn wait(mut self) -> Result<InvokeOutcome, Refused> {
        let recorded = match &mut self.0 {
            Ticket::Recording { pending, .. } => {
                pending.take().map_or(Ok(()), |p| p.wait().map(drop))
            }
            Ticket::Done(_) => Ok(()),
        };
        self.0.resolve(recorded)
    }
}

impl Ticket {
    /// The answer, once the record's fate (`recorded`) is known.
    fn resolve(&mut self, recorded: Result<(), AuditError>) -> Result<InvokeOutcome, Refused> {
        match self {
            Ticket::Done(answer) => answer.take().unwrap_or_else(|| Err(resolved_twice())),
            Ticket::Recording {
                outcome,
                duration,
                inner,
                ..
            } => finish(inner, outcome.take(), *duration, recorded),
        }
    }
}

impl Future for InvokeTicket {
    type Output = Result<InvokeOutcome, Refused>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let recorded = match &mut self.0 {
            Ticket::Recording { pending, .. } => {
                match pending.as_mut().map(|p| Pin::new(p).poll(cx)) {
                    Some(Poll::Pending) => return Poll::Pending,
                    Some(Poll::Ready(answer)) => {
                        // Resolved once: a later poll answers `resolved_twice`.
                        *pending = None;
                        answer.map(drop)
                    }
                    None => Ok(()),
                }
            }
            Ticket::Done(_) => Ok(()),
        };
        Poll::Ready(self.0.resolve(recorded))
    }
}

/// A ticket polled again after it resolved (a caller bug, not a guest's).
fn resolved_twice() -> Refused {
    Refused {
        error: ServiceError::internal("invocation ticket", &"resolved twice"),
        execution_id: None,
    }
}

/// The answer of a call whose record was durably written, or the refusal
/// that withholds it.
fn finish(
    inner: &Inner,
    outcome: Option<InvokeOutcome>,
    duration: Duration,
    recorded: Result<(), AuditError>,
) -> Result<InvokeOutcome, Refused> {
    let Some(outcome) = outcome else {
        return Err(resolved_twice());
    };
    match recorded {
        Ok(()) => {
            inner
                .metrics
                .record(outcome.kind, duration, outcome.fuel_used);
            Ok(outcome)
        }
        Err(e) => {
            tracing::error!(execution_id = %outcome.execution_id, error = %e, "audit record failed; withholding the output");
            Err(Refused {
                error: ServiceError::Unavailable {
                    message: "the call's audit record could not be written; its result is withheld"
                        .into(),
                },
                execution_id: Some(outcome.execution_id),
            })
        }
    }
}
