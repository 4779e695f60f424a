//! The open connections: what each one is doing, the cap and which
//! connection gives way when a new one arrives at it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The limits a connection lives under (from [`crate::ServerConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Its request headers did not arrive within the header timeout.
    HeaderTimeout,
    /// No request for the idle timeout after its previous answer.
    IdleTimeout,
    /// A new connection arrived at the cap and this one was the longest
    /// without a request in progress.
    Evicted,
}

/// One open connection. Times are nanoseconds since the table's `base`.
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    /// When the current wait began: accept, the previous answer's end, or
    /// the first byte of the next request.
    since: AtomicU64,
    /// Requests whose answer has not been sent completely.
    in_flight: AtomicU32,
    /// It has answered a request: the next one is a keep-alive request.
    served: AtomicBool,
    /// Bytes of the next request arrived since the previous answer.
    reading: AtomicBool,
    evict: AtomicBool,
    wake: Notify,
}

impl Conn {
    /// Bytes arrived. The first of a keep-alive request starts its header
    /// timeout; a new connection's header timeout runs from accept.
    pub(crate) fn on_read(&self, table: &Table) {
        if !self.reading.load(Relaxed) {
            self.reading.store(true, Relaxed);
            if self.served.load(Relaxed) {
                self.since.store(table.now(), Relaxed);
            }
        }
    }

    /// A request's headers are complete: the timeouts pause until its
    /// answer is sent.
    pub(crate) fn on_request(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// A request's answer was sent (or abandoned).
    pub(crate) fn on_answered(&self, table: &Table) {
        self.since.store(table.now(), Relaxed);
        self.served.store(true, Relaxed);
        self.reading.store(false, Relaxed);
        self.in_flight.fetch_sub(1, Relaxed);
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Relaxed) == 0
    }

    /// When the connection is due to close, and why; `None` while a request
    /// is in progress.
    fn deadline(&self, limits: &ConnLimits) -> Option<(u64, Closed)> {
        if !self.idle() {
            return None;
        }
        let since = self.since.load(Relaxed);
        let (after, why) = if !self.served.load(Relaxed) || self.reading.load(Relaxed) {
            (limits.header_timeout, Closed::HeaderTimeout)
        } else {
            (limits.idle_timeout, Closed::IdleTimeout)
        };
        Some((since.saturating_add(nanos(after)), why))
    }

    /// Resolves when the server should close this connection. It re-reads
    /// the state at least every quarter of the shorter timeout instead of
    /// being woken by every request (a state change can bring the deadline
    /// forward), so a timeout closes within 1.25 times its length.
    pub(crate) async fn closing(&self, table: &Table) -> Closed {
        let limits = &table.limits;
        let tick = limits.header_timeout.min(limits.idle_timeout) / 4;
        loop {
            if self.evict.swap(false, Relaxed) && self.idle() {
                return Closed::Evicted;
            }
            let wait = match self.deadline(limits) {
                // Busy: look again later (a request's own limits bound it).
                None => tick,
                Some((at, why)) => {
                    let now = table.now();
                    if now >= at {
                        return why;
                    }
                    Duration::from_nanos(at - now).min(tick)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ConnCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) header_timeouts: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
}

/// What admission decided for a new connection.
pub(crate) enum Admission {
    Admitted(Arc<Conn>),
    /// At the cap with every connection busy: answer 503.
    Refused,
}

/// The open connections of one server.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) limits: ConnLimits,
    base: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    pub(crate) counters: ConnCounters,
}

impl Table {
    pub(crate) fn new(limits: ConnLimits) -> Table {
        Table {
            limits,
            base: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            counters: ConnCounters::default(),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        nanos(self.base.elapsed())
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // The map stays consistent even if a holder panicked.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a new connection. At the cap, the connection that has waited
    /// longest without a request in progress (a slow or idle client) is
    /// told to close and the new one takes its place; only when every
    /// connection is busy is the new one refused.
    pub(crate) fn admit(&self) -> Admission {
        let now = self.now();
        let mut open = self.lock();
        if open.len() >= self.limits.max_connections.max(1) {
            let victim = open
                .values()
                .filter(|c| c.idle() && !c.evict.load(Relaxed))
                .min_by_key(|c| c.since.load(Relaxed))
                .cloned();
            match victim {
                Some(c) => {
                    // It leaves the table now, so the cap counts the new one.
                    open.remove(&c.id);
                    c.evict.store(true, Relaxed);
                    c.wake.notify_one();
                }
                None => {
                    self.counters.refused.fetch_add(1, Relaxed);
                    return Admission::Refused;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn {
            id,
            since: AtomicU64::new(now),
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            reading: AtomicBool::new(false),
            evict: AtomicBool::new(false),
            wake: Notify::new(),
        });
        open.insert(id, conn.clone());
        self.counters.accepted.fetch_add(1, Relaxed);
        Admission::Admitted(conn)
    }

    /// A connection ended, and why if the server closed it.
    pub(crate) fn release(&self, conn: &Conn, why: Option<Closed>) {
        self.lock().remove(&conn.id);
        let counter = match why {
            None => return,
            Some(Closed::HeaderTimeout) => &self.counters.header_timeouts,
            Some(Closed::IdleTimeout) => &self.counters.idle_timeouts,
            Some(Closed::Evicted) => &self.counters.evicted,
        };
        counter.fetch_add(1, Relaxed);
    }
}

impl Table {
    /// The connection series for `/metrics` (Prometheus text).
    pub(crate) fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let c = &self.counters;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP aifn_connections_open HTTP connections open now."
        );
        let _ = writeln!(out, "# TYPE aifn_connections_open gauge");
        let _ = writeln!(out, "aifn_connections_open {}", self.open());
        let _ = writeln!(
            out,
            "# HELP aifn_connections_accepted_total HTTP connections admitted."
        );
        let _ = writeln!(out, "# TYPE aifn_connections_accepted_total counter");
        let _ = writeln!(
            out,
            "aifn_connections_accepted_total {}",
            c.accepted.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP aifn_connections_closed_total HTTP connections the server closed, by reason."
        );
        let _ = writeln!(out, "# TYPE aifn_connections_closed_total counter");
        for (reason, n) in [
            ("header_timeout", &c.header_timeouts),
            ("idle_timeout", &c.idle_timeouts),
            ("evicted", &c.evicted),
            ("refused", &c.refused),
        ] {
            let _ = writeln!(
                out,
                "aifn_connections_closed_total{{reason=\"{reason}\"}} {}",
                n.load(Relaxed)
            );
        }
        out
    }
}
