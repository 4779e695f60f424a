//! The contract of `POST /v1/functions/{name}/invoke` and of the tool
//! catalog: answers, refusals, failures, and the audit record of each.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    Harness, Key, any_schema, constant, echo, kind, manifest, message, says, spin, str_of,
    text_schema, trap,
};

/// Outputs its context (what the host tells the guest about the call).
fn context() -> String {
    aifn_test_support::CONTEXT_ECHO_WAT.to_owned()
}

/// Recurses without end.
fn deep() -> String {
    r#"(module
  (memory (export "memory") 1)
  (func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))
  (func (export "aifn_call") (result i32) (call $down (i32.const 0))))"#
        .to_owned()
}

/// Grows its memory by 10 pages and traps if that was refused.
fn greedy() -> String {
    r#"(module
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (if (i32.eq (memory.grow (i32.const 10)) (i32.const -1)) (then unreachable))
    (i32.const 0)))"#
        .to_owned()
}

fn with_limits(mut m: Value, limits: Value) -> Value {
    m["limits"] = limits;
    m
}

fn is_execution_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

#[tokio::test]
async fn a_call_answers_its_output_and_stats() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    let (status, body) = h.invoke(&t.agent, "echo", json!({"text": "héllo"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keys: BTreeSet<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "output",
            "execution_id",
            "version",
            "fuel_used",
            "duration_ms"
        ])
    );
    assert_eq!(body["output"], json!({"text": "héllo"}));
    assert!(is_execution_id(&body["execution_id"]), "{body}");
    assert_eq!(body["version"], 1);
    assert!(body["fuel_used"].as_u64().is_some_and(|f| f > 0), "{body}");
    assert!(
        body["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{body}"
    );
    // Two calls, two executions.
    let (_, again) = h.invoke(&t.agent, "echo", json!({"text": "héllo"})).await;
    assert_ne!(again["execution_id"], body["execution_id"]);
}

#[tokio::test]
async fn the_guest_sees_the_keys_tenant_and_subject() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "whoami", &context(), manifest("context", any_schema()))
        .await;
    let body = json!({"input": {}, "user_id": "u-42"});
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/whoami/invoke",
            Some(&t.agent),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["output"],
        json!({"tenant_id": "acme", "agent_id": "acme-agent", "user_id": "u-42", "function": "whoami", "version": "1",
               "execution_id": body["execution_id"]})
    );
    // A user id is the agent's word, bounded.
    let body = json!({"input": {}, "user_id": "u".repeat(257)});
    let (status, body) = h
        .request(
            "POST",
            "/v1/functions/whoami/invoke",
            Some(&t.agent),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
}

#[tokio::test]
async fn invalid_input_lists_each_violation_without_echoing_values() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let schema = json!({
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 3}, "count": {"type": "integer", "minimum": 1}},
        "required": ["text", "count"],
        "additionalProperties": false
    });
    h.deploy(&t, "strict", &echo(), manifest("strict", schema))
        .await;
    let (status, body) = h
        .invoke(
            &t.agent,
            "strict",
            json!({"text": "secret-value-123", "count": 0, "extra": true}),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{body}"
    );
    assert!(
        is_execution_id(&body["execution_id"]),
        "a refusal is recorded too: {body}"
    );
    let violations = body["error"]["violations"].as_array().expect("violations");
    let paths: BTreeSet<&str> = violations.iter().map(|v| str_of(&v["path"])).collect();
    assert_eq!(paths, BTreeSet::from(["", "/text", "/count"]), "{body}");
    for v in violations {
        assert!(!str_of(&v["message"]).is_empty(), "{v}");
        assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
    }
    assert!(
        !body.to_string().contains("secret-value-123"),
        "the input is echoed: {body}"
    );
    assert!(message(&body).contains("3 violations"), "{body}");
    // A missing field is named.
    let (status, body) = h.invoke(&t.agent, "strict", json!({"text": "abc"})).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    assert!(body.to_string().contains("count"), "{body}");
    // Pair: a valid input.
    let (status, body) = h
        .invoke(&t.agent, "strict", json!({"text": "abc", "count": 2}))
        .await;
    assert_eq!(
        (status, body["output"].clone()),
        (StatusCode::OK, json!({"text": "abc", "count": 2}))
    );
}

/// One invocation attempt and how it must be answered and recorded.
struct Attempt {
    what: &'static str,
    key: Key,
    function: &'static str,
    input: Value,
    status: StatusCode,
    outcome: &'static str,
}

#[tokio::test]
async fn every_attempt_is_answered_and_audited_with_its_outcome() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let m = |d: &str| manifest(d, any_schema());
    h.deploy(&t, "echo", &echo(), manifest("echo", text_schema()))
        .await;
    h.deploy(
        &t,
        "slow",
        &spin(),
        with_limits(m("spins"), json!({"timeout_ms": 100})),
    )
    .await;
    h.deploy(
        &t,
        "hungry",
        &spin(),
        with_limits(m("spins"), json!({"fuel": 1_000_000})),
    )
    .await;
    h.deploy(&t, "boom", &trap(), m("traps")).await;
    h.deploy(
        &t,
        "sad",
        &constant("bad thing happened", 18, 1),
        m("fails"),
    )
    .await;
    h.deploy(&t, "liar", &constant("not json", 8, 0), m("bad output"))
        .await;
    h.deploy(
        &t,
        "chatty",
        &constant("{\\\"done\\\":true}", 13, 0),
        with_limits(m("big output"), json!({"output_bytes": 4})),
    )
    .await;
    h.deploy(&t, "deep", &deep(), m("recurses")).await;
    h.deploy(
        &t,
        "greedy",
        &greedy(),
        with_limits(m("grows"), json!({"memory_bytes": 131_072})),
    )
    .await;
    h.upload(&t.author, "unapproved", &echo(), m("pending only"))
        .await;
    let gone = h.deploy(&t, "gone", &echo(), m("revoked")).await;
    let (status, _) = h
        .decide(
            &t.approver,
            "revoke",
            &gone,
            Some(json!({"notes": "withdrawn"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = h
        .upload(&t.author, "refused", &echo(), m("rejected only"))
        .await;
    let (status, _) = h
        .decide(
            &t.approver,
            "reject",
            &refused,
            Some(json!({"sha256": refused["sha256"], "notes": "no"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let a = |what, key: &Key, function, input, status, outcome| Attempt {
        what,
        key: key.clone(),
        function,
        input,
        status,
        outcome,
    };
    let attempts = [
        a(
            "ok",
            &t.agent,
            "echo",
            json!({"text": "hi"}),
            StatusCode::OK,
            "ok",
        ),
        a(
            "schema",
            &t.agent,
            "echo",
            json!({"text": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        a(
            "unknown",
            &t.agent,
            "nope",
            json!({}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        a(
            "pending only",
            &t.agent,
            "unapproved",
            json!({}),
            StatusCode::CONFLICT,
            "not_active",
        ),
        a(
            "revoked",
            &t.agent,
            "gone",
            json!({}),
            StatusCode::CONFLICT,
            "not_active",
        ),
        a(
            "rejected only",
            &t.agent,
            "refused",
            json!({}),
            StatusCode::CONFLICT,
            "not_active",
        ),
        a(
            "author key",
            &t.author,
            "echo",
            json!({"text": "hi"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        a(
            "admin key",
            &t.admin,
            "echo",
            json!({"text": "hi"}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        a(
            "deadline",
            &t.agent,
            "slow",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timeout",
        ),
        a(
            "fuel",
            &t.agent,
            "hungry",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "fuel_exhausted",
        ),
        a(
            "trap",
            &t.agent,
            "boom",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "trap",
        ),
        a(
            "error",
            &t.agent,
            "sad",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "function_error",
        ),
        a(
            "not json",
            &t.agent,
            "liar",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_output",
        ),
        a(
            "output cap",
            &t.agent,
            "chatty",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "output_too_large",
        ),
        a(
            "stack",
            &t.agent,
            "deep",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "stack_overflow",
        ),
        a(
            "memory",
            &t.agent,
            "greedy",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "memory_limit",
        ),
    ];
    let mut expected = BTreeMap::new();
    for at in &attempts {
        let (status, body) = h.invoke(&at.key, at.function, at.input.clone()).await;
        assert_eq!(status, at.status, "{}: {body}", at.what);
        if status == StatusCode::OK {
            assert!(body.get("error").is_none(), "{}: {body}", at.what);
        } else {
            assert_eq!(kind(&body), at.outcome, "{}: {body}", at.what);
        }
        assert!(
            is_execution_id(&body["execution_id"]),
            "{}: no execution id in {body}",
            at.what
        );
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            // A failed run reports what it used.
            assert!(
                body["fuel_used"].is_u64()
                    && body["duration_ms"].is_number()
                    && body["version"] == 1,
                "{}: {body}",
                at.what
            );
        }
        expected.insert(str_of(&body["execution_id"]).to_owned(), at.outcome);
    }
    let (_, sad) = h.invoke(&t.agent, "sad", json!({})).await;
    assert!(
        message(&sad).contains("bad thing happened"),
        "the function's error message is the output: {sad}"
    );
    expected.insert(str_of(&sad["execution_id"]).to_owned(), "function_error");

    // Every attempt is in the audit log, with its outcome; nothing else is.
    for reader in [&t.admin, &t.approver] {
        let entries = h.audit(reader, "stream=execution&limit=1000").await;
        let recorded: BTreeMap<String, &str> = entries
            .iter()
            .map(|e| (str_of(&e["execution_id"]).to_owned(), str_of(&e["outcome"])))
            .collect();
        assert_eq!(recorded, expected);
        assert!(entries.iter().all(|e| e["tenant_id"] == "acme"));
    }
    let traps = h.audit(&t.admin, "outcome=trap").await;
    assert_eq!(traps.len(), 1, "{traps:?}");
    assert_eq!(traps[0]["function"], "boom");
    let forbidden = h.audit(&t.admin, "outcome=forbidden").await;
    let agents: BTreeSet<&str> = forbidden.iter().map(|e| str_of(&e["agent_id"])).collect();
    assert_eq!(agents, BTreeSet::from(["acme-author", "acme-admin"]));
    // And in the metrics.
    let metrics = h.raw("GET", "/metrics", None, Vec::new()).await;
    let text = str_of(&metrics.body);
    for (outcome, n) in [
        ("ok", 1),
        ("trap", 1),
        ("function_error", 2),
        ("not_active", 3),
        ("forbidden", 2),
        ("timeout", 1),
    ] {
        assert!(
            text.contains(&format!(
                "aifn_invocations_total{{outcome=\"{outcome}\"}} {n}\n"
            )),
            "{outcome} {n}: {text}"
        );
    }
}

#[tokio::test]
async fn an_approved_version_runs_at_once_and_a_revoked_one_never() {
    let h = Harness::new();
    let t = h.tenant("acme");
    h.deploy(&t, "hello", &says("one"), manifest("v1", any_schema()))
        .await;
    let (_, body) = h.invoke(&t.agent, "hello", json!({})).await;
    assert_eq!(
        (body["output"].clone(), body["version"].clone()),
        (json!("one"), json!(1))
    );
    // A pending v2 does not run.
    let v2 = h
        .upload(
            &t.author,
            "hello",
            &says("two"),
            manifest("v2", any_schema()),
        )
        .await;
    let (_, body) = h.invoke(&t.agent, "hello", json!({})).await;
    assert_eq!(body["output"], "one");
    // Approved, it runs at once, and v1 is superseded.
    h.approve(&t.approver, &v2).await;
    let (_, body) = h.invoke(&t.agent, "hello", json!({})).await;
    assert_eq!(
        (body["output"].clone(), body["version"].clone()),
        (json!("two"), json!(2))
    );
    let (_, v1) = h
        .request(
            "GET",
            "/v1/functions/hello/versions/1",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(v1["state"], "superseded");
    // Revoked, nothing runs.
    let (status, _) = h
        .decide(&t.approver, "revoke", &v2, Some(json!({"notes": "stop"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h.invoke(&t.agent, "hello", json!({})).await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::CONFLICT, "not_active"),
        "{body}"
    );
}

#[tokio::test]
async fn the_tool_catalog_lists_exactly_the_active_functions() {
    let h = Harness::new();
    let t = h.tenant("acme");
    let calc_schema = json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]});
    h.deploy(
        &t,
        "echo",
        &echo(),
        manifest("Repeats the text.", text_schema()),
    )
    .await;
    h.deploy(
        &t,
        "calc",
        &echo(),
        manifest("Adds a and b.", calc_schema.clone()),
    )
    .await;
    // Not active: pending, revoked, rejected; and a pending v2 of calc
    // whose manifest must not show.
    h.upload(
        &t.author,
        "pending_fn",
        &echo(),
        manifest("pending", any_schema()),
    )
    .await;
    let gone = h
        .deploy(&t, "gone", &echo(), manifest("revoked", any_schema()))
        .await;
    h.decide(&t.approver, "revoke", &gone, Some(json!({"notes": "x"})))
        .await;
    let no = h
        .upload(&t.author, "no", &echo(), manifest("rejected", any_schema()))
        .await;
    h.decide(
        &t.approver,
        "reject",
        &no,
        Some(json!({"sha256": no["sha256"], "notes": "x"})),
    )
    .await;
    h.upload(
        &t.author,
        "calc",
        &echo(),
        manifest("Adds, v2.", json!({"type": "object", "description": "v2"})),
    )
    .await;

    let expected_openai = BTreeMap::from([
        (
            "calc",
            json!({"type": "function", "function": {"name": "calc", "description": "Adds a and b.", "parameters": calc_schema}}),
        ),
        (
            "echo",
            json!({"type": "function", "function": {"name": "echo", "description": "Repeats the text.", "parameters": text_schema()}}),
        ),
    ]);
    for query in ["", "?format=openai"] {
        let (status, body) = h
            .request("GET", &format!("/v1/tools{query}"), Some(&t.agent), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let tools: BTreeMap<&str, Value> = body["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|v| (str_of(&v["function"]["name"]), v.clone()))
            .collect();
        assert_eq!(
            tools.keys().copied().collect::<Vec<_>>(),
            ["calc", "echo"],
            "{body}"
        );
        for (name, want) in &expected_openai {
            assert_eq!(&tools[name], want);
        }
    }
    let (status, body) = h
        .request("GET", "/v1/tools?format=anthropic", Some(&t.agent), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut tools = body["tools"].as_array().expect("tools").clone();
    tools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    assert_eq!(
        tools,
        [
            json!({"name": "calc", "description": "Adds a and b.", "input_schema": calc_schema}),
            json!({"name": "echo", "description": "Repeats the text.", "input_schema": text_schema()}),
        ]
    );
    // Every tool in the catalog can be called by the agent that read it.
    let (status, _) = h.invoke(&t.agent, "calc", json!({"a": 1, "b": 2})).await;
    assert_eq!(status, StatusCode::OK);
    // Pair: an agent of a tenant without functions gets an empty catalog.
    let lonely = h.key("lonely", aifn_types::Role::Agent, "lonely-agent");
    let (status, body) = h.request("GET", "/v1/tools", Some(&lonely), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"tools": []})));
}

#[tokio::test]
async fn an_answer_waits_for_its_durable_record_and_is_withheld_without_one() {
    // A real quota on the audit database: once full, no record can be written.
    let h = Harness::with(
        |c| c.audit.max_db_bytes = Some(96 * 1024),
        aifn_server::ServerConfig::default(),
    );
    let t = h.tenant("acme");
    h.deploy(&t, "f", &echo(), manifest("echo", any_schema()))
        .await;
    let input = json!({"padding": "x".repeat(200)});
    // Obeyed: the answer comes with its record already in the log.
    let (status, body) = h.invoke(&t.agent, "f", input.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["output"], input);
    let id = str_of(&body["execution_id"]).to_owned();
    let entries = h.audit(&t.admin, "stream=execution").await;
    assert!(entries.iter().any(|e| str_of(&e["execution_id"]) == id));
    // Violated: once no record fits, no output leaves.
    let mut ok = 1;
    let (status, body) = loop {
        let (status, body) = h.invoke(&t.agent, "f", input.clone()).await;
        if status != StatusCode::OK {
            break (status, body);
        }
        ok += 1;
        assert!(ok < 10_000, "the quota never filled");
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(kind(&body), "unavailable");
    assert!(body.get("output").is_none(), "{body}");
    assert!(!body.to_string().contains("xxxxxxxx"), "{body}");
}
