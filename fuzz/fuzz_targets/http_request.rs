//! Request parsing of the HTTP API: fuzzed method, path, query, headers and
//! body through `aifn_server::router(...)` with `tower::ServiceExt::oneshot`.
//! The router never panics and always answers with a status; every error
//! answer is the one JSON error body `{"error": {"kind", "message"}}` with a
//! product kind that fits the status and a message that leaks nothing.
//!
//! The service behind it is real (a data dir under /dev/shm when present):
//! keys of every role in two tenants and one active echo function, so
//! fuzzed requests reach authentication, authorization, the handlers, the
//! schema check and the sandbox.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aifn_server::{AppState, ServerConfig};
use aifn_service::{Credential, Decision, Origin, TenantLimits, UploadRequest};
use aifn_test_support::{ECHO_WAT, TempService, check_error_body};
use aifn_types::{Manifest, Role};
use arbitrary::{Arbitrary, Unstructured};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tower::ServiceExt as _;

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Router,
    /// Secrets by role, tenant `acme`; then an agent of tenant `other`.
    keys: Vec<String>,
    sha256: String,
    /// The service, its admin and its data dir (never removed: the fixture
    /// lives as long as the process).
    svc: TempService,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let svc = TempService::open_in(&base, |config| {
            config.limits.fuel = 1_000_000;
            config.limits.timeout_ms = 200;
            config.tenant = TenantLimits { rate_per_second: 1e9, burst: u32::MAX, max_concurrent: 64, ..TenantLimits::default() };
        });
        let key = |tenant: &str, role: Role, subject: &str| svc.key(tenant, role, subject).secret;
        let keys = vec![
            key("acme", Role::Author, "acme-author"),
            key("acme", Role::Approver, "acme-approver"),
            key("acme", Role::Admin, "acme-admin"),
            key("acme", Role::Agent, "acme-agent"),
            key("other", Role::Agent, "other-agent"),
        ];
        let service = &svc.service;
        let origin = Origin { route: "/fuzz", remote: None };
        let who = |secret: &str| service.authenticate(&Credential::ApiKey(secret.to_owned()), origin).expect("key");
        let manifest = Manifest {
            description: "echoes its input".into(),
            input_schema: json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
            output_schema: None,
            limits: Default::default(),
            capture: None,
            output_guard: None,
            tests: Vec::new(),
        };
        let module = wat::parse_str(ECHO_WAT).expect("wat");
        let v = service
            .upload(&who(&keys[0]), UploadRequest { name: "echo".into(), manifest, module, source: None })
            .expect("upload");
        service.decide(&who(&keys[1]), ("echo", v.version), Decision::Approve { sha256: &v.sha256 }, "fuzz fixture").expect("approve");
        // Agents are denied by default; acme's may call everything.
        svc.grant("acme", "acme-agent", &["*"]);
        let app = aifn_server::router(AppState::new(service.clone(), ServerConfig::default()));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        Fixture { rt, app, keys, sha256: v.sha256, svc }
    })
}

#[derive(Debug, Arbitrary)]
enum MethodChoice {
    Get,
    Post,
    Put,
    Delete,
    Head,
    Options,
    Patch,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum PathChoice {
    /// One of the routes with its parameters filled in.
    Route { index: u8, name: NameChoice, version: VersionChoice, query: Option<String> },
    /// Anything at all.
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum NameChoice {
    Echo,
    Missing,
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum VersionChoice {
    One,
    Two,
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum AuthChoice {
    None,
    Key(u8),
    LowercaseScheme(u8),
    Raw(String),
    Bearer(String),
    RawBytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum BodyChoice {
    Empty,
    Raw(Vec<u8>),
    Invoke { input: u8, user_id: Option<String>, extra: bool },
    Decide { real_sha: bool, sha: Option<String>, notes: Option<String> },
    Upload { description: String, schema: u8, module: ModuleChoice },
}

#[derive(Debug, Arbitrary)]
enum ModuleChoice {
    Echo,
    Bytes(Vec<u8>),
    NotBase64(String),
}

#[derive(Debug, Arbitrary)]
struct Req {
    method: MethodChoice,
    path: PathChoice,
    auth: AuthChoice,
    content_type: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: BodyChoice,
}

/// A JSON value of bounded depth.
fn json_value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let pick = if depth == 0 { u.int_in_range(0..=4)? } else { u.int_in_range(0..=6)? };
    Ok(match pick {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => json!(i64::arbitrary(u)?),
        3 => serde_json::Number::from_f64(f64::arbitrary(u)?).map_or(Value::Null, Value::Number),
        4 => Value::String(String::arbitrary(u)?),
        5 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array((0..n).map(|_| json_value(u, depth - 1)).collect::<arbitrary::Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut m = serde_json::Map::new();
            for _ in 0..n {
                let k = if bool::arbitrary(u)? { "n".to_owned() } else { String::arbitrary(u)? };
                m.insert(k, json_value(u, depth - 1)?);
            }
            Value::Object(m)
        }
    })
}

fn body_bytes(f: &Fixture, b: &BodyChoice, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    Ok(match b {
        BodyChoice::Empty => Vec::new(),
        BodyChoice::Raw(bytes) => bytes.clone(),
        BodyChoice::Invoke { input, user_id, extra } => {
            let input = match input % 4 {
                0 => json!({"n": 1}),
                1 => json!({"n": "x"}),
                _ => json_value(u, 3)?,
            };
            let mut v = json!({"input": input});
            if let Some(user) = user_id {
                v["user_id"] = json!(user);
            }
            if *extra {
                v["tenant_id"] = json!("other");
            }
            serde_json::to_vec(&v).unwrap_or_default()
        }
        BodyChoice::Decide { real_sha, sha, notes } => {
            let mut v = json!({});
            if *real_sha {
                v["sha256"] = json!(f.sha256);
            } else if let Some(s) = sha {
                v["sha256"] = json!(s);
            }
            if let Some(n) = notes {
                v["notes"] = json!(n);
            }
            serde_json::to_vec(&v).unwrap_or_default()
        }
        BodyChoice::Upload { description, schema, module } => {
            let module = match module {
                ModuleChoice::Echo => base64::engine::general_purpose::STANDARD.encode(wat::parse_str(ECHO_WAT).unwrap_or_default()),
                ModuleChoice::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
                ModuleChoice::NotBase64(s) => s.clone(),
            };
            let schema = match schema % 3 {
                0 => json!({"type": "object"}),
                1 => json!({"type": 12}),
                _ => json_value(u, 2)?,
            };
            serde_json::to_vec(&json!({"manifest": {"description": description, "input_schema": schema}, "module": module}))
                .unwrap_or_default()
        }
    })
}

fn uri(p: &PathChoice) -> String {
    match p {
        PathChoice::Raw(s) => s.clone(),
        PathChoice::Route { index, name, version, query } => {
            let routes = aifn_server::ROUTES;
            let (_, template) = routes[usize::from(*index) % routes.len()];
            let name = match name {
                NameChoice::Echo => "echo".to_owned(),
                NameChoice::Missing => "missing".to_owned(),
                NameChoice::Raw(s) => s.clone(),
            };
            let version = match version {
                VersionChoice::One => "1".to_owned(),
                VersionChoice::Two => "2".to_owned(),
                VersionChoice::Raw(s) => s.clone(),
            };
            // Every other parameter (an agent's subject, an execution id)
            // takes the name's choice too.
            let mut path = template
                .replace("{name}", &name)
                .replace("{version}", &version)
                .replace("{subject}", &name)
                .replace("{id}", &name);
            if let Some(q) = query {
                path.push('?');
                path.push_str(q);
            }
            path
        }
    }
}

/// `s` with `%XX` escapes and `+` decoded, as the router decodes a query.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `sent` is everything the client sent (lowercase, decoded): a message may
/// quote the client's own words back (an unknown query parameter, a field
/// name), which leaks nothing.
fn check_error(status: StatusCode, body: &[u8], f: &Fixture, req: &str, sent: &str) {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{status}: error body is not JSON ({e}): {:?} for {req}", String::from_utf8_lossy(body)));
    // The data dir and every key are secrets a message must never name.
    let dir = f.svc.dir.path().to_string_lossy();
    let mut secrets: Vec<&str> = f.keys.iter().map(String::as_str).collect();
    secrets.push(&dir);
    check_error_body(status.as_u16(), &v, &secrets, sent);
}

/// Whether `described` ("METHOD URI") is a request to the console.
fn request_path_is_console(described: &str) -> bool {
    described.split_once(' ').is_some_and(|(_, uri)| {
        let path = uri.split_once("://").map_or(uri, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
        path == "/console" || path.starts_with("/console/")
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut u = Unstructured::new(data);
    let Ok(req) = Req::arbitrary(&mut u) else { return };
    let Ok(body) = body_bytes(f, &req.body, &mut u) else { return };
    let method = match &req.method {
        MethodChoice::Get => Method::GET,
        MethodChoice::Post => Method::POST,
        MethodChoice::Put => Method::PUT,
        MethodChoice::Delete => Method::DELETE,
        MethodChoice::Head => Method::HEAD,
        MethodChoice::Options => Method::OPTIONS,
        MethodChoice::Patch => Method::PATCH,
        MethodChoice::Other(m) => match Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            // hyper would refuse it before the router.
            Err(_) => return,
        },
    };
    let mut b = Request::builder().method(method.clone()).uri(uri(&req.path));
    let key = |i: &u8| f.keys[usize::from(*i) % f.keys.len()].clone();
    let auth: Option<Vec<u8>> = match &req.auth {
        AuthChoice::None => None,
        AuthChoice::Key(i) => Some(format!("Bearer {}", key(i)).into_bytes()),
        AuthChoice::LowercaseScheme(i) => Some(format!("bearer {}", key(i)).into_bytes()),
        AuthChoice::Raw(s) => Some(s.clone().into_bytes()),
        AuthChoice::Bearer(s) => Some(format!("Bearer {s}").into_bytes()),
        AuthChoice::RawBytes(v) => Some(v.clone()),
    };
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    if let Some(ct) = &req.content_type {
        b = b.header(header::CONTENT_TYPE, ct.as_str());
    }
    for (name, value) in &req.headers {
        b = b.header(name.as_str(), value.as_slice());
    }
    // A request the http crate refuses (bad URI, header name or value)
    // never reaches a server: hyper refuses it on the wire.
    let target = uri(&req.path);
    let mut sent = format!("{target} {} {:?}", percent_decoded(&target), req.content_type);
    for (name, value) in &req.headers {
        sent.push_str(&format!(" {name}: {}", String::from_utf8_lossy(value)));
    }
    sent.push_str(&String::from_utf8_lossy(&body));
    let sent = sent.to_lowercase();
    let Ok(request) = b.body(Body::from(body)) else { return };
    let described = format!("{method} {}", request.uri());
    let (status, content_type, bytes) = f.rt.block_on(async {
        let response = f.app.clone().oneshot(request).await.expect("the router is infallible");
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes().to_vec());
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, content_type, bytes)
    });
    assert!(!status.is_informational(), "{status} for {described}");
    if method == Method::HEAD {
        return;
    }
    // The console answers HTML pages and redirects (to its sign-in), never
    // the API's JSON body, and never an internal error.
    if request_path_is_console(&described) {
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "internal error for {described}");
        if status.is_client_error() || status.is_server_error() {
            let html = content_type.as_deref().is_some_and(|c| c.starts_with(b"text/html"));
            assert!(html || status == StatusCode::METHOD_NOT_ALLOWED, "{status} for {described}: not a page");
        }
        return;
    }
    if status.is_client_error() || status.is_server_error() {
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "internal error for {described}: {:?}", String::from_utf8_lossy(&bytes));
        check_error(status, &bytes, f, &described, &sent);
    } else {
        assert!(status.is_success(), "{status} for {described}");
        if status == StatusCode::NO_CONTENT {
            assert!(bytes.is_empty(), "204 with a body for {described}");
        } else if content_type.as_deref() == Some(b"application/wasm".as_slice()) {
            // A version's module (GET .../module): the wasm bytes themselves.
            assert!(bytes.starts_with(b"\0asm"), "{status}: application/wasm that is not a module for {described}");
        } else if !described.contains("/metrics") {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}) for {described}"));
            if let Some(kind) = v.get("error") {
                panic!("success status {status} with an error body {kind} for {described}");
            }
        }
    }
});
