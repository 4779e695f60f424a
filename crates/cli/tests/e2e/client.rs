//! The client commands against a real server: replies read into the API's
//! types, large inputs, closed pipes, bare addresses, readable output; and
//! `aifn serve`'s data dir lock, node name and logs.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};

use serde_json::{Value, json};

use crate::run::with_closed_stdout;
use crate::*;

/// The echo with four pages of memory: the large-input test sends 185 KB.
const ECHO: &str = r#"(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 4)
  (func (export "aifn_call") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 0))
    (call $output_write (i32.const 0) (local.get $n))
    (i32.const 0)))"#;

/// A server with an active `echo` in tenant acme, and its keys.
struct Demo {
    server: Server,
    data: tempfile::TempDir,
    files: tempfile::TempDir,
    author: String,
    agent: String,
    admin: String,
}

impl Demo {
    fn start() -> Demo {
        let data = tempfile::tempdir().expect("tempdir");
        let files = tempfile::tempdir().expect("tempdir");
        let d = data.path();
        let author = key(d, "acme", "author", "alice");
        let approver = key(d, "acme", "approver", "bob");
        let agent = key(d, "acme", "agent", "hr-bot");
        let admin = key(d, "acme", "admin", "carol");
        let demo = Demo {
            server: Server::start(d, &[]),
            data,
            files,
            author,
            agent,
            admin,
        };
        let module = demo.file("echo.wat", ECHO);
        let manifest = demo.file(
            "echo.toml",
            "description = \"echo\"\n[input_schema]\ntype = \"object\"\n",
        );
        let (code, _, err) = demo.cli(
            &demo.author,
            &["upload", "echo", &module, "--manifest", &manifest],
        );
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = demo.cli(&approver, &["approve", "echo@1", "--notes", "fine"]);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = demo.cli(&demo.admin, &["policy", "set", "hr-bot", "--allow", "echo"]);
        assert_eq!(code, 0, "{err}");
        demo
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.files.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_owned()
    }

    fn env(&self, key: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AIFN_SERVER", self.server.url()),
            ("AIFN_KEY", key.to_owned()),
        ]
    }

    fn cli(&self, key: &str, args: &[&str]) -> (i32, String, String) {
        let env = self.env(key);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cli(args, &env)
    }
}

#[test]
fn the_client_commands_read_typed_replies_and_print_plain_words() {
    let demo = Demo::start();
    // A 185 KB input, too long for one argument, goes in a file or stdin.
    let big = json!({"text": "x".repeat(185 * 1024)});
    let input = demo.file("big.json", &big.to_string());
    let (code, out, err) = demo.cli(&demo.agent, &["invoke", "echo", "--input-file", &input]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("json"), big);
    let mut child = aifn()
        .args(["invoke", "echo", "--input-file", "-"])
        .envs(demo.env(&demo.agent))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("aifn runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(big.to_string().as_bytes())
        .expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json"),
        big
    );

    // A closed stdout ends a client command quietly, with its usual status.
    let env = demo.env(&demo.agent);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, _) = with_closed_stdout(&["invoke", "echo", "--input-file", &input, "--json"], &env);
    assert_eq!(code, 0);
    let env = demo.env(&demo.admin);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, _) = with_closed_stdout(&["audit", "list"], &env);
    assert_eq!(code, 0);

    // A server address without a scheme means http; another scheme says
    // what to write.
    let bare = demo.server.addr.to_string();
    let (code, out, err) = cli(
        &["list"],
        &[("AIFN_SERVER", &bare), ("AIFN_KEY", &demo.agent)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("echo"), "{out}");
    let (code, _, err) = cli(
        &[
            "list",
            "--server",
            &format!("ftp://{bare}"),
            "--key",
            &demo.agent,
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("http://HOST:PORT"), "{err}");

    // inspect: plain words, the input schema and the limits.
    let (code, out, err) = demo.cli(&demo.author, &["inspect", "echo@1"]);
    assert_eq!(code, 0, "{err}");
    for debris in ["null", "Some(", "None", "Active", "Pending"] {
        assert!(!out.contains(debris), "{debris} in {out}");
    }
    assert!(out.contains("input schema: {\"type\":\"object\"}"), "{out}");
    assert!(
        out.contains("runs with: fuel 100000000, timeout 1000 ms"),
        "{out}"
    );
    assert!(out.contains("max none declared"), "{out}");
    let (code, out, _) = demo.cli(&demo.author, &["inspect", "echo"]);
    assert_eq!(code, 0);
    assert!(out.contains("echo@1  active  by alice"), "{out}");

    // Audit rows of calls without an end user have no dangling "for".
    let (code, out, err) = demo.cli(&demo.admin, &["audit", "list", "--stream", "execution"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("echo@1 ok")).collect();
    assert!(!rows.is_empty(), "{out}");
    for row in rows {
        assert!(row.ends_with("by hr-bot [allow policy v1]"), "{row}");
    }
    let (code, _, err) = demo.cli(
        &demo.agent,
        &["invoke", "echo", "--input", "{}", "--user", "u-7"],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = demo.cli(
        &demo.admin,
        &["audit", "list", "--stream", "execution", "--limit", "1"],
    );
    assert!(out.contains("echo@1 ok by hr-bot for u-7"), "{out}");
}

#[test]
fn manifest_errors_point_into_the_toml_file() {
    let demo = Demo::start();
    let module = demo.file("m.wat", ECHO);
    let typo = demo.file(
        "typo.toml",
        "description = \"d\"\ninput_schema = { type = \"object\" }\n[limits]\n  fuell = 3\n",
    );
    let (code, _, err) = demo.cli(&demo.author, &["upload", "m", &module, "--manifest", &typo]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{typo}:4:3: ")), "{err}");
    assert!(err.contains("fuell"), "{err}");
    let bare = demo.file("bare.toml", "description = \"d\"\n");
    let (code, _, err) = demo.cli(&demo.author, &["upload", "m", &module, "--manifest", &bare]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no input schema"), "{err}");
    assert!(err.contains("input_schema = "), "{err}");
    assert!(err.contains("schema.json beside the manifest"), "{err}");
    assert!(
        !err.contains("column"),
        "no position in the request body: {err}"
    );
    // With schema.json beside it, the same manifest uploads.
    demo.file("schema.json", r#"{"type":"object"}"#);
    let (code, _, err) = demo.cli(&demo.author, &["upload", "m", &module, "--manifest", &bare]);
    assert_eq!(code, 0, "{err}");
}

/// A one-shot HTTP server answering every request with `body`.
fn fake_server(body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_reply_this_aifn_does_not_understand_is_an_error_not_blanks() {
    let changed = fake_server(r#"{"functions":[{"title":"echo","active":1}]}"#);
    let (code, out, err) = cli(&["list"], &[("AIFN_SERVER", &changed), ("AIFN_KEY", "k")]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("GET /v1/functions"), "{err}");
    assert!(err.contains("is not what aifn"), "{err}");
    assert!(err.contains("missing field"), "{err}");
    assert!(out.is_empty(), "no table of blanks: {out}");
    let current = fake_server(r#"{"functions":[]}"#);
    let (code, out, err) = cli(&["list"], &[("AIFN_SERVER", &current), ("AIFN_KEY", "k")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(none)"), "{out}");
}

#[test]
fn keys_create_names_the_data_dir_and_says_when_it_is_new() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("fresh");
    let args = [
        "keys",
        "create",
        "--data-dir",
        dir.to_str().expect("utf-8"),
        "--tenant",
        "acme",
        "--role",
        "agent",
        "--subject",
        "bot",
    ];
    let (code, out, err) = cli(&args, &[]);
    assert_eq!(code, 0, "{err}");
    let abs = dir.canonicalize().expect("exists");
    assert!(
        out.contains(&format!("data dir: {}", abs.display())),
        "{out}"
    );
    assert!(err.contains("Created the data dir"), "{err}");
    let (code, out, err) = cli(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("data dir: {}", abs.display())),
        "{out}"
    );
    assert!(!err.contains("Created"), "not new the second time: {err}");
}

/// Starts `aifn serve` with `args`; returns it and its stderr up to the
/// listening line (or to its exit).
fn serve(args: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child = aifn()
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aifn serve starts");
    let mut lines = Vec::new();
    let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        lines.push(std::mem::take(&mut line));
        if lines
            .last()
            .is_some_and(|l| l.starts_with("aifn listening"))
        {
            break;
        }
    }
    std::thread::spawn(move || {
        let _ = reader.read_to_end(&mut Vec::new());
    });
    (child, lines)
}

fn stop(mut child: std::process::Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
}

#[test]
fn one_server_per_data_dir_each_with_its_own_node_name() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path().to_str().expect("utf-8");
    let (first, lines) = serve(&["--data-dir", d, "--listen", "localhost:0"]);
    assert!(
        lines.iter().any(|l| l.starts_with("aifn listening")),
        "{lines:?}"
    );
    // Logs to a pipe carry no colour codes.
    assert!(lines.iter().all(|l| !l.contains('\x1b')), "{lines:?}");

    let (code, _, err) = cli(&["serve", "--data-dir", d, "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(code, 2, "{err}");
    let abs = data.path().canonicalize().expect("exists");
    assert!(
        err.contains(&format!(
            "the data dir {} is in use by another aifn",
            abs.display()
        )),
        "{err}"
    );
    // Local commands still work beside the running server.
    key(data.path(), "acme", "agent", "beside");
    let node = std::fs::read_to_string(data.path().join("node")).expect("node file");
    stop(first);

    // Once it stopped, the next one starts, with the same node name.
    let (again, lines) = serve(&["--data-dir", d, "--listen", "127.0.0.1:0"]);
    assert!(
        lines.iter().any(|l| l.starts_with("aifn listening")),
        "{lines:?}"
    );
    stop(again);
    assert_eq!(
        std::fs::read_to_string(data.path().join("node")).expect("node"),
        node
    );
    let other = tempfile::tempdir().expect("tempdir");
    let o = other.path().to_str().expect("utf-8");
    let (third, _) = serve(&[
        "--data-dir",
        o,
        "--listen",
        "127.0.0.1:0",
        "--node",
        "explicit",
    ]);
    stop(third);
    assert!(!other.path().join("node").exists(), "an explicit node wins");
    let (fourth, _) = serve(&["--data-dir", o, "--listen", "127.0.0.1:0"]);
    stop(fourth);
    let other_node = std::fs::read_to_string(other.path().join("node")).expect("node");
    assert_ne!(other_node, node, "each data dir names its own node");
}

#[test]
fn audit_export_takes_security_like_list() {
    let demo = Demo::start();
    let (status, _) = http(
        "GET",
        &format!("{}/v1/functions", demo.server.url()),
        None,
        None,
    );
    assert_eq!(status, 401);
    let d = demo.data.path().to_str().expect("utf-8");
    let (code, out, err) = cli(&["audit", "export", "--data-dir", d, "--security"], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|e| e["stream"] == "security" && e["reason"] == "missing_key"),
        "{out}"
    );
    let (code, out, _) = cli(&["audit", "list", "--data-dir", d, "--security"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("missing_key on /v1/functions"), "{out}");
    let (code, _, err) = demo.cli(&demo.admin, &["audit", "export", "--security"]);
    assert_eq!(code, 2);
    assert!(err.contains("--security needs --data-dir"), "{err}");
}
