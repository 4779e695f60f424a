//! Slow and idle clients on a real socket: the header timeout, the idle
//! keep-alive timeout and the connection cap, each obeyed and violated,
//! with `/healthz` served throughout.

use std::net::SocketAddr;
use std::time::Duration;

use aifn_server::ServerConfig;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::socket::{http, start_with};
use crate::{Harness, echo, manifest, metric, str_of, text_schema};

/// Half a request: a start line and a header, never the blank line.
const HALF: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";

fn config(header: u64, idle: u64, max: usize) -> ServerConfig {
    ServerConfig {
        header_timeout_secs: header,
        idle_timeout_secs: idle,
        max_connections: max,
        ..ServerConfig::default()
    }
}

/// Whether the server closes `stream` within `within` (EOF or reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or other answer before the close is fine.
            Ok(Ok(_)) => {}
        }
    }
}

/// One request on a kept-alive connection; its status.
async fn exchange(stream: &mut TcpStream, path: &str) -> u16 {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before an answer");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    while raw.len() < head_end + len {
        let n = stream.read(&mut buf).await.expect("read body");
        assert!(n > 0, "closed mid-body");
        raw.extend_from_slice(&buf[..n]);
    }
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status")
}

async fn health(addr: SocketAddr) -> u16 {
    http(addr, "GET", "/healthz", None, None)
        .await
        .expect("healthz")
        .status
}

async fn metrics(addr: SocketAddr) -> String {
    let a = http(addr, "GET", "/metrics", None, None)
        .await
        .expect("metrics");
    str_of(&a.body).to_owned()
}

async fn half_requests(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut slow = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(HALF).await.expect("write");
        slow.push(s);
    }
    slow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_cut_at_the_header_timeout_while_health_is_served() {
    let h = Harness::new();
    let server = start_with(&h, config(1, 60, 1000)).await;
    let mut slow = half_requests(server.addr, 200).await;
    // Served while 200 slow clients hold their connections.
    for _ in 0..5 {
        assert_eq!(health(server.addr).await, 200);
    }
    // Obeyed: the rest of the headers within the timeout, then an answer.
    let mut prompt = TcpStream::connect(server.addr).await.expect("connect");
    prompt.write_all(HALF).await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    prompt
        .write_all(b"1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    prompt.read_to_end(&mut answer).await.expect("read");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Violated: every slow connection is closed by the server.
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "a slow client is still connected"
        );
    }
    let text = metrics(server.addr).await;
    assert!(
        metric(
            &text,
            "aifn_connections_closed_total{reason=\"header_timeout\"}"
        ) >= 200,
        "{text}"
    );
    assert_eq!(
        metric(&text, "aifn_connections_closed_total{reason=\"refused\"}"),
        0
    );
    let _ = server.stop.send(());
    server.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_closes_at_the_idle_timeout() {
    let h = Harness::new();
    // The header timeout is long, so a close after about a second is the
    // idle timeout's.
    let server = start_with(&h, config(30, 1, 1000)).await;
    let mut conn = TcpStream::connect(server.addr).await.expect("connect");
    // Obeyed: requests closer together than the idle timeout keep it open.
    for _ in 0..4 {
        assert_eq!(exchange(&mut conn, "/healthz").await, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Violated: idle past it, the server closes it.
    assert!(
        closed_within(&mut conn, Duration::from_secs(10)).await,
        "an idle connection stayed open"
    );
    let text = metrics(server.addr).await;
    assert_eq!(
        metric(
            &text,
            "aifn_connections_closed_total{reason=\"idle_timeout\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "aifn_connections_closed_total{reason=\"header_timeout\"}"
        ),
        0,
        "{text}"
    );
    let _ = server.stop.send(());
    server.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_request_started_late_still_gets_its_header_timeout() {
    let h = Harness::new();
    let server = start_with(&h, config(1, 30, 1000)).await;
    let mut conn = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(exchange(&mut conn, "/healthz").await, 200);
    // Idle for longer than the header timeout: the idle timeout applies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(exchange(&mut conn, "/healthz").await, 200);
    // Then half a request: cut at the header timeout from its first byte.
    conn.write_all(HALF).await.expect("write");
    assert!(
        closed_within(&mut conn, Duration::from_secs(10)).await,
        "half a request kept the connection"
    );
    let text = metrics(server.addr).await;
    assert_eq!(
        metric(
            &text,
            "aifn_connections_closed_total{reason=\"header_timeout\"}"
        ),
        1,
        "{text}"
    );
    let _ = server.stop.send(());
    server.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_slow_clients_give_way_and_only_busy_ones_refuse() {
    let h = Harness::new();
    let acme = h.tenant("acme");
    h.deploy(&acme, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let cap = 20;
    let server = start_with(&h, config(60, 60, cap)).await;
    // The cap full of slow clients: new clients are still served, each
    // taking the place of the slowest.
    // A served client that closes leaves room, so each round first fills
    // the cap again with one more slow client.
    let mut slow = half_requests(server.addr, cap).await;
    for _ in 0..5 {
        assert_eq!(health(server.addr).await, 200);
        slow.extend(half_requests(server.addr, 1).await);
    }
    let text = metrics(server.addr).await;
    assert!(
        metric(&text, "aifn_connections_closed_total{reason=\"evicted\"}") >= 5,
        "{text}"
    );
    assert_eq!(
        metric(&text, "aifn_connections_closed_total{reason=\"refused\"}"),
        0
    );
    assert!(
        metric(&text, "aifn_connections_open") <= cap as u64,
        "{text}"
    );
    // The cap full of requests in progress (headers sent, the body still
    // to come): a new connection is answered 503 with the error body.
    let mut busy = Vec::new();
    for _ in 0..cap {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        let head = format!(
            "POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n",
            acme.agent.secret
        );
        s.write_all(head.as_bytes()).await.expect("write");
        busy.push(s);
        // Admitted one at a time, so each evicts a slow one, not a busy one.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = http(server.addr, "GET", "/healthz", None, None)
        .await
        .expect("an answer");
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.kind(), "unavailable");
    // One busy client finishes: there is room again.
    let mut done = busy.pop().expect("one");
    let body = json!({"input": {"text": "hi"}}).to_string();
    done.write_all(format!("{body:<100}").as_bytes())
        .await
        .expect("write body");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), done.read_to_end(&mut answer)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(done);
    let mut served = false;
    for _ in 0..50 {
        if health(server.addr).await == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "no room after a busy client left");
    drop(busy);
    let text = metrics(server.addr).await;
    assert!(
        metric(&text, "aifn_connections_closed_total{reason=\"refused\"}") >= 1,
        "{text}"
    );
    let _ = server.stop.send(());
    server.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_past_the_body_timeout_is_refused() {
    let h = Harness::new();
    let acme = h.tenant("acme");
    h.deploy(&acme, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let server = start_with(
        &h,
        ServerConfig {
            body_timeout_secs: 1,
            ..ServerConfig::default()
        },
    )
    .await;
    let body = json!({"input": {"text": "hi"}}).to_string();
    let head = format!(
        "POST /v1/functions/echo/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        acme.agent.secret,
        body.len()
    );
    let (first, rest) = body.split_at(5);
    // Obeyed: the body in two parts, well within the timeout.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(first.as_bytes()).await.expect("part");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(rest.as_bytes()).await.expect("rest");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.expect("read");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Violated: the rest never comes; a 400 that says so, then the close.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(first.as_bytes()).await.expect("part");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection stayed open");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("did not arrive within 1 s"), "{text}");
    assert!(text.contains("\"kind\":\"invalid_request\""), "{text}");
    let _ = server.stop.send(());
    server.task.await.expect("join").expect("serve");
}
