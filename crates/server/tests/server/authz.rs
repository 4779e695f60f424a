//! The authorization matrix: every role × every authenticated route × own
//! or another tenant's target, against a table written out below; then
//! every key state (missing, malformed, unknown, revoked) on every route.
//! Separation of duties, hash binding and tenant isolation: `duties.rs`.

use aifn_server::ROUTES;
use aifn_service::SecurityQuery;
use aifn_types::Role;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{Harness, Key, Tenant, echo, kind, manifest, str_of, text_schema};

/// The authenticated routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    List,
    GetFunction,
    Upload,
    GetVersion,
    Approve,
    Reject,
    Revoke,
    TestRun,
    Diff,
    Module,
    Source,
    Invoke,
    Replay,
    Pending,
    Tools,
    Audit,
    Bundle,
    Agents,
    GetPolicy,
    PutPolicy,
    DeletePolicy,
    Usage,
    Tenant,
    PutMode,
    PutBudget,
    PutGuard,
}

impl Route {
    /// The route as written in `ROUTES`.
    fn template(self) -> (&'static str, &'static str) {
        match self {
            Route::List => ("GET", "/v1/functions"),
            Route::GetFunction => ("GET", "/v1/functions/{name}"),
            Route::Upload => ("POST", "/v1/functions/{name}/versions"),
            Route::GetVersion => ("GET", "/v1/functions/{name}/versions/{version}"),
            Route::Approve => ("POST", "/v1/functions/{name}/versions/{version}/approve"),
            Route::Reject => ("POST", "/v1/functions/{name}/versions/{version}/reject"),
            Route::Revoke => ("POST", "/v1/functions/{name}/versions/{version}/revoke"),
            Route::TestRun => ("POST", "/v1/functions/{name}/versions/{version}/test"),
            Route::Diff => ("GET", "/v1/functions/{name}/versions/{version}/diff"),
            Route::Module => ("GET", "/v1/functions/{name}/versions/{version}/module"),
            Route::Source => ("GET", "/v1/functions/{name}/versions/{version}/source"),
            Route::Invoke => ("POST", "/v1/functions/{name}/invoke"),
            Route::Replay => ("POST", "/v1/executions/{id}/replay"),
            Route::Pending => ("GET", "/v1/pending"),
            Route::Tools => ("GET", "/v1/tools"),
            Route::Audit => ("GET", "/v1/audit"),
            Route::Bundle => ("GET", "/v1/audit/bundle"),
            Route::Agents => ("GET", "/v1/agents"),
            Route::GetPolicy => ("GET", "/v1/agents/{subject}/policy"),
            Route::PutPolicy => ("PUT", "/v1/agents/{subject}/policy"),
            Route::DeletePolicy => ("DELETE", "/v1/agents/{subject}/policy"),
            Route::Usage => ("GET", "/v1/agents/{subject}/usage"),
            Route::Tenant => ("GET", "/v1/tenant"),
            Route::PutMode => ("PUT", "/v1/tenant/mode"),
            Route::PutBudget => ("PUT", "/v1/tenant/budget"),
            Route::PutGuard => ("PUT", "/v1/tenant/output-guard"),
        }
    }
}

const OK: u16 = 200;
const CREATED: u16 = 201;
const DELETED: u16 = 204;
/// Wrong role: 403 `forbidden`, whoever owns the target.
const DENIED: u16 = 403;
/// Another tenant's target: 404 `not_found`, never 403.
const HIDDEN: u16 = 404;
/// The route names no target, so there is no other tenant's to ask for
/// (list isolation is checked in `tenants_see_only_their_own`).
const NA: u16 = 0;

/// Expected status for a valid key of each role, as `(own tenant's target,
/// another tenant's target)`. Roles: author uploads and reads; approver
/// decides, reads and reads the audit log; admin reads and reads the
/// audit log; agent invokes, reads the tool catalog and reads active
/// versions only (it has no pending queue: 404, as if there were none).
/// Uploading to a name that exists in another tenant creates the caller's
/// own function (the tenant is the key's); the other tenant's is untouched.
/// Policies and tenant settings: the admin changes them, approvers and
/// authors read them, agents are refused every one; another tenant's
/// agent has no policy here (404). The approval tools: approvers (and an
/// author, on a version they uploaded) test-run; all but agents diff a
/// version and read its code; approvers and admins replay and bundle.
#[rustfmt::skip]
const MATRIX: &[(Route, [(u16, u16); 4])] = &[
    //                     author               approver            admin               agent
    (Route::List,        [(OK, NA),           (OK, NA),           (OK, NA),           (OK, NA)]),
    (Route::GetFunction, [(OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN)]),
    (Route::Upload,      [(CREATED, CREATED), (DENIED, DENIED),   (DENIED, DENIED),   (DENIED, DENIED)]),
    (Route::GetVersion,  [(OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN)]),
    (Route::Approve,     [(DENIED, DENIED),   (OK, HIDDEN),       (DENIED, DENIED),   (DENIED, DENIED)]),
    (Route::Reject,      [(DENIED, DENIED),   (OK, HIDDEN),       (DENIED, DENIED),   (DENIED, DENIED)]),
    (Route::Revoke,      [(DENIED, DENIED),   (OK, HIDDEN),       (DENIED, DENIED),   (DENIED, DENIED)]),
    (Route::TestRun,     [(OK, HIDDEN),       (OK, HIDDEN),       (DENIED, DENIED),   (DENIED, DENIED)]),
    (Route::Diff,        [(OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN),       (DENIED, DENIED)]),
    (Route::Module,      [(OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN),       (DENIED, DENIED)]),
    (Route::Source,      [(OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN),       (DENIED, DENIED)]),
    (Route::Invoke,      [(DENIED, DENIED),   (DENIED, DENIED),   (DENIED, DENIED),   (OK, HIDDEN)]),
    (Route::Replay,      [(DENIED, DENIED),   (OK, HIDDEN),       (OK, HIDDEN),       (DENIED, DENIED)]),
    (Route::Pending,     [(OK, NA),           (OK, NA),           (OK, NA),           (HIDDEN, NA)]),
    (Route::Tools,       [(DENIED, NA),       (DENIED, NA),       (DENIED, NA),       (OK, NA)]),
    (Route::Audit,       [(DENIED, NA),       (OK, NA),           (OK, NA),           (DENIED, NA)]),
    (Route::Bundle,      [(DENIED, DENIED),   (OK, HIDDEN),       (OK, HIDDEN),       (DENIED, DENIED)]),
    (Route::Agents,      [(OK, NA),           (OK, NA),           (OK, NA),           (DENIED, NA)]),
    (Route::GetPolicy,   [(OK, HIDDEN),       (OK, HIDDEN),       (OK, HIDDEN),       (DENIED, DENIED)]),
    (Route::PutPolicy,   [(DENIED, NA),       (DENIED, NA),       (OK, NA),           (DENIED, NA)]),
    (Route::DeletePolicy,[(DENIED, DENIED),   (DENIED, DENIED),   (DELETED, HIDDEN),  (DENIED, DENIED)]),
    (Route::Usage,       [(DENIED, NA),       (DENIED, NA),       (OK, NA),           (DENIED, NA)]),
    (Route::Tenant,      [(OK, NA),           (OK, NA),           (OK, NA),           (DENIED, NA)]),
    (Route::PutMode,     [(DENIED, NA),       (DENIED, NA),       (OK, NA),           (DENIED, NA)]),
    (Route::PutBudget,   [(DENIED, NA),       (DENIED, NA),       (OK, NA),           (DENIED, NA)]),
    (Route::PutGuard,    [(DENIED, NA),       (DENIED, NA),       (OK, NA),           (DENIED, NA)]),
];

/// Roles in the order of the matrix columns.
const ROLES: [Role; 4] = [Role::Author, Role::Approver, Role::Admin, Role::Agent];

fn expected_kind(status: u16) -> &'static str {
    match status {
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        _ => "",
    }
}

/// Two tenants with standing fixtures.
struct World {
    h: Harness,
    acme: Tenant,
    globex: Tenant,
    /// Each tenant's captured execution of `cap`.
    acme_execution: String,
    globex_execution: String,
}

/// Function names: `echo` (active, in both tenants' sight only acme's),
/// `decide` (acme's decision fixtures), `secret` (globex only, active),
/// `g_decide` (globex's decision fixtures), `g_upload` (globex only; acme's
/// author uploads to that name).
async fn world() -> World {
    let h = Harness::new();
    let acme = h.tenant("acme");
    let globex = h.tenant("globex");
    h.deploy(&acme, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    h.deploy(
        &globex,
        "secret",
        &echo(),
        manifest("globex's secret", text_schema()),
    )
    .await;
    h.upload(
        &globex.author,
        "g_upload",
        &echo(),
        manifest("globex's", text_schema()),
    )
    .await;
    // A source upload in each tenant, and a captured execution to replay
    // and bundle.
    let mut captured = Vec::new();
    for t in [&acme, &globex] {
        h.upload_source(
            &t.author,
            "src",
            &echo(),
            manifest("from source", text_schema()),
        )
        .await;
        let mut m = manifest("captured", text_schema());
        m["capture"] = json!({"retention_days": 1});
        h.deploy(t, "cap", &echo(), m).await;
        let (status, body) = h.invoke(&t.agent, "cap", json!({"text": "hi"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        captured.push(str_of(&body["execution_id"]).to_owned());
    }
    let globex_execution = captured.pop().expect("globex's");
    let acme_execution = captured.pop().expect("acme's");
    World {
        h,
        acme,
        globex,
        acme_execution,
        globex_execution,
    }
}

/// A target for a cell: the path and body, and, for decisions, the version
/// acted on (to check a refusal changed nothing).
struct Target {
    path: String,
    body: Option<Value>,
    version: Option<Value>,
}

impl World {
    /// Builds the request of one cell, creating a fresh version to decide
    /// on where the route needs one (so every cell could succeed but for
    /// the key).
    async fn target(&self, route: Route, own: bool) -> Target {
        let owner = if own { &self.acme } else { &self.globex };
        let (named, decide) = if own {
            ("echo", "decide")
        } else {
            ("secret", "g_decide")
        };
        let (_, template) = route.template();
        let fill = |name: &str, version: &Value| {
            template
                .replace("{name}", name)
                .replace("{version}", &version.to_string())
        };
        let agent = format!("{}-agent", owner.name);
        let on_agent = |subject: &str| template.replace("{subject}", subject);
        let plain = |body: Option<Value>| Target {
            path: template.to_owned(),
            body,
            version: None,
        };
        let plain_query = |path: String| Target {
            path,
            body: None,
            version: None,
        };
        let execution = if own {
            &self.acme_execution
        } else {
            &self.globex_execution
        };
        match route {
            Route::List
            | Route::Pending
            | Route::Tools
            | Route::Audit
            | Route::Agents
            | Route::Tenant => plain(None),
            Route::PutMode => plain(Some(json!({"mode": "allowlist"}))),
            Route::PutBudget => plain(Some(json!({}))),
            Route::PutGuard => plain(Some(json!({"mode": "flag"}))),
            Route::GetPolicy | Route::Usage => Target {
                path: on_agent(&agent),
                body: None,
                version: None,
            },
            Route::PutPolicy => Target {
                path: on_agent(&agent),
                body: Some(json!({"allow": ["*"]})),
                version: None,
            },
            Route::DeletePolicy => {
                // A policy of its own to delete (acme's admin grants it);
                // another tenant's is never there to see.
                if own {
                    self.h
                        .grant(&self.acme.admin, "doomed-bot", json!({"allow": ["echo"]}))
                        .await;
                }
                Target {
                    path: on_agent(if own { "doomed-bot" } else { &agent }),
                    body: None,
                    version: None,
                }
            }
            Route::GetFunction | Route::GetVersion | Route::Diff | Route::Module => Target {
                path: fill(named, &json!(1)),
                body: None,
                version: None,
            },
            // Another tenant's versions have no source to see either way.
            Route::Source => Target {
                path: fill(if own { "src" } else { "secret" }, &json!(1)),
                body: None,
                version: None,
            },
            Route::TestRun => Target {
                path: fill(named, &json!(1)),
                body: Some(json!({"input": {"text": "hi"}})),
                version: None,
            },
            Route::Replay => Target {
                path: template.replace("{id}", execution),
                body: None,
                version: None,
            },
            Route::Bundle => plain_query(format!("{template}?execution={execution}")),
            Route::Invoke => Target {
                path: fill(named, &json!(1)),
                body: Some(json!({"input": {"text": "hi"}})),
                version: None,
            },
            Route::Upload => {
                let name = if own { "echo" } else { "g_upload" };
                let body = json!({"manifest": manifest("upload", text_schema()), "module": crate::b64(&crate::wasm(&echo()))});
                Target {
                    path: fill(name, &json!(1)),
                    body: Some(body),
                    version: None,
                }
            }
            Route::Approve | Route::Reject => {
                let v = self
                    .h
                    .upload(
                        &owner.author,
                        decide,
                        &echo(),
                        manifest("to decide", text_schema()),
                    )
                    .await;
                let body = json!({"sha256": v["sha256"], "notes": "matrix"});
                Target {
                    path: fill(decide, &v["version"]),
                    body: Some(body),
                    version: Some(v),
                }
            }
            Route::Revoke => {
                let v = self
                    .h
                    .deploy(owner, decide, &echo(), manifest("to revoke", text_schema()))
                    .await;
                Target {
                    path: fill(decide, &v["version"]),
                    body: Some(json!({"notes": "matrix"})),
                    version: Some(v),
                }
            }
        }
    }

    /// The state of a version, read by its own tenant's admin.
    async fn state(&self, version: &Value) -> Value {
        let owner = if version["tenant"] == "acme" {
            &self.acme
        } else {
            &self.globex
        };
        let path = format!(
            "/v1/functions/{}/versions/{}",
            str_of(&version["name"]),
            version["version"]
        );
        let (status, body) = self.h.request("GET", &path, Some(&owner.admin), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["state"].clone()
    }
}

#[test]
fn the_matrix_covers_every_authenticated_route() {
    let open = ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"];
    let authenticated: Vec<_> = ROUTES
        .iter()
        .filter(|(_, p)| !open.contains(p))
        .copied()
        .collect();
    let in_matrix: Vec<_> = MATRIX.iter().map(|(r, _)| r.template()).collect();
    assert_eq!(in_matrix, authenticated);
}

#[tokio::test]
async fn every_role_on_every_route_matches_the_matrix() {
    let w = world().await;
    let mut failures = Vec::new();
    for (route, row) in MATRIX {
        for (role, (own, other)) in ROLES.iter().zip(row) {
            for (is_own, want) in [(true, *own), (false, *other)] {
                if want == NA {
                    continue;
                }
                let t = w.target(*route, is_own).await;
                let (method, _) = route.template();
                let key = w.acme.key(*role);
                let (status, body) = w.h.request(method, &t.path, Some(key), t.body).await;
                let got = status.as_u16();
                if got != want || kind(&body) != expected_kind(want) {
                    failures.push(format!(
                        "{role} {method} {} ({}): want {want}, got {got} {body}",
                        t.path,
                        if is_own { "own" } else { "other" }
                    ));
                }
                // A refused decision changed nothing.
                if let Some(v) = &t.version
                    && !status.is_success()
                {
                    let before = v["state"].clone();
                    let after = w.state(v).await;
                    if after != before {
                        failures.push(format!(
                            "{role} {method} {}: refused, yet the state went {before} -> {after}",
                            t.path
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "matrix mismatches:\n{}",
        failures.join("\n")
    );

    // Globex's functions were never touched: acme's upload to g_upload
    // created acme's own function, and nothing of globex ran.
    let (_, g) =
        w.h.request("GET", "/v1/functions/g_upload", Some(&w.globex.admin), None)
            .await;
    assert_eq!(g["versions"].as_array().map(Vec::len), Some(1), "{g}");
    assert_eq!(g["versions"][0]["author"], "globex-author");
    let (_, a) =
        w.h.request("GET", "/v1/functions/g_upload", Some(&w.acme.admin), None)
            .await;
    assert_eq!(a["versions"][0]["author"], "acme-author", "{a}");
    assert_eq!(a["versions"][0]["tenant"], "acme", "{a}");
    // Only globex's own fixture ran there (its one captured call).
    let runs = w.h.audit(&w.globex.admin, "stream=execution").await;
    assert_eq!(
        runs.len(),
        1,
        "globex's audit log has other executions: {runs:?}"
    );
    assert_eq!(runs[0]["execution_id"], w.globex_execution.as_str());
    // Acme's refused invocations (not test runs or replays) were recorded
    // in acme's log, as refusals.
    let invocations = |entries: Vec<Value>| -> Vec<Value> {
        entries.into_iter().filter(|e| e["run"].is_null()).collect()
    };
    let refused = invocations(
        w.h.audit(&w.acme.admin, "stream=execution&outcome=not_found")
            .await,
    );
    assert!(
        refused
            .iter()
            .all(|e| e["tenant_id"] == "acme" && e["function"] == "secret"),
        "{refused:?}"
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    let forbidden = invocations(
        w.h.audit(&w.acme.admin, "stream=execution&outcome=forbidden")
            .await,
    );
    assert_eq!(forbidden.len(), 6, "three roles x own/other: {forbidden:?}");
}

/// How a request is authenticated other than with a valid key.
const BAD_AUTH: &[(&str, Option<&str>)] = &[
    ("missing", None),
    ("empty", Some("")),
    ("no scheme", Some("{valid}")),
    ("basic scheme", Some("Basic {valid}")),
    ("bearer without key", Some("Bearer ")),
    ("not a key", Some("Bearer hunter2")),
    ("short key", Some("Bearer aifn_0123456789abcdef_00")),
    ("non-ascii", Some("Bearer aifn_é")),
    (
        "unknown id",
        Some(
            "Bearer aifn_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ),
    ("known id, wrong secret", Some("Bearer {tampered}")),
    ("two keys", Some("Bearer {valid} {valid}")),
];

#[tokio::test]
async fn missing_malformed_and_unknown_keys_are_unauthenticated_everywhere() {
    let w = world().await;
    let valid = &w.acme.admin.secret;
    let mut tampered = valid.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == '0' { '1' } else { '0' });
    for (route, _) in MATRIX {
        let (method, template) = route.template();
        let path = template
            .replace("{name}", "echo")
            .replace("{version}", "1")
            .replace("{subject}", "acme-agent")
            .replace("{id}", &w.acme_execution);
        for (what, header) in BAD_AUTH {
            let header =
                header.map(|h| h.replace("{valid}", valid).replace("{tampered}", &tampered));
            let r =
                w.h.raw(
                    method,
                    &path,
                    header.as_deref(),
                    br#"{"input": {"text": "hi"}, "notes": "x"}"#.to_vec(),
                )
                .await;
            assert_eq!(
                (r.status, kind(&r.body)),
                (StatusCode::UNAUTHORIZED, "unauthenticated"),
                "{what}: {method} {path}: {:?}",
                r.body
            );
            assert_eq!(
                r.headers.get("www-authenticate").map(|v| v.as_bytes()),
                Some(&b"Bearer"[..]),
                "{what}"
            );
            // The secret is never echoed.
            assert!(
                !r.body.to_string().contains(valid.as_str()),
                "{what}: the key is echoed"
            );
        }
    }
    // Pair: the valid key itself works.
    let (status, _) =
        w.h.request("GET", "/v1/functions", Some(&w.acme.admin), None)
            .await;
    assert_eq!(status, StatusCode::OK);
    // Every refusal was recorded in the host's security stream, without the key.
    let page =
        w.h.admin
            .security_query(&SecurityQuery {
                limit: Some(1000),
                ..Default::default()
            })
            .expect("security query");
    let unauthenticated = page
        .entries
        .iter()
        .filter(|e| serde_json::to_value(e).expect("json")["stream"] == "security")
        .count();
    assert_eq!(unauthenticated, MATRIX.len() * BAD_AUTH.len());
    assert!(
        !serde_json::to_string(&page.entries)
            .expect("json")
            .contains(valid.as_str()),
        "a key reached the audit log"
    );
}

#[tokio::test]
async fn revoked_keys_are_unauthenticated_everywhere() {
    let w = world().await;
    // Fresh keys, one per role, used once (valid) and then revoked while
    // the service runs.
    let keys: Vec<(Role, Key)> = ROLES
        .iter()
        .map(|r| (*r, w.h.key("acme", *r, &format!("doomed-{r}"))))
        .collect();
    for (role, key) in &keys {
        let (status, body) =
            w.h.request("GET", "/v1/functions/echo", Some(key), None)
                .await;
        assert_eq!(status, StatusCode::OK, "{role} before revocation: {body}");
        w.h.revoke_key(key);
    }
    for (route, _) in MATRIX {
        for (role, key) in &keys {
            let t = w.target(*route, true).await;
            let (method, _) = route.template();
            let (status, body) = w.h.request(method, &t.path, Some(key), t.body).await;
            assert_eq!(
                (status, kind(&body)),
                (StatusCode::UNAUTHORIZED, "unauthenticated"),
                "revoked {role}: {method} {}: {body}",
                t.path
            );
            assert!(crate::message(&body).contains("revoked key"), "{body}");
        }
    }
}
