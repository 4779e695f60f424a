//! What a connection's state is learnt from: its reads (the socket), its
//! requests (the service) and the end of its answers (the body); and the
//! deadline a request's body must arrive by.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use super::table::{Conn, Table};

/// The socket, noting when bytes of a request arrive.
pub(crate) struct Watched {
    io: TcpStream,
    conn: Arc<Conn>,
    table: Arc<Table>,
}

impl Watched {
    pub(crate) fn new(io: TcpStream, conn: Arc<Conn>, table: Arc<Table>) -> Watched {
        Watched { io, conn, table }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn.on_read(&this.table);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request in progress on a connection, until its answer's body is done
/// with (sent, or dropped with the connection).
pub(crate) struct InFlight {
    conn: Arc<Conn>,
    table: Arc<Table>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.on_answered(&self.table);
    }
}

/// An answer's body, holding its request's [`InFlight`].
pub(crate) struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The router as one connection's hyper service.
#[derive(Clone)]
pub(crate) struct PerConnection {
    pub(crate) app: Router,
    pub(crate) remote: SocketAddr,
    pub(crate) conn: Arc<Conn>,
    pub(crate) table: Arc<Table>,
}

/// The body timeout's error: the body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s")]
pub(crate) struct BodyTimeout(u64);

/// A request's body that must arrive completely by `at`.
pub(crate) struct Deadline {
    inner: Incoming,
    at: Instant,
    limit: Duration,
    /// Made at the first wait only: most bodies are in the first read.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let at = this.at;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.limit.as_secs()).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        self.conn.on_request();
        let in_flight = InFlight {
            conn: self.conn.clone(),
            table: self.table.clone(),
        };
        req.extensions_mut().insert(ConnectInfo(self.remote));
        let limit = self.table.limits.body_timeout;
        let req = req.map(|inner| {
            Body::new(Deadline {
                inner,
                at: Instant::now() + limit,
                limit,
                sleep: None,
            })
        });
        let answer = self.app.clone().oneshot(req);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|inner| Tracked {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}
