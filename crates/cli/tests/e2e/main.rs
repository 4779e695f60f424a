//! End-to-end tests: the real `aifn` binary, a real `aifn serve` process on
//! a real socket, real SQLite files (or a real PostgreSQL server for a
//! fleet), the real example functions built from source by
//! `cargo xtask build-functions`.

mod approval;
mod client;
mod config;
mod console;
mod evidence;
mod fleet;
mod js;
mod mcp;
mod policies;
mod run;
mod service;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) fn aifn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aifn"))
}

/// Runs `aifn` with args; returns (exit code, stdout, stderr).
pub(crate) fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = aifn();
    cmd.args(args)
        .env_remove("AIFN_KEY")
        .env_remove("AIFN_SERVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("aifn runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The directory `cargo xtask build-functions` writes modules to.
pub(crate) fn wasm_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIFN_WASM_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("wasm")
}

/// A built example function; fails loudly if the build step was skipped.
pub(crate) fn function_wasm(name: &str) -> PathBuf {
    let p = wasm_dir().join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build-functions` first (the README's test command does)",
        p.display()
    );
    p
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Creates an API key on the data dir and returns its secret.
pub(crate) fn key(data: &Path, tenant: &str, role: &str, subject: &str) -> String {
    key_with(data, &[], tenant, role, subject)
}

/// [`key`] with more options of `aifn keys create` (`--database URL`).
pub(crate) fn key_with(
    data: &Path,
    extra: &[&str],
    tenant: &str,
    role: &str,
    subject: &str,
) -> String {
    let d = data.to_str().expect("utf-8 path");
    let mut args = vec!["keys", "create", "--data-dir", d];
    args.extend_from_slice(extra);
    args.extend([
        "--tenant",
        tenant,
        "--role",
        role,
        "--subject",
        subject,
        "--json",
    ]);
    let (code, out, err) = cli(&args, &[]);
    assert_eq!(code, 0, "keys create failed: {err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    v["secret"].as_str().expect("secret").to_owned()
}

/// A running `aifn serve`, stopped with SIGTERM (graceful) on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(data: &Path, extra: &[&str]) -> Server {
        let mut child = aifn()
            .args([
                "serve",
                "--data-dir",
                data.to_str().expect("utf-8"),
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aifn serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            assert!(Instant::now() < deadline, "aifn serve did not start");
            let line = lines.next().expect("serve exited early").expect("read");
            if let Some(rest) = line.strip_prefix("aifn listening on http://") {
                break rest.trim().parse().expect("address");
            }
        };
        // Keep draining logs so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Server { child, addr }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL and wait: no graceful path at all, as in a crash.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful path flushes and checkpoints the audit log.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate();
        }
    }
}

/// A minimal blocking HTTP client over a real socket.
pub(crate) fn http(
    method: &str,
    url: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let with_key = |r: ureq::RequestBuilder<ureq::typestate::WithoutBody>| match key {
        Some(k) => r.header("Authorization", &format!("Bearer {k}")),
        None => r,
    };
    let resp = match method {
        "GET" => with_key(agent.get(url)).call(),
        _ => {
            let r = agent.post(url);
            let r = match key {
                Some(k) => r.header("Authorization", &format!("Bearer {k}")),
                None => r,
            };
            r.send_json(body.cloned().unwrap_or(Value::Null))
        }
    };
    let mut resp = resp.expect("http exchange");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
