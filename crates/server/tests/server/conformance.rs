//! The OpenAPI document against a real server on a loopback socket:
//! generated requests (proptest) to every route, with every method, every
//! kind of key, valid and invalid path segments, query strings and bodies.
//! Every answer's status must be documented for its route and method, its
//! headers and body must match what the document says for that status
//! (`$ref`s resolved against `components`), and the order of the checks
//! must hold: no key → 401, the wrong role → 403 whatever the query, a
//! query the document calls malformed → 400 and a well-formed one never.

mod cases;
mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use aifn_server::{AppState, ROUTES, ServerConfig};
use aifn_service::TenantLimits;
use aifn_types::Role;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{Harness, Key, Tenant, b64, echo, manifest, text_schema, trap, wasm};
use cases::{
    Auth, BodyKind, CAPTURED, CASES, Case, INPUT_BYTES, MODULE_BYTES, PLAIN, edge_cases, is_open,
    roles_of,
};
use wire::{Document, exchange};

/// The server under test and everything a request can name.
struct World {
    rt: tokio::runtime::Runtime,
    h: Harness,
    addr: SocketAddr,
    acme: Tenant,
    beta: Tenant,
    revoked: Key,
    /// The sha256 of the echo module, which every uploaded version here has.
    echo_sha: String,
    /// The ids of a captured execution (of `cap`) and an uncaptured one.
    captured: String,
    plain: String,
    doc: Document,
    /// `(method path-template status)` → answers seen.
    seen: Mutex<BTreeMap<String, u32>>,
    /// Wrong-role requests answered 400 before 403 on routes with a body
    /// or path (reported, not failed: the issue orders roles before query).
    late_role_checks: Mutex<Vec<String>>,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let h = Harness::with(
            |c| {
                c.limits.input_bytes = INPUT_BYTES;
                c.limits.module_bytes = MODULE_BYTES;
                c.tenant = TenantLimits {
                    rate_per_second: 20.0,
                    burst: 10,
                    ..TenantLimits::default()
                };
            },
            ServerConfig::default(),
        );
        let acme = h.tenant("acme");
        let beta = h.tenant("beta");
        let revoked = h.key("acme", Role::Admin, "acme-gone");
        h.revoke_key(&revoked);
        // The policy routes' subject: an agent with a policy to read.
        h.key("acme", Role::Agent, "bot-1");
        rt.block_on(h.grant(&acme.admin, "bot-1", json!({"allow": ["echo"]})));
        let echo_sha = rt.block_on(async {
            let text = || manifest("echo", text_schema());
            let v = h.deploy(&acme, "echo", &echo(), text()).await;
            h.deploy(
                &acme,
                "boom",
                &trap(),
                manifest("traps", json!({"type": "object"})),
            )
            .await;
            h.deploy(&acme, "victim", &echo(), text()).await;
            h.upload(&acme.author, "pend", &echo(), text()).await;
            h.upload_source(&acme.author, "src", &echo(), text()).await;
            crate::str_of(&v["sha256"]).to_owned()
        });
        let (captured, plain) = rt.block_on(async {
            let mut m = manifest("captured", text_schema());
            m["capture"] = json!({"retention_days": 1});
            h.deploy(&acme, "cap", &echo(), m).await;
            let mut ids = Vec::new();
            for name in ["cap", "echo"] {
                let (status, body) = h.invoke(&acme.agent, name, json!({"text": "hi"})).await;
                assert_eq!(status, axum::http::StatusCode::OK, "{body}");
                ids.push(crate::str_of(&body["execution_id"]).to_owned());
            }
            (ids.remove(0), ids.remove(0))
        });
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = AppState::new(h.service.clone(), ServerConfig::default());
        rt.spawn(aifn_server::serve(
            listener,
            state,
            std::future::pending::<()>(),
        ));
        World {
            rt,
            h,
            addr,
            acme,
            beta,
            revoked,
            echo_sha,
            captured,
            plain,
            doc: Document::new(),
            seen: Mutex::new(BTreeMap::new()),
            late_role_checks: Mutex::new(Vec::new()),
        }
    }

    fn authorization(&self, case: &Case) -> Option<String> {
        let bearer = |k: &Key| Some(format!("Bearer {}", k.secret));
        let allowed = roles_of(case.template(), case.route_method());
        match case.auth {
            Auth::Missing => None,
            Auth::Allowed => bearer(
                self.acme
                    .key(allowed.first().copied().unwrap_or(Role::Admin)),
            ),
            Auth::Role(r) => bearer(self.acme.key(r)),
            Auth::Stranger(r) => bearer(self.beta.key(r)),
            Auth::Revoked => bearer(&self.revoked),
            Auth::Malformed => Some("Bearer not-a-key".into()),
            Auth::Unknown => {
                let mut s = self.acme.admin.secret.clone();
                let last = if s.ends_with('A') { 'B' } else { 'A' };
                s.pop();
                s.push(last);
                Some(format!("Bearer {s}"))
            }
            Auth::Basic => Some("Basic YWRtaW46YWRtaW4=".into()),
        }
    }

    fn body(&self, case: &Case) -> Vec<u8> {
        let t = case.template();
        let module = || b64(&wasm(&echo()));
        let valid = || {
            if t.ends_with("/policy") {
                json!({"allow": ["echo", "boom"], "budget": {"calls_per_hour": 1_000_000}})
            } else if t.ends_with("/mode") {
                json!({"mode": "allowlist"})
            } else if t.ends_with("/budget") {
                json!({"calls_per_hour": 1_000_000})
            } else if t.ends_with("/output-guard") {
                json!({"mode": "flag", "patterns": [{"name": "employee_id", "regex": "E[0-9]{6}"}]})
            } else if t.ends_with("/invoke") || t.ends_with("/test") {
                json!({"input": {"text": "hi"}, "user_id": "u1"})
            } else if t.ends_with("/versions") {
                json!({"manifest": manifest("echo", text_schema()), "module": module()})
            } else if t.ends_with("/revoke") {
                json!({"notes": "done"})
            } else {
                json!({"sha256": "0".repeat(64), "notes": "reviewed"})
            }
        };
        let v = match case.body {
            BodyKind::Nothing => return Vec::new(),
            BodyKind::NotJson => return b"{\"input\": ".to_vec(),
            BodyKind::Valid => valid(),
            BodyKind::RealSha => json!({"sha256": self.echo_sha, "notes": "reviewed"}),
            BodyKind::UnknownField => {
                let mut v = valid();
                v["colour"] = json!("red");
                v
            }
            BodyKind::WrongTypes => {
                json!({"input": 1, "notes": 7, "sha256": [], "manifest": "m", "module": 3, "user_id": 9})
            }
            BodyKind::Empty => json!({}),
            BodyKind::OverInput => {
                json!({"input": {"text": "x".repeat(INPUT_BYTES as usize + 10)}})
            }
            BodyKind::Huge if t.ends_with("/versions") => {
                let big = vec![0u8; MODULE_BYTES as usize + 1];
                json!({"manifest": manifest("echo", text_schema()), "module": b64(&big)})
            }
            BodyKind::Huge => {
                json!({"input": {"text": "x".repeat(INPUT_BYTES as usize + 80 * 1024)}, "notes": "n"})
            }
            BodyKind::BadModule => {
                json!({"manifest": manifest("bad", text_schema()), "module": b64(b"not wasm at all")})
            }
            BodyKind::ForbiddenImport => {
                let m = wasm(
                    r#"(module (import "env" "open" (func)) (memory (export "memory") 1)
                       (func (export "aifn_call") (result i32) (i32.const 0)))"#,
                );
                json!({"manifest": manifest("bad", text_schema()), "module": b64(&m)})
            }
            BodyKind::StringSchema => {
                json!({"manifest": manifest("string", json!({"type": "string"})), "module": module()})
            }
        };
        serde_json::to_vec(&v).expect("json")
    }

    /// The case's path with the real execution ids.
    fn path(&self, case: &Case) -> String {
        case.path()
            .replace(CAPTURED, &self.captured)
            .replace(PLAIN, &self.plain)
    }

    /// Sends the case and checks the answer against the document.
    fn check(&self, case: &Case) -> Result<(), String> {
        let body = self.body(case);
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            case.method,
            self.path(case),
            self.addr,
            body.len()
        );
        if let Some(a) = self.authorization(case) {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let answer = self
            .rt
            .block_on(exchange(self.addr, head, body))
            .map_err(|e| format!("{case:?}: no answer: {e}"))?;
        let text = String::from_utf8_lossy(&answer.body);
        let shown: String = text.chars().take(2000).collect();
        let fail = |why: String| {
            Err(format!(
                "{why}\n  request: {case:?}\n  sent:    {} {}\n  status:  {}\n  headers: {:?}\n  body:    {shown}",
                case.method,
                case.path(),
                answer.status,
                answer.headers
            ))
        };
        let method = case.method;
        let template = case.template();
        // The method the answer is counted under: the one sent when the
        // path serves it (a path may serve several), else the route's.
        let served_as = if ROUTES.contains(&(method, template)) {
            method
        } else {
            case.route_method()
        };
        let status = answer.status.to_string();
        let documented = match self.doc.operation(template, method) {
            Some(op) => op["responses"].get(&status).map(|r| (op, r)),
            // A method the path does not answer: 405, as documented on
            // the path's operation.
            None => match self.doc.operation(template, case.route_method()) {
                Some(op) if answer.status == 405 => op["responses"].get("405").map(|r| (op, r)),
                _ => {
                    return fail(format!(
                        "{method} is not served on {template}: expected 405"
                    ));
                }
            },
        };
        let Some((_, response)) = documented else {
            return fail(format!(
                "status {status} is not documented for {method} {template}"
            ));
        };
        *self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(format!("{served_as} {template} {status}"))
            .or_default() += 1;
        if let Some(headers) = response["headers"].as_object() {
            for (name, h) in headers {
                if h["required"] == true && !answer.headers.contains_key(&name.to_lowercase()) {
                    return fail(format!("no {name} header, which the document promises"));
                }
            }
        }
        let content_type = answer
            .headers
            .get("content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let Some(content) = response["content"].as_object() else {
            // A status documented without a body (204) must have none.
            if answer.body.is_empty() && answer.status == 204 {
                return self.check_order(case, answer.status, &text).or_else(fail);
            }
            return fail("the document has no content for this status".into());
        };
        if !content.contains_key(&content_type) {
            return fail(format!("content type {content_type:?} is not documented"));
        }
        if content_type == "application/json" {
            let value: Value = match serde_json::from_slice(&answer.body) {
                Ok(v) => v,
                Err(e) => return fail(format!("body is not JSON: {e}")),
            };
            let key = format!("{} {template} {status}", method.to_lowercase());
            let key = if self.doc.validators.contains_key(&key) {
                key
            } else {
                format!("{} {template} {status}", case.route_method().to_lowercase())
            };
            if let Some(v) = self.doc.validators.get(&key) {
                let errors: Vec<String> = v
                    .iter_errors(&value)
                    .take(5)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                if !errors.is_empty() {
                    return fail(format!("body does not match the schema: {errors:?}"));
                }
            }
            if answer.status >= 400 {
                let status = axum::http::StatusCode::from_u16(answer.status).expect("status");
                let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::check_error(status, &value, self.h.dir.path())
                }));
                if let Err(p) = checked {
                    let why = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    return fail(format!("not the one error body: {why}"));
                }
            }
        }
        self.check_order(case, answer.status, &text).or_else(fail)
    }

    /// Which check comes first: the route, the key, the role, the query.
    fn check_order(&self, case: &Case, status: u16, body: &str) -> Result<(), String> {
        let method = case.method;
        let template = case.template();
        if method != case.route_method() && !ROUTES.contains(&(method, template)) {
            return if status == 405 {
                Ok(())
            } else {
                Err(format!("{method} on {template} answered {status}, not 405"))
            };
        }
        if is_open(template) {
            return Ok(());
        }
        let valid_key = match case.auth {
            Auth::Allowed | Auth::Role(_) | Auth::Stranger(_) => true,
            Auth::Missing | Auth::Revoked | Auth::Malformed | Auth::Unknown | Auth::Basic => false,
        };
        if !valid_key {
            return if status == 401 {
                Ok(())
            } else {
                Err(format!(
                    "a request without a valid key answered {status}, not 401"
                ))
            };
        }
        let role = match case.auth {
            Auth::Role(r) | Auth::Stranger(r) => Some(r),
            _ => None,
        };
        let allowed = roles_of(template, method);
        let wrong_role = role.is_some_and(|r| !allowed.is_empty() && !allowed.contains(&r));
        let has_query = ["/v1/tools", "/v1/audit"].contains(&template);
        // Routes whose query is parsed after the role: the wrong role is
        // 403 whatever it says. (A bundle's query is also checked against
        // the log, so only its role comes first here.)
        let role_first = has_query || template == "/v1/audit/bundle";
        if wrong_role {
            if role_first {
                return if status == 403 {
                    Ok(())
                } else {
                    Err(format!("the wrong role answered {status}, not 403"))
                };
            }
            if status == 400 {
                self.late_role_checks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{method} {} {:?}", case.path(), case.body));
            }
            return Ok(());
        }
        // Another tenant may have made its own `echo`; it must never see acme's.
        if matches!(case.auth, Auth::Stranger(_))
            && (200..300).contains(&status)
            && body.contains("acme")
        {
            return Err("another tenant's key saw acme's records".into());
        }
        if has_query {
            let repeated_audit = template == "/v1/audit" && {
                let pairs = case.pairs();
                let keys: std::collections::BTreeSet<_> = pairs.iter().map(|p| &p.0).collect();
                keys.len() < pairs.len()
            };
            let well_formed = self.doc.query_is_well_formed(case, method);
            if repeated_audit {
                // Last-one-wins or refused: both documented.
            } else if well_formed && status == 400 {
                return Err("a query the document calls well-formed answered 400".into());
            } else if !well_formed && status != 400 {
                return Err(format!(
                    "a query the document calls malformed answered {status}, not 400"
                ));
            }
        }
        Ok(())
    }
}

#[test]
fn every_answer_of_a_real_server_is_documented() {
    let started = Instant::now();
    let world = World::new();
    let edges = edge_cases();
    let mut failures = Vec::new();
    for c in &edges {
        if let Err(e) = world.check(c) {
            failures.push(e);
        }
    }
    // Every route answered its happy path with a documented success.
    let seen = world.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for (method, template) in ROUTES {
        let ok = seen
            .keys()
            .any(|k| k.starts_with(&format!("{method} {template} 2")));
        assert!(
            ok,
            "{method} {template} never succeeded: {seen:?}\n{failures:#?}"
        );
    }
    for status in [
        "413", "422", "429", "405", "401", "403", "404", "409", "400",
    ] {
        assert!(
            seen.keys().any(|k| k.ends_with(&format!(" {status}"))),
            "no edge case answered {status}: {seen:?}"
        );
    }
    let config = Config {
        cases: CASES,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let random = runner.run(&cases::case(), |c| {
        world.check(&c).map_err(TestCaseError::fail)
    });
    let seen = world.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let late = world
        .late_role_checks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    eprintln!(
        "conformance: {} edge cases + {CASES} generated in {:.1} s; answers per route and status: {seen:#?}",
        edges.len(),
        started.elapsed().as_secs_f64()
    );
    if !late.is_empty() {
        eprintln!(
            "note: {} wrong-role requests with a bad path or body answered 400 before 403, e.g. {:?}",
            late.len(),
            &late[..late.len().min(5)]
        );
    }
    let random = random.err().map(|e| format!("generated: {e}"));
    failures.extend(random);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
