//! The accept loop under [`crate::serve`]: HTTP/1.1 by hyper, with the
//! limits a slow or idle client meets. A connection must deliver a
//! request's headers within the header timeout (from accept, or from the
//! first byte of a keep-alive request), may wait idle between requests for
//! the idle timeout, and the number open is capped: at the cap the
//! connection longest without a request in progress gives way, and only
//! when every connection is busy is a new one answered 503.

mod table;
mod watch;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use aifn_service::ServiceError;
use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

pub(crate) use table::{ConnLimits, Table};

use crate::error::ApiError;
use table::Admission;
use watch::{PerConnection, Watched};

/// Refusals being written at once; past it a refused connection is closed
/// without an answer.
const REFUSALS_AT_ONCE: usize = 64;

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting and waits for the requests in progress.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    table: Arc<Table>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer restarts at every wait for a request, so it
    // would cut idle keep-alive connections at the header timeout; the
    // table's watchdog keeps the two apart.
    http.timer(TokioTimer::new()).header_read_timeout(None);
    let graceful = GracefulShutdown::new();
    let refusal = refusal().await;
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = match table.admit() {
            Admission::Admitted(conn) => conn,
            Admission::Refused => {
                refuse(stream, refusal.clone(), &refusals);
                continue;
            }
        };
        // Answers are small: send each at once.
        let _ = stream.set_nodelay(true);
        let service = PerConnection {
            app: app.clone(),
            remote,
            conn: conn.clone(),
            table: table.clone(),
        };
        let io = TokioIo::new(Watched::new(stream, conn.clone(), table.clone()));
        let serving = graceful.watch(http.serve_connection(io, service));
        let table = table.clone();
        tokio::spawn(async move {
            tokio::pin!(serving);
            let why = tokio::select! {
                served = &mut serving => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, %remote, "connection ended with an error");
                    }
                    None
                }
                why = conn.closing(&table) => Some(why),
            };
            if let Some(why) = why {
                tracing::debug!(?why, %remote, "connection closed by the server");
            }
            table.release(&conn, why);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The 503 a refused connection gets: the one error body, then close.
async fn refusal() -> Bytes {
    let response = ApiError::from(ServiceError::Unavailable {
        message: "the server is at its connection limit; retry shortly".into(),
    })
    .into_response();
    let status = response.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        if let Ok(v) = value.to_str() {
            head.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    head.push_str(&format!(
        "retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    Bytes::from(bytes)
}

/// Answers 503 and closes, reading what the client sent meanwhile so the
/// close does not reset the answer away; bounded in count and time.
fn refuse(mut stream: TcpStream, refusal: Bytes, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(&refusal).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        })
        .await;
    });
}

/// A failed accept: a connection that went away before it was accepted is
/// nothing; anything else (out of file descriptors) backs off a little.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
