//! MCP at `/mcp` on a real socket, driven by the official Rust SDK's
//! client (`rmcp`): tools listed per agent, calls with structured content,
//! failures and schema violations as `isError` results, the 401 with its
//! metadata document, 403 for other roles and foreign origins, and a
//! cancelled call interrupting its guest.

use std::collections::HashMap;
use std::net::SocketAddr;

use aifn_server::{AppState, ServerConfig};
use axum::http::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion, RequestMetaObject,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{Harness, Key, Tenant, echo, manifest, spin, str_of, text_schema, trap};

type Client = RunningService<RoleClient, ClientConfig>;

/// Serves the harness's service on a socket; the task ends with the test.
async fn start(h: &Harness, config: ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = AppState::new(h.service.clone(), config);
    tokio::spawn(aifn_server::serve(listener, state, std::future::pending()));
    addr
}

/// A client of `/mcp` with `key` and extra headers, on `version`.
async fn try_connect(
    addr: SocketAddr,
    key: &Key,
    version: ProtocolVersion,
    headers: &[(&'static str, &str)],
) -> Result<Client, rmcp::service::ClientInitializeError> {
    let custom: HashMap<HeaderName, HeaderValue> = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_static(k),
                HeaderValue::from_str(v).expect("value"),
            )
        })
        .collect();
    // In a whole-workspace build the CLI's `reqwest-tls-no-provider`
    // feature reaches this client too, which then needs a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
            .auth_header(key.secret.clone())
            .custom_headers(custom),
    );
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("aifn-tests", "1"),
    )
    .with_protocol_version(version)
    .serve(transport)
    .await
}

async fn connect(addr: SocketAddr, key: &Key, version: ProtocolVersion) -> Client {
    try_connect(addr, key, version, &[]).await.expect("connect")
}

/// A harness whose host lets a call run for a minute (the cancelled one).
fn harness() -> Harness {
    Harness::with(|c| c.limits.timeout_ms = 60_000, ServerConfig::default())
}

/// The agent may call every function (policies deny by default).
async fn grant_all(h: &Harness, t: &Tenant) {
    let (status, body) = h
        .request(
            "PUT",
            &format!("/v1/agents/{}-agent/policy", t.name),
            Some(&t.admin),
            Some(json!({"allow": ["*"]})),
        )
        .await;
    assert_eq!(status, 200, "grant: {body}");
}

/// A tenant with `echo` (an output schema), `fails` (traps) and `spin`
/// (loops until a one-minute deadline).
async fn world(h: &Harness) -> Tenant {
    let t = h.tenant("acme");
    let mut m = manifest("Echoes its input.", text_schema());
    m["output_schema"] = text_schema();
    h.deploy(&t, "echo", &echo(), m).await;
    h.deploy(
        &t,
        "fails",
        &trap(),
        manifest("Traps.", json!({"type": "object"})),
    )
    .await;
    let mut m = manifest("Never ends.", json!({"type": "object"}));
    m["limits"] = json!({"timeout_ms": 60_000});
    h.deploy(&t, "spin", &spin(), m).await;
    grant_all(h, &t).await;
    t
}

fn call(name: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
        .with_arguments(args.as_object().expect("object").clone())
}

fn text(r: &CallToolResult) -> Value {
    let t = &r.content[0].as_text().expect("text content").text;
    serde_json::from_str(t).expect("JSON text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_listed_and_called_over_both_revisions() {
    let h = harness();
    let t = world(&h).await;
    let addr = start(&h, ServerConfig::default()).await;
    for version in [ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25] {
        let client = connect(addr, &t.agent, version.clone()).await;
        let tools = client.list_tools(None).await.expect("tools/list");
        let names: Vec<&str> = tools.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["echo", "fails", "spin"], "{version}");
        let echo = &tools.tools[0];
        assert_eq!(echo.description.as_deref(), Some("Echoes its input."));
        assert_eq!(Value::Object((*echo.input_schema).clone()), text_schema());
        let out = echo.output_schema.as_ref().expect("output schema");
        assert_eq!(Value::Object((**out).clone()), text_schema());
        assert!(tools.tools[1].output_schema.is_none());
        let a = echo.annotations.as_ref().expect("annotations");
        assert_eq!(
            (
                a.read_only_hint,
                a.destructive_hint,
                a.idempotent_hint,
                a.open_world_hint
            ),
            (Some(true), Some(false), Some(true), Some(false))
        );

        let r = client
            .call_tool(call("echo", json!({"text": "hi"})))
            .await
            .expect("tools/call");
        assert_eq!(r.is_error, Some(false), "{r:?}");
        assert_eq!(r.structured_content, Some(json!({"text": "hi"})));
        assert_eq!(text(&r), json!({"text": "hi"}), "the text fallback");
        client.cancel().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_has_private_cache_hints() {
    let h = harness();
    let t = world(&h).await;
    let addr = start(&h, ServerConfig::default()).await;
    let client = connect(addr, &t.agent, ProtocolVersion::V_2026_07_28).await;
    let tools = client.list_tools(None).await.expect("tools/list");
    assert_eq!(tools.cache_scope, Some(rmcp::model::CacheScope::Private));
    assert_eq!(tools.ttl_ms, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_violations_are_error_results_and_recorded() {
    let h = harness();
    let t = world(&h).await;
    let addr = start(&h, ServerConfig::default()).await;
    let client = connect(addr, &t.agent, ProtocolVersion::V_2026_07_28).await;

    let r = client
        .call_tool(call("fails", json!({})))
        .await
        .expect("call");
    assert_eq!(r.is_error, Some(true));
    assert_eq!(text(&r)["error"]["kind"], "trap", "{r:?}");
    assert!(r.structured_content.is_none());

    let r = client
        .call_tool(call("echo", json!({"text": 42, "extra": "secret-value"})))
        .await
        .expect("call");
    assert_eq!(r.is_error, Some(true));
    let body = text(&r);
    assert_eq!(body["error"]["kind"], "invalid_input", "{body}");
    let violations = body["error"]["violations"].as_array().expect("violations");
    let paths: Vec<&str> = violations.iter().map(|v| str_of(&v["path"])).collect();
    assert!(paths.contains(&"/text"), "{body}");
    assert!(
        !body.to_string().contains("secret-value"),
        "no values: {body}"
    );

    let r = client
        .call_tool(call("nope", json!({})))
        .await
        .expect("call");
    assert_eq!(r.is_error, Some(true));
    assert_eq!(text(&r)["error"]["kind"], "not_found");

    // The user id and traceparent from `_meta` reach the record.
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut params = call("echo", json!({"text": "x"}));
    let mut meta = RequestMetaObject::new();
    meta.insert("aifn/user_id".into(), json!("user-7"));
    meta.set_traceparent(trace);
    params.meta = Some(meta);
    let r = client.call_tool(params).await.expect("call");
    let id = r
        .meta
        .as_ref()
        .and_then(|m| m.get("aifn/execution_id"))
        .expect("id");
    let entries = h.audit(&t.admin, "stream=execution&limit=100").await;
    let kinds: Vec<&str> = entries.iter().map(|e| str_of(&e["outcome"])).collect();
    for k in ["trap", "invalid_input", "ok"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let rec = entries
        .iter()
        .find(|e| &e["execution_id"] == id)
        .expect("record");
    assert_eq!(rec["user_id"], "user-7", "{rec}");
    assert_eq!(rec["traceparent"], trace, "{rec}");
}

/// One raw HTTP/1.1 exchange: status, lower-cased head, body.
async fn raw(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).await.expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_lowercase(), body.to_owned())
}

fn post(addr: SocketAddr, extra: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_is_401_naming_the_metadata_document() {
    let h = harness();
    let t = world(&h).await;
    let addr = start(&h, ServerConfig::default()).await;
    for auth in ["", "Authorization: Bearer not-a-key\r\n"] {
        let (status, head, _) = raw(addr, &post(addr, auth)).await;
        assert_eq!(status, 401, "{head}");
        let expected = format!(
            "www-authenticate: bearer resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource\""
        );
        assert!(head.contains(&expected), "{head}");
    }
    let get = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, _, body) = raw(addr, &get(path)).await;
        assert_eq!(status, 200);
        let doc: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["authorization_servers"], json!([]));
        assert_eq!(doc["resource_name"], "aifn");
    }
    // The attempts are in the security stream, as on every route.
    let page = h
        .admin
        .security_query(&aifn_service::SecurityQuery::default())
        .expect("security");
    let at_mcp = page
        .entries
        .iter()
        .map(|e| serde_json::to_value(e).expect("json"))
        .filter(|e| e["stream"] == "security" && e["route"] == "/mcp")
        .count();
    assert_eq!(at_mcp, 2, "{:?}", page.entries);
    // With the key, the same request passes.
    let auth = format!("Authorization: Bearer {}\r\n", t.agent.secret);
    assert_eq!(raw(addr, &post(addr, &auth)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_roles_are_403() {
    let h = harness();
    let t = world(&h).await;
    let addr = start(&h, ServerConfig::default()).await;
    for key in [&t.author, &t.approver, &t.admin] {
        let auth = format!("Authorization: Bearer {}\r\n", key.secret);
        let (status, _, body) = raw(addr, &post(addr, &auth)).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("forbidden"), "{body}");
    }
    let auth = format!("Authorization: Bearer {}\r\n", t.agent.secret);
    assert_eq!(raw(addr, &post(addr, &auth)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_unless_configured() {
    let h = harness();
    let t = world(&h).await;
    let config = ServerConfig {
        cors_origins: vec!["https://app.example".into()],
        ..ServerConfig::default()
    };
    let addr = start(&h, config).await;
    let auth = format!("Authorization: Bearer {}\r\n", t.agent.secret);
    let with = |origin: &str| format!("{auth}Origin: {origin}\r\n");
    assert_eq!(
        raw(addr, &post(addr, &with("https://evil.example")))
            .await
            .0,
        403
    );
    assert_eq!(
        raw(addr, &post(addr, &with("https://app.example"))).await.0,
        200
    );
    assert_eq!(
        raw(addr, &post(addr, &with(&format!("http://{addr}"))))
            .await
            .0,
        200
    );
    // And through the SDK: a client sending a foreign Origin cannot connect.
    let evil = [("origin", "https://evil.example")];
    let refused = try_connect(addr, &t.agent, ProtocolVersion::V_2026_07_28, &evil).await;
    assert!(refused.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_interrupts_its_guest_and_the_record_says_so() {
    let h = harness();
    let t = world(&h).await;
    let addr = start(&h, ServerConfig::default()).await;
    let client = connect(addr, &t.agent, ProtocolVersion::V_2026_07_28).await;
    let peer = client.peer().clone();
    let call = tokio::spawn(async move { peer.call_tool(call("spin", json!({}))).await });
    h.wait_in_flight(1).await;
    // Dropping the request's future cancels it (the SDK closes its stream).
    call.abort();
    let mut record = None;
    for _ in 0..4_000 {
        let entries = h.audit(&t.admin, "stream=execution&limit=100").await;
        record = entries.into_iter().find(|e| e["function"] == "spin");
        if record.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let rec = record.expect("the spin call's record (it never ended)");
    assert_eq!(rec["outcome"], "timeout", "{rec}");
    assert_eq!(rec["cancelled"], true, "{rec}");
}
