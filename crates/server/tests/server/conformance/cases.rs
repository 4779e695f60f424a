//! What the conformance test sends: the request model, its proptest
//! strategies and the fixed edge cases every run sends first.

use aifn_server::ROUTES;
use aifn_types::Role;
use proptest::prelude::*;

/// Random cases after the fixed ones; each is one request.
pub(super) const CASES: u32 = 2000;
/// The host's input limit here, so that a body over it (plus 64 KiB) is cheap.
pub(super) const INPUT_BYTES: u64 = 4 * 1024;
/// The host's module cap here.
pub(super) const MODULE_BYTES: u64 = 64 * 1024;

/// Who a request claims to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Auth {
    /// No `Authorization` header.
    Missing,
    /// A key of the route's own role (the first allowed one).
    Allowed,
    /// A key of the tenant with this role.
    Role(Role),
    /// A key of another tenant with this role.
    Stranger(Role),
    /// A revoked key.
    Revoked,
    /// Not a key at all.
    Malformed,
    /// A well-formed key the server never issued.
    Unknown,
    /// Another scheme.
    Basic,
}

/// What a request carries, made concrete for its route at send time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BodyKind {
    /// No body.
    Nothing,
    /// What the route expects.
    Valid,
    /// For approve and reject: the sha256 of the module every version here has.
    RealSha,
    /// An object with a field the route does not know.
    UnknownField,
    /// The expected fields with values of the wrong type.
    WrongTypes,
    /// `{}`.
    Empty,
    /// Not JSON.
    NotJson,
    /// Invoke: an input over the function's input limit, under the body limit.
    OverInput,
    /// Over the route's body limit (invoke: the input limit plus 64 KiB;
    /// upload: a module over the module cap).
    Huge,
    /// Upload: a module that is not wasm.
    BadModule,
    /// Upload: a module with a forbidden import.
    ForbiddenImport,
    /// Upload: an input schema whose root is not an object schema.
    StringSchema,
}

/// One generated request.
#[derive(Debug, Clone)]
pub(super) struct Case {
    /// Index into [`ROUTES`].
    pub(super) route: usize,
    /// The method sent (may not be the route's).
    pub(super) method: &'static str,
    pub(super) name: &'static str,
    pub(super) version: &'static str,
    /// The agent subject of the policy routes.
    pub(super) subject: &'static str,
    /// The execution id of the replay route ([`CAPTURED`] and [`PLAIN`]
    /// stand for real ones).
    pub(super) execution: &'static str,
    /// The raw query string, without `?`.
    pub(super) query: String,
    pub(super) auth: Auth,
    pub(super) body: BodyKind,
}

impl Case {
    pub(super) fn template(&self) -> &'static str {
        ROUTES[self.route].1
    }

    pub(super) fn route_method(&self) -> &'static str {
        ROUTES[self.route].0
    }

    pub(super) fn path(&self) -> String {
        let mut p = self
            .template()
            .replace("{name}", self.name)
            .replace("{version}", self.version)
            .replace("{subject}", self.subject)
            .replace("{id}", self.execution);
        if !self.query.is_empty() {
            p.push('?');
            p.push_str(&self.query);
        }
        p
    }

    pub(super) fn pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.to_owned(), String::new()),
            })
            .collect()
    }
}

/// The roles a route allows (empty: any valid key, or none needed).
pub(super) fn roles_of(template: &str, method: &str) -> &'static [Role] {
    match (method, template) {
        ("POST", "/v1/functions/{name}/versions") => &[Role::Author],
        // The version's author too (every version here is acme-author's).
        ("POST", "/v1/functions/{name}/versions/{version}/test") => &[Role::Approver, Role::Author],
        ("POST", "/v1/executions/{id}/replay") | ("GET", "/v1/audit/bundle") => {
            &[Role::Approver, Role::Admin]
        }
        (
            "GET",
            "/v1/functions/{name}/versions/{version}/module"
            | "/v1/functions/{name}/versions/{version}/source",
        ) => &[Role::Author, Role::Approver, Role::Admin],
        ("POST", "/v1/functions/{name}/invoke") | ("GET", "/v1/tools") => &[Role::Agent],
        ("GET", "/v1/audit") => &[Role::Admin, Role::Approver],
        ("GET", "/v1/agents" | "/v1/agents/{subject}/policy" | "/v1/tenant") => {
            &[Role::Author, Role::Approver, Role::Admin]
        }
        ("GET", "/v1/agents/{subject}/usage") | ("PUT" | "DELETE", _) => &[Role::Admin],
        ("POST", _) => &[Role::Approver],
        _ => &[],
    }
}

pub(super) fn is_open(template: &str) -> bool {
    ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"].contains(&template)
}

pub(super) const NAMES: &[&str] = &[
    "echo",
    "boom",
    "pend",
    "victim",
    "nope",
    "Bad-Name",
    "%88",
    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdef",
];
/// `bot-1` is an agent of acme with a policy; acme's own `acme-agent`
/// is left alone, so that its invocations keep answering.
pub(super) const SUBJECTS: &[&str] = &[
    "bot-1",
    "nobody",
    "bot@example.com",
    "two%20words",
    "%88",
    "beta-agent",
];
/// The execution the World captured (an echo with capture), and one it
/// ran without capture: the World puts their real ids in the path.
pub(super) const CAPTURED: &str = "exec-captured";
pub(super) const PLAIN: &str = "exec-plain";
pub(super) const EXECUTIONS: &[&str] = &[CAPTURED, PLAIN, "nope", "%88"];
pub(super) const VERSIONS: &[&str] = &["1", "2", "3", "0", "999", "abc", "-1", "%88", "4294967296"];
pub(super) const QUERY_KEYS: &[&str] = &[
    "format",
    "function",
    "agent_id",
    "user_id",
    "outcome",
    "stream",
    "since",
    "until",
    "before_seq",
    "limit",
    "execution",
    "version",
    "module",
    "against",
    "color",
];

/// Values for a query key: mostly ones of its own kind, valid or not.
pub(super) fn query_values(key: &str) -> &'static [&'static str] {
    match key {
        "format" => &["openai", "anthropic", "xml", "", "OpenAI"],
        "outcome" => &["ok", "timeout", "trap", "not_found", "bogus", ""],
        "stream" => &["execution", "registry", "security", "system", "bogus"],
        "since" | "until" => &[
            "2024-01-01T00:00:00Z",
            "2999-12-31T23:59:59.123Z",
            "yesterday",
            "2024-01-01",
            "",
        ],
        "module" => &["true", "false", "yes", ""],
        "execution" => &[CAPTURED, PLAIN, "nope", ""],
        "before_seq" | "limit" | "version" | "against" => &[
            "0",
            "1",
            "5",
            "50",
            "1000",
            "5000",
            "-1",
            "x",
            "1.5",
            "",
            "99999999999999999999999",
        ],
        _ => &["echo", "acme-agent", "u1", "", "%41"],
    }
}

pub(super) fn query() -> impl Strategy<Value = String> {
    let pair = (
        prop::sample::select(QUERY_KEYS),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(k, i)| format!("{k}={}", i.get(query_values(k))));
    prop::collection::vec(pair, 0..4).prop_map(|p| p.join("&"))
}

pub(super) fn auth() -> impl Strategy<Value = Auth> {
    let role = prop::sample::select(Role::ALL.to_vec());
    prop_oneof![
        6 => Just(Auth::Allowed),
        4 => role.clone().prop_map(Auth::Role),
        1 => role.prop_map(Auth::Stranger),
        1 => prop::sample::select(vec![Auth::Missing, Auth::Revoked, Auth::Malformed, Auth::Unknown, Auth::Basic]),
    ]
}

pub(super) fn body() -> impl Strategy<Value = BodyKind> {
    use BodyKind::*;
    prop_oneof![
        6 => Just(Valid),
        2 => Just(RealSha),
        4 => prop::sample::select(vec![
            Nothing, UnknownField, WrongTypes, Empty, NotJson, OverInput, Huge, BadModule,
            ForbiddenImport, StringSchema,
        ]),
    ]
}

pub(super) fn case() -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        8 => Just(None::<&'static str>),
        1 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]).prop_map(Some),
    ];
    let name = prop_oneof![
        4 => Just("echo"),
        4 => prop::sample::select(NAMES),
    ];
    let version = prop_oneof![
        3 => Just("1"),
        3 => prop::sample::select(VERSIONS),
    ];
    let subject = prop_oneof![
        3 => Just("bot-1"),
        3 => prop::sample::select(SUBJECTS),
    ];
    let execution = prop_oneof![
        3 => Just(CAPTURED),
        2 => prop::sample::select(EXECUTIONS),
    ];
    (
        0..ROUTES.len(),
        method,
        name,
        version,
        (subject, execution),
        query(),
        auth(),
        body(),
    )
        .prop_map(
            |(route, method, name, version, (subject, execution), query, auth, body)| {
                let (route_method, template) = ROUTES[route];
                // echo and boom stay active: revoking or superseding them would
                // leave the rest of the run without a 200 or a 422 to check.
                let decision = template.ends_with("/approve") || template.ends_with("/revoke");
                let name = if decision && ["echo", "boom"].contains(&name) {
                    "victim"
                } else {
                    name
                };
                Case {
                    route,
                    method: method.unwrap_or(route_method),
                    name,
                    version,
                    subject,
                    execution,
                    query,
                    auth,
                    body,
                }
            },
        )
}

/// A case with the route's own method and defaults: the route's role,
/// `echo` version 1, no query, a valid body.
pub(super) fn fixed(template: &str) -> Case {
    let route = ROUTES
        .iter()
        .position(|(_, t)| *t == template)
        .unwrap_or_else(|| panic!("no route {template}"));
    fixed_at(route)
}

/// [`fixed`] for the route at `route` in [`ROUTES`] (a path may serve
/// several methods).
pub(super) fn fixed_at(route: usize) -> Case {
    let template = ROUTES[route].1;
    // What each decision can succeed on: echo 2 is the pending version
    // the fixed upload before it creates.
    let (name, version, body) = match template {
        t if t.ends_with("/approve") => ("pend", "1", BodyKind::RealSha),
        t if t.ends_with("/reject") => ("echo", "2", BodyKind::RealSha),
        t if t.ends_with("/revoke") => ("victim", "1", BodyKind::Valid),
        // The one version uploaded as source.
        t if t.ends_with("/source") => ("src", "1", BodyKind::Valid),
        _ => ("echo", "1", BodyKind::Valid),
    };
    let query = if template == "/v1/audit/bundle" {
        format!("execution={CAPTURED}")
    } else {
        String::new()
    };
    Case {
        route,
        method: ROUTES[route].0,
        name,
        version,
        subject: "bot-1",
        execution: CAPTURED,
        query,
        auth: Auth::Allowed,
        body,
    }
}

/// The edge cases every run sends, before the random ones.
pub(super) fn edge_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = (0..ROUTES.len()).map(fixed_at).collect();
    let with = |t: &str, f: &dyn Fn(&mut Case)| {
        let mut c = fixed(t);
        f(&mut c);
        c
    };
    for q in [
        "format=anthropic",
        "format=openai",
        "format=xml",
        "format=openai&format=openai",
        "format=openai&format=anthropic",
        "format=",
        "colour=red",
    ] {
        cases.push(with("/v1/tools", &|c| c.query = q.into()));
        cases.push(with("/v1/tools", &|c| {
            c.query = q.into();
            c.auth = Auth::Role(Role::Author);
        }));
    }
    for q in [
        "limit=x",
        "limit=1.5",
        "limit=-1",
        "limit=5000",
        "limit=0",
        "before_seq=x",
        "before_seq=-1",
        "outcome=ok",
        "outcome=bogus",
        "stream=security",
        "since=yesterday",
        "since=2024-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
        "color=red",
    ] {
        cases.push(with("/v1/audit", &|c| c.query = q.into()));
        cases.push(with("/v1/audit", &|c| {
            c.query = q.into();
            c.auth = Auth::Role(Role::Agent);
        }));
    }
    for body in [
        BodyKind::Huge,
        BodyKind::OverInput,
        BodyKind::NotJson,
        BodyKind::UnknownField,
        BodyKind::WrongTypes,
    ] {
        cases.push(with("/v1/functions/{name}/invoke", &|c| c.body = body));
    }
    cases.push(with("/v1/functions/{name}/invoke", &|c| c.name = "boom"));
    cases.push(with("/v1/functions/{name}/invoke", &|c| c.name = "pend"));
    cases.push(with("/v1/functions/{name}/invoke", &|c| c.name = "nope"));
    cases.push(with("/v1/functions/{name}/invoke", &|c| c.name = "%88"));
    for body in [
        BodyKind::Huge,
        BodyKind::BadModule,
        BodyKind::ForbiddenImport,
        BodyKind::StringSchema,
        BodyKind::NotJson,
    ] {
        cases.push(with("/v1/functions/{name}/versions", &|c| c.body = body));
    }
    cases.push(with(
        "/v1/functions/{name}/versions/{version}/approve",
        &|c| c.body = BodyKind::Huge,
    ));
    cases.push(fixed("/v1/functions/{name}/versions/{version}/revoke"));
    cases.push(with(
        "/v1/functions/{name}/versions/{version}/approve",
        &|c| c.body = BodyKind::Empty,
    ));
    for version in ["0", "abc", "999", "%88"] {
        cases.push(with("/v1/functions/{name}/versions/{version}", &|c| {
            c.version = version
        }));
    }
    for auth in [
        Auth::Missing,
        Auth::Revoked,
        Auth::Malformed,
        Auth::Unknown,
        Auth::Basic,
        Auth::Stranger(Role::Agent),
    ] {
        cases.push(with("/v1/functions/{name}/invoke", &|c| c.auth = auth));
        cases.push(with("/v1/functions/{name}", &|c| c.auth = auth));
    }
    for (method, t) in [
        ("DELETE", "/v1/functions"),
        ("POST", "/healthz"),
        ("GET", "/v1/functions/{name}/invoke"),
        ("PUT", "/v1/audit"),
        ("POST", "/v1/agents/{subject}/policy"),
        ("GET", "/v1/tenant/mode"),
    ] {
        cases.push(with(t, &|c| c.method = method));
    }
    // The policy routes: agents refused, a subject with no policy, one
    // that is not a subject, bodies the document refuses.
    for t in [
        "/v1/agents",
        "/v1/agents/{subject}/policy",
        "/v1/agents/{subject}/usage",
        "/v1/tenant",
        "/v1/tenant/mode",
    ] {
        cases.push(with(t, &|c| c.auth = Auth::Role(Role::Agent)));
    }
    for subject in ["nobody", "two%20words", "%88"] {
        cases.push(with("/v1/agents/{subject}/policy", &|c| {
            c.subject = subject
        }));
    }
    for body in [
        BodyKind::UnknownField,
        BodyKind::WrongTypes,
        BodyKind::NotJson,
    ] {
        let put = ROUTES
            .iter()
            .position(|r| *r == ("PUT", "/v1/agents/{subject}/policy"))
            .unwrap_or_else(|| panic!("no PUT policy route"));
        cases.push(with("/v1/agents/{subject}/policy", &|c| {
            c.route = put;
            c.method = "PUT";
            c.auth = Auth::Role(Role::Admin);
            c.body = body;
        }));
        cases.push(with("/v1/tenant/output-guard", &|c| c.body = body));
    }
    // The approval tools: each refused, not found and malformed once.
    let test = "/v1/functions/{name}/versions/{version}/test";
    cases.push(with(test, &|c| c.name = "pend"));
    cases.push(with(test, &|c| c.auth = Auth::Role(Role::Admin)));
    cases.push(with(test, &|c| c.version = "999"));
    for body in [
        BodyKind::OverInput,
        BodyKind::Huge,
        BodyKind::WrongTypes,
        BodyKind::NotJson,
    ] {
        cases.push(with(test, &|c| c.body = body));
    }
    cases.push(with(test, &|c| c.name = "boom"));
    let diff = "/v1/functions/{name}/versions/{version}/diff";
    for q in ["against=1", "against=x", "colour=red"] {
        cases.push(with(diff, &|c| c.query = q.into()));
    }
    cases.push(with(diff, &|c| c.auth = Auth::Role(Role::Agent)));
    cases.push(with(diff, &|c| c.name = "pend"));
    for t in [
        "/v1/functions/{name}/versions/{version}/module",
        "/v1/functions/{name}/versions/{version}/source",
    ] {
        cases.push(with(t, &|c| c.auth = Auth::Role(Role::Agent)));
        cases.push(with(t, &|c| c.name = "nope"));
    }
    // echo was uploaded as a module: it has no source.
    cases.push(with(
        "/v1/functions/{name}/versions/{version}/source",
        &|c| c.name = "echo",
    ));
    let replay = "/v1/executions/{id}/replay";
    for execution in [PLAIN, "nope", "%88"] {
        cases.push(with(replay, &|c| c.execution = execution));
    }
    cases.push(with(replay, &|c| c.auth = Auth::Role(Role::Author)));
    cases.push(with(replay, &|c| c.auth = Auth::Stranger(Role::Approver)));
    for q in [
        "",
        "colour=red",
        "function=echo",
        "function=echo&version=1&module=true",
        "function=echo&module=maybe",
        "execution=nope",
    ] {
        cases.push(with("/v1/audit/bundle", &|c| c.query = q.into()));
        cases.push(with("/v1/audit/bundle", &|c| {
            c.query = q.into();
            c.auth = Auth::Role(Role::Agent);
        }));
    }
    // A burst of calls past the tenant's rate: some answer 429.
    for _ in 0..12 {
        cases.push(fixed("/v1/functions/{name}/invoke"));
    }
    cases
}
