//! Integration tests of the HTTP API: a real `Service` in a temp dir behind
//! the real router, driven in-process with `tower::ServiceExt::oneshot`
//! (and, in `socket`, over a real TCP socket). Guests are inline WAT.
//!
//! Every error response any test triggers goes through [`check_error`]:
//! one body shape, a product kind that fits the status, and no internal
//! detail in the message.

mod approval;
mod authz;
mod conformance;
mod connections;
mod console;
mod cors;
mod duties;
mod errors;
mod invoke;
mod limits;
mod mcp;
mod policies;
mod regressions;
mod routes;
mod socket;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aifn_server::{AppState, ServerConfig};
use aifn_service::{Credential, DataDir, LocalAdmin, ManualClock, Origin, Service, ServiceConfig};
use aifn_test_support::{TempService, plenty_of_fuel};
use aifn_types::{AgentPolicy, FunctionPattern, Role, Subject, TenantId};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt as _;

pub(crate) use aifn_test_support::error_kinds;

/// Asserts the one error body ([`aifn_test_support::check_error_body`]):
/// a kind that fits the status and a message that leaks nothing, the data
/// dir included.
#[track_caller]
pub(crate) fn check_error(status: StatusCode, body: &Value, data_dir: &Path) {
    check_error_quoting(status, body, data_dir, "");
}

/// [`check_error`], where the message may quote `sent` (what the client
/// sent, lowercase) back.
pub(crate) fn check_error_quoting(status: StatusCode, body: &Value, data_dir: &Path, sent: &str) {
    let dir = data_dir.to_string_lossy();
    aifn_test_support::check_error_body(status.as_u16(), body, &[dir.as_ref()], sent);
}

/// The request target as the client sent it and with its query decoded:
/// the words an error message may quote back.
fn sent_words(uri: &axum::http::Uri) -> String {
    let mut sent = uri.to_string();
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        sent.push_str(&format!(" {k} {v}"));
    }
    sent.to_lowercase()
}

/// The error kind of an error body (`""` when there is none).
pub(crate) fn kind(body: &Value) -> &str {
    body["error"]["kind"].as_str().unwrap_or("")
}

/// The error message of an error body (`""` when there is none).
pub(crate) fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

/// An API key: its id (for revocation) and its secret.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) id: String,
    pub(crate) secret: String,
}

/// One key per role in one tenant; subjects are `<tenant>-<role>`.
#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub(crate) name: String,
    pub(crate) author: Key,
    pub(crate) approver: Key,
    pub(crate) admin: Key,
    pub(crate) agent: Key,
}

impl Tenant {
    pub(crate) fn key(&self, role: Role) -> &Key {
        match role {
            Role::Author => &self.author,
            Role::Approver => &self.approver,
            Role::Admin => &self.admin,
            Role::Agent => &self.agent,
        }
    }
}

/// A full answer, headers included.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

/// A service in a temp dir, its router, and a local admin for keys.
pub(crate) struct Harness {
    pub(crate) app: Router,
    pub(crate) service: Service,
    pub(crate) admin: LocalAdmin,
    // Last: the files outlive everything that has them open.
    pub(crate) dir: TempDir,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        Harness::with(|_| {}, ServerConfig::default())
    }

    /// A harness whose service config `tune` adjusts.
    pub(crate) fn with(tune: impl FnOnce(&mut ServiceConfig), server: ServerConfig) -> Harness {
        let TempService {
            service,
            admin,
            dir,
        } = TempService::open(|c| {
            plenty_of_fuel(c);
            tune(c);
        });
        let app = aifn_server::router(AppState::new(service.clone(), server));
        Harness {
            app,
            service,
            admin,
            dir,
        }
    }

    /// A harness whose budget windows are counted in `clock`.
    pub(crate) fn with_clock(clock: Arc<ManualClock>) -> Harness {
        let dir = tempfile::Builder::new()
            .prefix("aifn-test-")
            .tempdir()
            .expect("tempdir");
        let admin = LocalAdmin::open(DataDir::new(dir.path(), "test")).expect("local admin");
        let mut config = ServiceConfig {
            data_dir: dir.path().to_path_buf(),
            node: Some("test".into()),
            ..ServiceConfig::default()
        };
        plenty_of_fuel(&mut config);
        let service = Service::open_with_clock(config, clock).expect("service");
        let app = aifn_server::router(AppState::new(service.clone(), ServerConfig::default()));
        Harness {
            app,
            service,
            admin,
            dir,
        }
    }

    pub(crate) fn data_dir(&self) -> DataDir {
        DataDir::new(self.dir.path(), "test")
    }

    /// A new key (through the local admin, as `aifn keys create` does).
    pub(crate) fn key(&self, tenant: &str, role: Role, subject: &str) -> Key {
        let k = self
            .admin
            .create_key(
                &TenantId::new(tenant).expect("tenant"),
                role,
                &Subject::new(subject).expect("subject"),
                &Subject::new("test-admin").expect("actor"),
            )
            .expect("create key");
        Key {
            id: k.key_id,
            secret: k.secret,
        }
    }

    /// Revokes a key (through the local admin, while the service runs).
    pub(crate) fn revoke_key(&self, key: &Key) {
        self.admin
            .revoke_key(&key.id, &Subject::new("test-admin").expect("actor"))
            .expect("revoke key");
    }

    /// A tenant with one key per role, whose admin has granted its agent
    /// every function (`allow = ["*"]`): agents invoke nothing by default.
    /// The grant goes through the service with the admin's key, as the
    /// `PUT /v1/agents/{subject}/policy` handler does (synchronous, so that
    /// fixtures outside a runtime can make tenants); the `policies` tests
    /// make their own agents through the route.
    pub(crate) fn tenant(&self, name: &str) -> Tenant {
        let t = Tenant {
            name: name.to_owned(),
            author: self.key(name, Role::Author, &format!("{name}-author")),
            approver: self.key(name, Role::Approver, &format!("{name}-approver")),
            admin: self.key(name, Role::Admin, &format!("{name}-admin")),
            agent: self.key(name, Role::Agent, &format!("{name}-agent")),
        };
        let admin = self
            .service
            .authenticate(
                &Credential::ApiKey(t.admin.secret.clone()),
                Origin {
                    route: "(test fixture)",
                    remote: None,
                },
            )
            .expect("the admin key authenticates");
        let all = AgentPolicy {
            allow: vec![FunctionPattern::new("*").expect("pattern")],
            ..AgentPolicy::default()
        };
        let agent = Subject::new(format!("{name}-agent")).expect("subject");
        let p = self
            .service
            .set_policy(&admin, &agent, all)
            .expect("the admin grants its agent");
        assert_eq!(p.version, 1, "a fresh tenant's agent had no policy");
        t
    }

    /// Sets `agent`'s policy as `admin`, through the API; asserts it took
    /// and returns the answer (the policy with its version).
    pub(crate) async fn grant(&self, admin: &Key, agent: &str, policy: Value) -> Value {
        let (status, body) = self
            .request(
                "PUT",
                &format!("/v1/agents/{agent}/policy"),
                Some(admin),
                Some(policy),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "policy of {agent}: {body}");
        body
    }

    /// Sends a request; its status, headers and body bytes as they came.
    pub(crate) async fn exchange(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, headers, bytes)
    }

    /// Sends a request; error answers are checked with [`check_error`].
    pub(crate) async fn send(&self, req: Request<Body>) -> Reply {
        let sent = sent_words(req.uri());
        let (status, headers, bytes) = self.exchange(req).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else if headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
        {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"))
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        };
        if status.is_client_error() || status.is_server_error() {
            check_error_quoting(status, &body, self.dir.path(), &sent);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A request with a raw body and an optional `Authorization` header.
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = authorization {
            b = b.header(header::AUTHORIZATION, a.as_bytes());
        }
        self.send(b.body(Body::from(body)).expect("request")).await
    }

    /// A JSON request with `Authorization: Bearer <key>` when a key is given.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&Key>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.reply(method, path, key, body).await;
        (r.status, r.body)
    }

    /// [`Harness::request`] with the headers.
    pub(crate) async fn reply(
        &self,
        method: &str,
        path: &str,
        key: Option<&Key>,
        body: Option<Value>,
    ) -> Reply {
        let auth = key.map(|k| format!("Bearer {}", k.secret));
        let bytes = body
            .map(|b| serde_json::to_vec(&b).expect("json"))
            .unwrap_or_default();
        self.raw(method, path, auth.as_deref(), bytes).await
    }

    /// Uploads a module; returns the answer.
    pub(crate) async fn try_upload(
        &self,
        author: &Key,
        name: &str,
        module: &[u8],
        manifest: Value,
    ) -> (StatusCode, Value) {
        let body = json!({"manifest": manifest, "module": b64(module)});
        self.request(
            "POST",
            &format!("/v1/functions/{name}/versions"),
            Some(author),
            Some(body),
        )
        .await
    }

    /// Uploads a WAT module that must be accepted; returns the pending version.
    pub(crate) async fn upload(
        &self,
        author: &Key,
        name: &str,
        wat_src: &str,
        manifest: Value,
    ) -> Value {
        let (status, body) = self
            .try_upload(author, name, &wasm(wat_src), manifest)
            .await;
        assert_eq!(status, StatusCode::CREATED, "upload of {name}: {body}");
        assert_eq!(body["state"], "pending", "{body}");
        body
    }

    /// Uploads a WAT source (the server builds the module) that must be
    /// accepted; returns the pending version.
    pub(crate) async fn upload_source(
        &self,
        author: &Key,
        name: &str,
        text: &str,
        manifest: Value,
    ) -> Value {
        let body = json!({"manifest": manifest, "source": {"language": "wat", "text": text}});
        let (status, body) = self
            .request(
                "POST",
                &format!("/v1/functions/{name}/versions"),
                Some(author),
                Some(body),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "source upload of {name}: {body}"
        );
        assert_eq!(body["state"], "pending", "{body}");
        body
    }

    /// A GET whose answer's bytes are kept as they are (not parsed).
    pub(crate) async fn get_bytes(
        &self,
        path: &str,
        key: &Key,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let req = Request::builder()
            .method("GET")
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", key.secret))
            .body(Body::empty())
            .expect("request");
        self.exchange(req).await
    }

    /// Approves a version (asserting success); returns it.
    pub(crate) async fn approve(&self, approver: &Key, version: &Value) -> Value {
        let (status, body) = self
            .decide(
                approver,
                "approve",
                version,
                Some(json!({"sha256": version["sha256"], "notes": "reviewed"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "approve: {body}");
        assert_eq!(body["state"], "active", "{body}");
        body
    }

    /// POSTs `action` on the version described by `version` (its `name` and `version`).
    pub(crate) async fn decide(
        &self,
        key: &Key,
        action: &str,
        version: &Value,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let path = format!(
            "/v1/functions/{}/versions/{}/{action}",
            str_of(&version["name"]),
            version["version"]
        );
        self.request("POST", &path, Some(key), body).await
    }

    /// Uploads and approves: the function's active version.
    pub(crate) async fn deploy(
        &self,
        t: &Tenant,
        name: &str,
        wat_src: &str,
        manifest: Value,
    ) -> Value {
        let v = self.upload(&t.author, name, wat_src, manifest).await;
        self.approve(&t.approver, &v).await
    }

    /// Invokes a function with `input`.
    pub(crate) async fn invoke(
        &self,
        agent: &Key,
        name: &str,
        input: Value,
    ) -> (StatusCode, Value) {
        self.request(
            "POST",
            &format!("/v1/functions/{name}/invoke"),
            Some(agent),
            Some(json!({"input": input})),
        )
        .await
    }

    /// The tenant's audit entries (newest first) with the given query.
    pub(crate) async fn audit(&self, key: &Key, query: &str) -> Vec<Value> {
        let (status, body) = self
            .request("GET", &format!("/v1/audit?{query}"), Some(key), None)
            .await;
        assert_eq!(status, StatusCode::OK, "audit: {body}");
        body["entries"].as_array().expect("entries").clone()
    }

    /// `aifn_in_flight` from `/metrics`.
    pub(crate) async fn in_flight(&self) -> u64 {
        let r = self.raw("GET", "/metrics", None, Vec::new()).await;
        metric(str_of(&r.body), "aifn_in_flight")
    }

    /// Waits (bounded) until `aifn_in_flight` is at least `n`.
    pub(crate) async fn wait_in_flight(&self, n: u64) {
        for _ in 0..2_000 {
            if self.in_flight().await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never saw {n} invocations in flight");
    }
}

/// The value of an unlabelled metric line in a Prometheus text exposition.
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in {text}"))
}

pub(crate) fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn wasm(wat_src: &str) -> Vec<u8> {
    wat::parse_str(wat_src).expect("valid wat")
}

/// A manifest with a description and an input schema.
pub(crate) fn manifest(description: &str, input_schema: Value) -> Value {
    json!({"description": description, "input_schema": input_schema})
}

/// The schema of [`ECHO`]'s input.
pub(crate) fn text_schema() -> Value {
    json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": false})
}

/// Any JSON object (tool schemas are object schemas).
pub(crate) fn any_schema() -> Value {
    json!({"type": "object"})
}

/// The ABI v1 imports the modules below use.
const IMPORTS: &str = r#"
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
"#;

/// Returns its input as its output.
pub(crate) fn echo() -> String {
    aifn_test_support::ECHO_WAT.to_owned()
}

/// Writes `output` (raw bytes, WAT string escapes allowed) and returns `code`.
pub(crate) fn constant(output: &str, len: usize, code: i32) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 0) "{output}")
  (func (export "aifn_call") (result i32)
    (call $output_write (i32.const 0) (i32.const {len}))
    (i32.const {code})))"#
    )
}

/// Outputs the JSON string `"<text>"` (text must need no escaping).
pub(crate) fn says(text: &str) -> String {
    constant(&format!("\\\"{text}\\\""), text.len() + 2, 0)
}

/// Loops forever: ends by its deadline (`timeout`) or its fuel.
pub(crate) fn spin() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (loop $l (br $l))
    (i32.const 0)))"#
    )
}

/// Traps at once (`unreachable`).
pub(crate) fn trap() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    unreachable))"#
    )
}

/// Counts down from its input (a bare decimal integer) and then outputs
/// `{"done":true}`: a call that is slow but succeeds.
pub(crate) fn countdown() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 0) "{{\"done\":true}}")
  (func (export "aifn_call") (result i32)
    (local $n i32) (local $i i32) (local $d i32) (local $count i64)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 1024))
    (block $parsed
      (loop $digit
        (br_if $parsed (i32.ge_u (local.get $i) (local.get $n)))
        ;; The digits of the input (`{{"n": 1000}}`), other bytes skipped.
        (local.set $d (i32.sub (i32.load8_u offset=1024 (local.get $i)) (i32.const 48)))
        (if (i32.lt_u (local.get $d) (i32.const 10))
          (then
            (local.set $count
              (i64.add
                (i64.mul (local.get $count) (i64.const 10))
                (i64.extend_i32_u (local.get $d))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digit)))
    (block $done
      (loop $tick
        (br_if $done (i64.eqz (local.get $count)))
        (local.set $count (i64.sub (local.get $count) (i64.const 1)))
        (br $tick)))
    (call $output_write (i32.const 0) (i32.const 13))
    (i32.const 0)))"#
    )
}

#[tokio::test]
async fn the_harness_checks_error_bodies() {
    let h = Harness::new();
    // A well-formed error passes the check...
    check_error(
        StatusCode::NOT_FOUND,
        &json!({"error": {"kind": "not_found", "message": "function x not found"}}),
        h.dir.path(),
    );
    // ...and the check can fail: a wrong kind, a foreign shape, a leak.
    let bad = [
        (
            StatusCode::NOT_FOUND,
            json!({"error": {"kind": "forbidden", "message": "x"}}),
        ),
        (StatusCode::NOT_FOUND, json!({"error": "not_found"})),
        (
            StatusCode::NOT_FOUND,
            json!({"kind": "not_found", "message": "x"}),
        ),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": {"kind": "bogus", "message": "x"}}),
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"kind": "internal", "message": "rusqlite::Error: no such table"}}),
        ),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": {"kind": "invalid_request", "message": "expected struct UploadBody"}}),
        ),
    ];
    for (status, body) in bad {
        let caught = std::panic::catch_unwind(|| check_error(status, &body, h.dir.path()));
        assert!(caught.is_err(), "check_error accepted {status} {body}");
    }
    let path_leak = json!({"error": {"kind": "internal", "message": format!("cannot open {}", h.dir.path().display())}});
    assert!(
        std::panic::catch_unwind(|| check_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &path_leak,
            h.dir.path()
        ))
        .is_err()
    );
}
