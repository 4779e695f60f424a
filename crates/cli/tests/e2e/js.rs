//! JavaScript functions end to end: `aifn run main.js` beside the Rust
//! example on the same inputs, and a JavaScript upload through `aifn serve`
//! that an approver inspects (source, engine, checklist), approves and an
//! agent invokes.

use serde_json::{Value, json};

use crate::*;

/// Inputs both leave-day functions must answer alike: `Ok(output)` or
/// `Err(the Rust function's message)`.
fn cases() -> Vec<(Value, Result<Value, &'static str>)> {
    vec![
        (
            json!({"start_date":"2024-12-23","end_date":"2025-01-03","holidays":["2024-12-25","2024-12-26","2025-01-01"]}),
            Ok(
                json!({"working_days":7,"calendar_days":12,"weekend_days":2,"holidays_excluded":["2024-12-25","2024-12-26","2025-01-01"]}),
            ),
        ),
        (
            json!({"start_date":"2024-06-03","end_date":"2024-06-16","holidays":["2024-06-08","2024-06-10","2024-06-10","2024-07-01"]}),
            Ok(
                json!({"working_days":9,"calendar_days":14,"weekend_days":4,"holidays_excluded":["2024-06-10"]}),
            ),
        ),
        (
            json!({"start_date":"2024-03-28","end_date":"2024-04-06","weekend":["friday","saturday"]}),
            Ok(
                json!({"working_days":6,"calendar_days":10,"weekend_days":4,"holidays_excluded":[]}),
            ),
        ),
        (
            json!({"start_date":"0001-01-01","end_date":"9999-12-31"}),
            Ok(
                json!({"working_days":2608615,"calendar_days":3652059,"weekend_days":1043444,"holidays_excluded":[]}),
            ),
        ),
        (
            json!({"start_date":"2024-01-01","end_date":"2024-01-31","holidays":["2024-01-15","2024-01-02","2024-01-15","2023-12-31","2024-02-01","2024-01-06"]}),
            Ok(
                json!({"working_days":21,"calendar_days":31,"weekend_days":8,"holidays_excluded":["2024-01-02","2024-01-15"]}),
            ),
        ),
        (
            json!({"start_date":"2024-02-01","end_date":"2024-01-01"}),
            Err("invalid input at .end_date: 2024-01-01 is before start_date 2024-02-01"),
        ),
        (
            json!({"start_date":"0099-02-29","end_date":"0099-03-01"}),
            Err(
                "invalid input at .start_date: day 29 is out of range in \"0099-02-29\" (99-02 has 28 days)",
            ),
        ),
        (
            json!({"start_date":"2024-01-01","end_date":"2024-12-31","holidays":["2024-05-01","May 8"]}),
            Err("invalid input at .holidays[1]: expected a date as YYYY-MM-DD, got \"May 8\""),
        ),
        (
            json!({"start_date":"2024-01-01"}),
            Err("invalid input: missing field `end_date`"),
        ),
        (
            json!({"start_date":"2024-01-01","end_date":"2024-01-02","weekend":["sunday","funday"]}),
            Err(
                "invalid input at .weekend[1]: unknown variant `funday`, expected one of `monday`, `tuesday`, `wednesday`, `thursday`, `friday`, `saturday`, `sunday`",
            ),
        ),
    ]
}

fn example_js() -> String {
    let p = repo().join("functions/calculate_leave_days_js/main.js");
    p.to_str().expect("utf-8").to_owned()
}

#[test]
fn the_javascript_example_answers_as_the_rust_one_does() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_env = [("AIFN_CACHE_DIR", cache.path().to_str().expect("utf-8"))];
    let wasm = function_wasm("calculate_leave_days");
    let js = example_js();
    let run = |module: &str, input: &Value| {
        let (code, out, err) = cli(&["run", module, "--input", &input.to_string()], &cache_env);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (code, v)
    };
    for (input, expected) in cases() {
        let (rust_code, rust) = run(wasm.to_str().expect("utf-8"), &input);
        let (js_code, js) = run(&js, &input);
        assert_eq!(rust_code, js_code, "{input}: {rust} / {js}");
        match expected {
            Ok(out) => {
                assert_eq!(rust["output"], out, "{input}");
                assert_eq!(js["output"], out, "{input}");
                // The same debug line too.
                assert_eq!(rust["logs"], js["logs"], "{input}");
            }
            Err(message) => {
                assert_eq!(rust["error"]["kind"], "function_error", "{rust}");
                assert_eq!(js["error"]["kind"], "function_error", "{js}");
                assert_eq!(rust["error"]["message"], message, "{input}");
                // A thrown Error reads as JavaScript writes it.
                assert_eq!(
                    js["error"]["message"],
                    format!("Error: {message}"),
                    "{input}"
                );
            }
        }
    }
    // The cache made every run after the first cheap; the first filled it.
    assert!(std::fs::read_dir(cache.path()).expect("cache dir").count() > 0);
}

#[test]
fn aifn_run_refuses_a_javascript_syntax_error_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("main.js");
    std::fs::write(&bad, "export function main(input) {\n  return input.;\n}\n").expect("write");
    let (code, out, _) = cli(
        &["run", bad.to_str().expect("utf-8")],
        &[("AIFN_CACHE_DIR", dir.path().to_str().expect("utf-8"))],
    );
    let v: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["kind"], "invalid_module", "{v}");
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("SyntaxError") && m.contains("(line 2, column"),
        "{m}"
    );
}

#[test]
fn a_javascript_function_is_uploaded_read_approved_and_invoked() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let alice = key(d, "acme", "author", "alice");
    let bob = key(d, "acme", "approver", "bob");
    let agent = key(d, "acme", "agent", "hr-bot");
    let admin = key(d, "acme", "admin", "carol");
    let server = Server::start(d, &[]);
    let env = |k: &str| vec![("AIFN_SERVER", server.url()), ("AIFN_KEY", k.to_owned())];
    let as_key = |k: &str, args: &[&str]| {
        let e = env(k);
        let e: Vec<(&str, &str)> = e.iter().map(|(a, b)| (*a, b.as_str())).collect();
        cli(args, &e)
    };
    let (code, _, err) = as_key(
        &admin,
        &[
            "policy",
            "set",
            "hr-bot",
            "--allow",
            "calculate_leave_days_js",
        ],
    );
    assert_eq!(code, 0, "{err}");

    // The author uploads the source; the version is pending, bound to the
    // source and the engine.
    let (code, out, err) = as_key(
        &alice,
        &["upload", "calculate_leave_days_js", &example_js(), "--json"],
    );
    assert_eq!(code, 0, "{out} {err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (v["state"].as_str(), v["version"].as_u64()),
        (Some("pending"), Some(1)),
        "{v}"
    );
    assert_eq!(v["source"]["language"], "javascript", "{v}");
    let script = &v["report"]["module"]["script"];
    assert_eq!(script["engine"]["name"], "quickjs-ng", "{v}");
    assert_eq!(script["source_sha256"], v["source"]["sha256"], "{v}");
    assert_eq!(
        script["findings"],
        json!([]),
        "the example passes its own checklist: {v}"
    );
    let sha = v["sha256"].as_str().expect("sha256").to_owned();

    // The approver reads the code that runs, numbered, and its engine.
    let (code, out, err) = as_key(&bob, &["inspect", "calculate_leave_days_js@1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("engine: quickjs-ng 0.16.2"), "{out}");
    assert!(
        out.contains("the engine this aifn builds new versions with"),
        "{out}"
    );
    assert!(out.contains("checklist: no findings"), "{out}");
    assert!(
        out.contains("| export function main(input, context) {"),
        "{out}"
    );

    // A second version with checklist findings: the approver sees them.
    let dir = tempfile::tempdir().expect("tempdir");
    let risky = dir.path().join("main.js");
    std::fs::write(
        &risky,
        "const API_KEY = \"AKIAABCDEFGHIJKLMNOP\";\nexport function main(input) {\n  while (true) { input.n++; }\n  return eval(input.code);\n}\n",
    )
    .expect("write");
    let manifest = repo().join("functions/calculate_leave_days_js/aifn.toml");
    let upload_risky = || {
        as_key(
            &alice,
            &[
                "upload",
                "calculate_leave_days_js",
                risky.to_str().expect("utf-8"),
                "--manifest",
                manifest.to_str().expect("utf-8"),
            ],
        )
    };
    let (code, out, err) = upload_risky();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("v2") || out.contains("@2"), "{out}");
    let (code, out, err) = as_key(&bob, &["inspect", "calculate_leave_days_js@2"]);
    assert_eq!(code, 0, "{err}");
    for rule in ["credential_literal", "unbounded_loop", "eval"] {
        assert!(out.contains(rule), "{rule}: {out}");
    }
    assert!(
        !out.contains("AKIAABCDEFGHIJKLMNOP\"  "),
        "a finding never repeats the secret: {out}"
    );

    // A syntax error is refused at upload, with its place, and stores nothing.
    std::fs::write(&risky, "export function main( {\n").expect("write");
    let (code, _, err) = upload_risky();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("invalid_module")
            && err.contains("SyntaxError")
            && err.contains("(line 2, column 1)"),
        "{err}"
    );

    // Approved by another, exactly that hash; the agent then invokes it.
    let (code, _, err) = as_key(
        &bob,
        &[
            "approve",
            "calculate_leave_days_js@1",
            "--notes",
            "read the source",
            "--sha256",
            &sha,
        ],
    );
    assert_eq!(code, 0, "{err}");
    // The first seven pass the schema; the rest only `aifn run` reaches.
    let invoke = |input: &Value| {
        http(
            "POST",
            &format!(
                "{}/v1/functions/calculate_leave_days_js/invoke",
                server.url()
            ),
            Some(&agent),
            Some(&json!({"input": input, "user_id": "u-42"})),
        )
    };
    for (input, expected) in cases().into_iter().take(7) {
        let (status, body) = invoke(&input);
        match expected {
            Ok(out) => {
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["output"], out, "{input}");
            }
            Err(message) => {
                assert_eq!(body["error"]["kind"], "function_error", "{body}");
                assert_eq!(
                    body["error"]["message"],
                    format!("Error: {message}"),
                    "{body}"
                );
            }
        }
    }
    // The schema's bound holds before the function runs.
    let many: Vec<String> = (0..1001).map(|_| "2024-01-02".to_owned()).collect();
    let (status, body) =
        invoke(&json!({"start_date": "2024-01-01", "end_date": "2024-01-31", "holidays": many}));
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (400, Some("invalid_input")),
        "{body}"
    );
    drop(server);
}
