//! The server on a real socket (`aifn_server::serve`): it keeps answering
//! health checks and other tenants while hostile guests keep both cores
//! busy, and it shuts down gracefully, finishing the call in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aifn_server::{AppState, ServerConfig};
use aifn_service::{AuditQuery, SecurityQuery, TenantLimits};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{
    Harness, Key, any_schema, countdown, echo, manifest, metric, spin, str_of, text_schema,
};

/// An answer read off the wire.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn kind(&self) -> &str {
        crate::kind(&self.body)
    }
}

/// A minimal HTTP/1.1 client: one request per connection, read to EOF.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&Key>,
    body: Option<Value>,
) -> std::io::Result<Answer> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(k) = key {
        request.push_str(&format!("Authorization: Bearer {}\r\n", k.secret));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut content = raw[split + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    if head.contains("transfer-encoding: chunked") {
        content = dechunk(&content);
    }
    let body = if head.contains("content-type: application/json") {
        serde_json::from_slice(&content).map_err(std::io::Error::other)?
    } else {
        Value::String(String::from_utf8_lossy(&content).into_owned())
    };
    Ok(Answer { status, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// A server on 127.0.0.1 and the handle that stops it.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: oneshot::Sender<()>,
    pub(crate) task: JoinHandle<std::io::Result<()>>,
}

async fn start(h: &Harness) -> Server {
    start_with(h, ServerConfig::default()).await
}

/// A server with these HTTP settings.
pub(crate) async fn start_with(h: &Harness, config: ServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let state = AppState::new(h.service.clone(), config);
    let task = tokio::spawn(aifn_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

async fn in_flight(addr: SocketAddr) -> u64 {
    let a = http(addr, "GET", "/metrics", None, None)
        .await
        .expect("metrics");
    assert_eq!(a.status, 200);
    metric(str_of(&a.body), "aifn_in_flight")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_other_tenants_are_served_while_hostile_guests_hold_the_cores() {
    let h = Arc::new(Harness::with(
        |c| {
            c.tenant = TenantLimits {
                max_concurrent: 2,
                ..TenantLimits::default()
            }
        },
        ServerConfig::default(),
    ));
    let mallory = h.tenant("mallory");
    let acme = h.tenant("acme");
    // Infinite loops, ended by the host's 1 s deadline.
    h.deploy(
        &mallory,
        "burn",
        &spin(),
        manifest("burns a core", any_schema()),
    )
    .await;
    h.deploy(&acme, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let server = start(&h).await;
    let addr = server.addr;

    // Mallory keeps her two slots (one per core) full for three rounds,
    // asking for twice as many each time.
    let agent = mallory.agent.clone();
    let storm = tokio::spawn(async move {
        let mut answers = Vec::new();
        for _ in 0..3 {
            let calls: Vec<_> = (0..4)
                .map(|_| {
                    let agent = agent.clone();
                    tokio::spawn(async move {
                        http(
                            addr,
                            "POST",
                            "/v1/functions/burn/invoke",
                            Some(&agent),
                            Some(json!({"input": {}})),
                        )
                        .await
                    })
                })
                .collect();
            for c in calls {
                let a = c.await.expect("join").expect("hostile call answered");
                answers.push((a.status, a.kind().to_owned()));
            }
        }
        answers
    });
    let mut seen = 0;
    for _ in 0..2_000 {
        seen = in_flight(addr).await;
        if seen >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, 2, "mallory's guests never held both slots");

    for i in 0..5 {
        let a = http(addr, "GET", "/healthz", None, None)
            .await
            .expect("healthz");
        assert_eq!(a.status, 200, "healthz {i}");
        let a = http(addr, "GET", "/readyz", None, None)
            .await
            .expect("readyz");
        assert_eq!(a.status, 200, "readyz {i}");
        let text = format!("call {i}");
        let a = http(
            addr,
            "POST",
            "/v1/functions/echo/invoke",
            Some(&acme.agent),
            Some(json!({"input": {"text": text}})),
        )
        .await
        .expect("acme call");
        assert_eq!(
            (a.status, &a.body["output"]),
            (200, &json!({"text": text})),
            "{:?}",
            a.body
        );
        let a = http(addr, "GET", "/v1/functions", Some(&acme.admin), None)
            .await
            .expect("acme list");
        assert_eq!(a.status, 200);
    }
    assert!(
        !storm.is_finished(),
        "the hostile load ended before acme was served"
    );
    let answers = storm.await.expect("storm");
    let timeouts = answers
        .iter()
        .filter(|a| **a == (422, "timeout".to_owned()))
        .count();
    let limited = answers
        .iter()
        .filter(|a| **a == (429, "rate_limited".to_owned()))
        .count();
    assert_eq!(timeouts + limited, answers.len(), "{answers:?}");
    assert!((3..=6).contains(&timeouts) && limited >= 1, "{answers:?}");

    let _ = server.stop.send(());
    server.task.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_call_in_flight_then_stops() {
    let h = Harness::with(|c| c.limits.timeout_ms = 60_000, ServerConfig::default());
    let acme = h.tenant("acme");
    h.deploy(
        &acme,
        "countdown",
        &countdown(),
        manifest(
            "counts down",
            json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]}),
        ),
    )
    .await;
    let server = start(&h).await;
    let addr = server.addr;
    // Pair: a short countdown completes.
    let a = http(
        addr,
        "POST",
        "/v1/functions/countdown/invoke",
        Some(&acme.agent),
        Some(json!({"input": {"n": 1000}})),
    )
    .await
    .expect("call");
    assert_eq!(
        (a.status, &a.body["output"]),
        (200, &json!({"done": true})),
        "{:?}",
        a.body
    );

    // A long one (seconds) is in flight when the shutdown starts.
    let agent = acme.agent.clone();
    let call = tokio::spawn(async move {
        http(
            addr,
            "POST",
            "/v1/functions/countdown/invoke",
            Some(&agent),
            Some(json!({"input": {"n": 1_000_000_000_u64}})),
        )
        .await
    });
    let running = || metric(&h.service.metrics_text(), "aifn_in_flight");
    for _ in 0..2_000 {
        if running() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(running(), 1, "the call never started");
    server.stop.send(()).expect("server is running");
    // The server stops accepting...
    let mut refused = false;
    for _ in 0..2_000 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(refused, "still accepting connections after shutdown");
    // ...while the call is still running...
    assert_eq!(
        running(),
        1,
        "the call ended before the shutdown took effect"
    );
    assert!(
        !server.task.is_finished(),
        "the server stopped with a call in flight"
    );
    // ...which completes, then the server stops.
    let a = call
        .await
        .expect("join")
        .expect("the in-flight call is answered");
    assert_eq!(
        (a.status, &a.body["output"]),
        (200, &json!({"done": true})),
        "{:?}",
        a.body
    );
    let served = tokio::time::timeout(Duration::from_secs(30), server.task)
        .await
        .expect("server stops")
        .expect("join");
    assert!(served.is_ok(), "{served:?}");

    // The audit log was closed cleanly, has the call, and verifies.
    let page = h
        .admin
        .audit_query(
            &aifn_types::TenantId::new("acme").expect("tenant"),
            &AuditQuery {
                limit: Some(10),
                ..AuditQuery::default()
            },
        )
        .expect("audit");
    let id = str_of(&a.body["execution_id"]);
    let entry = page
        .entries
        .iter()
        .map(|e| serde_json::to_value(e).expect("json"))
        .find(|e| e["execution_id"] == id);
    assert_eq!(entry.map(|e| e["outcome"].clone()), Some(json!("ok")));
    let report = aifn_service::verify_audit(&h.data_dir(), None).expect("verify");
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_attempts_over_a_socket_record_the_peer() {
    let h = Harness::new();
    let server = start(&h).await;
    let a = http(server.addr, "GET", "/v1/functions", None, None)
        .await
        .expect("call");
    assert_eq!((a.status, a.kind()), (401, "unauthenticated"));
    crate::check_error(axum::http::StatusCode::UNAUTHORIZED, &a.body, h.dir.path());
    let page = h
        .admin
        .security_query(&SecurityQuery::default())
        .expect("security");
    let events: Vec<Value> = page
        .entries
        .iter()
        .map(|e| serde_json::to_value(e).expect("json"))
        .filter(|e| e["stream"] == "security")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["route"], "/v1/functions");
    assert!(
        str_of(&events[0]["remote_addr"]).starts_with("127.0.0.1:"),
        "{events:?}"
    );
    let _ = server.stop.send(());
    server.task.await.expect("join").expect("serve");
}
