//! MCP end to end against a real `aifn serve`: the official TypeScript SDK
//! client (node, `tests/mcp-client`, installed by `cargo xtask test`) on
//! `/mcp`, and `aifn mcp` (the stdio bridge) driven by the Rust SDK's
//! client over the bridge's stdin and stdout.

use std::path::Path;
use std::process::Command;

use aifn_test_support::ECHO_WAT;
use rmcp::ServiceExt as _;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, RequestMetaObject,
};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::{Server, cli, http, key, repo};

const TRAP_WAT: &str = r#"(module (memory (export "memory") 1)
  (func (export "aifn_call") (result i32) unreachable))"#;

/// A server with `echo` and `fails` active and an agent allowed both.
struct World {
    server: Server,
    agent: String,
    admin: String,
    _data: tempfile::TempDir,
}

fn world() -> World {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let author = key(d, "acme", "author", "alice");
    let approver = key(d, "acme", "approver", "bob");
    let admin = key(d, "acme", "admin", "carol");
    let agent = key(d, "acme", "agent", "bot");
    let server = Server::start(d, &[]);
    let as_key = |k: &str| [("AIFN_SERVER", server.url()), ("AIFN_KEY", k.to_owned())];
    let run = |k: &str, args: &[&str]| {
        let env = as_key(k);
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let (code, _, err) = cli(args, &env);
        assert_eq!(code, 0, "aifn {args:?}: {err}");
    };
    for (name, wat, schema) in [
        (
            "echo",
            ECHO_WAT,
            "type = \"object\"\nrequired = [\"text\"]\n[input_schema.properties.text]\ntype = \"string\"\n",
        ),
        ("fails", TRAP_WAT, "type = \"object\"\n"),
    ] {
        let module = write(d, &format!("{name}.wat"), wat);
        let manifest = write(
            d,
            &format!("{name}.toml"),
            &format!("description = \"{name} it\"\n[input_schema]\n{schema}"),
        );
        run(&author, &["upload", name, &module, "--manifest", &manifest]);
        run(
            &approver,
            &["approve", &format!("{name}@1"), "--notes", "reviewed"],
        );
    }
    run(&admin, &["policy", "set", "bot", "--allow", "*"]);
    World {
        server,
        agent,
        admin,
        _data: data,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_str().expect("utf-8").to_owned()
}

/// The execution records of the tenant, newest first.
fn records(w: &World) -> Vec<Value> {
    let url = format!("{}/v1/audit?stream=execution&limit=100", w.server.url());
    let (status, body) = http("GET", &url, Some(&w.admin), None);
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().expect("entries").clone()
}

#[test]
fn the_typescript_sdk_lists_and_calls_tools() {
    let w = world();
    let dir = repo().join("tests/mcp-client");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "the TypeScript SDK is not installed: run `npm ci` in {} (`cargo xtask test` does)",
        dir.display()
    );
    let url = format!("{}/mcp", w.server.url());
    let out = Command::new("node")
        .current_dir(&dir)
        .args([
            "client.mjs",
            &url,
            &w.agent,
            "echo",
            r#"{"text":"from ts"}"#,
        ])
        .output()
        .expect("node runs (install Node.js 18 or newer)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node client failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let names: Vec<&str> = v["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["echo", "fails"], "{v}");
    assert_eq!(v["tools"][0]["annotations"]["readOnlyHint"], true, "{v}");
    assert_eq!(
        v["result"]["structuredContent"],
        json!({"text": "from ts"}),
        "{v}"
    );
    assert_eq!(v["result"]["isError"], false, "{v}");
    let rec = records(&w)
        .into_iter()
        .find(|r| r["function"] == "echo")
        .expect("the call's record");
    assert_eq!(rec["user_id"], "ts-user", "{rec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stdio_bridge_forwards_to_the_remote() {
    let w = world();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aifn"));
    cmd.args(["mcp", "--server", &w.server.url()])
        .env("AIFN_KEY", &w.agent)
        .env_remove("AIFN_SERVER");
    let client = ClientConfig::new(ClientCapabilities::default(), Implementation::new("t", "1"))
        .serve(TokioChildProcess::new(cmd).expect("spawn aifn mcp"))
        .await
        .expect("the bridge speaks MCP on stdio");
    let tools = client.list_tools(None).await.expect("tools/list");
    let names: Vec<&str> = tools.tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["echo", "fails"]);

    let mut params = CallToolRequestParams::new("echo").with_arguments(
        json!({"text": "via stdio"})
            .as_object()
            .expect("obj")
            .clone(),
    );
    let mut meta = RequestMetaObject::new();
    meta.insert("aifn/user_id".into(), json!("desk-user"));
    params.meta = Some(meta);
    let r = client.call_tool(params).await.expect("tools/call");
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert_eq!(r.structured_content, Some(json!({"text": "via stdio"})));

    let r = client
        .call_tool(CallToolRequestParams::new("fails").with_arguments(Default::default()))
        .await
        .expect("tools/call");
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let text = &r.content[0].as_text().expect("text").text;
    assert!(text.contains("\"trap\""), "{text}");
    client.cancel().await.expect("close");

    let rec = records(&w)
        .into_iter()
        .find(|r| r["function"] == "echo")
        .expect("the call's record");
    assert_eq!(rec["user_id"], "desk-user", "{rec}");
}

#[test]
fn the_bridge_needs_a_key() {
    let (code, _, err) = cli(&["mcp", "--server", "http://127.0.0.1:9"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AIFN_KEY"), "{err}");
}
