//! The HTTP client: where the server is, who we are, and replies read into
//! the API's shared types (`aifn_service::{FunctionList, ...}`), so a reply
//! this aifn does not understand is an error that says so.

use std::time::Duration;

use aifn_service::ErrorBody;
use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Exit;
use crate::output::{self, err};

/// The largest response body read (a bundle with modules is the largest).
const BODY_LIMIT: u64 = 256 << 20;

/// Where the server is and who we are.
#[derive(clap::Args, Clone)]
pub(crate) struct Conn {
    /// The aifn server: `http://HOST:PORT` (a bare `HOST:PORT` means http).
    #[arg(
        long,
        env = "AIFN_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// The API key.
    #[arg(long, env = "AIFN_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

/// A completed HTTP exchange.
pub(crate) struct Reply {
    /// `GET /v1/...`, for messages.
    request: String,
    status: u16,
    /// The body as JSON, or as a JSON string when it is not JSON.
    body: Value,
    is_json: bool,
}

/// A reply whose body is not what this aifn expects: another server
/// version, or not an aifn server at all.
#[derive(Debug)]
pub(crate) struct UnexpectedReply {
    request: String,
    status: u16,
    why: String,
    source: Option<serde_json::Error>,
}

impl std::fmt::Display for UnexpectedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the answer to {} (HTTP {}) is not what aifn {} expects ({}): is the server another aifn version?",
            self.request,
            self.status,
            env!("CARGO_PKG_VERSION"),
            self.why
        )
    }
}

impl std::error::Error for UnexpectedReply {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl Reply {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T`.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, UnexpectedReply> {
        if !self.is_json {
            let text: String = self
                .body
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return Err(self.unexpected(format!("the body is not JSON: {text:?}"), None));
        }
        serde_json::from_value(self.body.clone())
            .map_err(|e| self.unexpected(e.to_string(), Some(e)))
    }

    fn unexpected(&self, why: String, source: Option<serde_json::Error>) -> UnexpectedReply {
        UnexpectedReply {
            request: self.request.clone(),
            status: self.status,
            why,
            source,
        }
    }
}

/// A successful reply: its typed body, and the server's JSON as it came
/// (what `--json` prints).
pub(crate) struct Typed<T> {
    pub(crate) value: T,
    pub(crate) raw: Value,
}

/// The server's address with a scheme: a bare `HOST:PORT` means http.
fn base_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim_end_matches('/');
    match server.split_once("://") {
        None => Ok(format!("http://{server}")),
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(server.to_owned()),
        Some(_) => anyhow::bail!(
            "--server {server}: write http://HOST:PORT or https://HOST (or just HOST:PORT)"
        ),
    }
}

impl Conn {
    pub(crate) fn json_output(&self) -> bool {
        self.json
    }

    /// With `--json`, prints the server's JSON as it came and says so.
    pub(crate) fn print_raw<T>(&self, reply: &Typed<T>) -> bool {
        if self.json {
            output::json(&reply.raw);
        }
        self.json
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into()
    }

    fn key(&self) -> anyhow::Result<&str> {
        self.key
            .as_deref()
            .context("no API key: pass --key or set AIFN_KEY")
    }

    fn send_get(&self, path: &str) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{path}", base_url(&self.server)?);
        Self::agent()
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.key()?))
            .call()
            .with_context(|| format!("cannot reach {}", self.server))
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Reply> {
        Self::reply(format!("GET {path}"), self.send_get(path)?)
    }

    /// `GET path` as the body's exact bytes (a module, a bundle file);
    /// `None` once a refusal has been printed.
    pub(crate) fn get_bytes(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut resp = self.send_get(path)?;
        if !(200..300).contains(&resp.status().as_u16()) {
            let reply = Self::reply(format!("GET {path}"), resp)?;
            failed(&reply, self.json)?;
            return Ok(None);
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .context("cannot read the response")?;
        Ok(Some(bytes))
    }

    /// `POST path` with a JSON body.
    pub(crate) fn post(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<Reply> {
        let url = format!("{}{path}", base_url(&self.server)?);
        let resp = Self::agent()
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.key()?))
            .send_json(body)
            .with_context(|| format!("cannot reach {}", self.server))?;
        Self::reply(format!("POST {path}"), resp)
    }

    /// `PUT path` with a JSON body.
    pub(crate) fn put(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<Reply> {
        let url = format!("{}{path}", base_url(&self.server)?);
        let resp = Self::agent()
            .put(&url)
            .header("Authorization", &format!("Bearer {}", self.key()?))
            .send_json(body)
            .with_context(|| format!("cannot reach {}", self.server))?;
        Self::reply(format!("PUT {path}"), resp)
    }

    /// `DELETE path`.
    pub(crate) fn delete(&self, path: &str) -> anyhow::Result<Reply> {
        let url = format!("{}{path}", base_url(&self.server)?);
        let resp = Self::agent()
            .delete(&url)
            .header("Authorization", &format!("Bearer {}", self.key()?))
            .call()
            .with_context(|| format!("cannot reach {}", self.server))?;
        Self::reply(format!("DELETE {path}"), resp)
    }

    /// `PUT path` as `T`; `None` once a refusal has been printed.
    pub(crate) fn put_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<Option<Typed<T>>> {
        self.typed(self.put(path, body)?)
    }

    /// `DELETE path`: whether it succeeded (a refusal is printed).
    pub(crate) fn delete_ok(&self, path: &str) -> anyhow::Result<bool> {
        let reply = self.delete(path)?;
        if reply.ok() {
            return Ok(true);
        }
        failed(&reply, self.json)?;
        Ok(false)
    }

    /// `GET path` as `T`; `None` once a refusal has been printed (exit 1).
    pub(crate) fn get_as<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<Option<Typed<T>>> {
        self.typed(self.get(path)?)
    }

    /// `POST path` as `T`; `None` once a refusal has been printed.
    pub(crate) fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<Option<Typed<T>>> {
        self.typed(self.post(path, body)?)
    }

    fn typed<T: DeserializeOwned>(&self, reply: Reply) -> anyhow::Result<Option<Typed<T>>> {
        if !reply.ok() {
            failed(&reply, self.json)?;
            return Ok(None);
        }
        let value = reply.parse()?;
        Ok(Some(Typed {
            value,
            raw: reply.body,
        }))
    }

    fn reply(request: String, mut resp: ureq::http::Response<ureq::Body>) -> anyhow::Result<Reply> {
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .context("cannot read the response")?;
        let (body, is_json) = match serde_json::from_str(&text) {
            Ok(v) => (v, true),
            Err(_) => (Value::String(text), false),
        };
        Ok(Reply {
            request,
            status,
            body,
            is_json,
        })
    }
}

/// Prints an error reply (the server's JSON with `--json`).
pub(crate) fn failed(reply: &Reply, json: bool) -> anyhow::Result<Exit> {
    if json {
        output::json(&reply.body);
        return Ok(Exit::Failed);
    }
    let body: ErrorBody = reply.parse()?;
    let e = &body.error;
    match e.reason {
        Some(reason) => err!(
            "aifn: {}: {} (HTTP {}, reason {reason})",
            e.kind,
            e.message,
            reply.status
        ),
        None => err!("aifn: {}: {} (HTTP {})", e.kind, e.message, reply.status),
    }
    for v in e.violations.iter().flatten() {
        err!("  {}: {}", v.location(), v.message);
    }
    if let Some(id) = &body.execution_id {
        err!("  execution_id: {id}");
    }
    Ok(Exit::Failed)
}

/// A path segment with everything but unreserved characters
/// percent-encoded (a subject may hold `/`, `?`, `#` or `%`).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `NAME@VERSION`.
pub(crate) fn name_at_version(s: &str) -> anyhow::Result<(String, Option<u32>)> {
    match s.split_once('@') {
        None => Ok((s.to_owned(), None)),
        Some((n, v)) => {
            let v: u32 = v
                .parse()
                .with_context(|| format!("{s}: the version after @ must be a number"))?;
            Ok((n.to_owned(), Some(v)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_a_scheme_means_http() {
        assert_eq!(
            base_url("127.0.0.1:8080").expect("ok"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("https://aifn.example/").expect("ok"),
            "https://aifn.example"
        );
        let e = base_url("ftp://x").expect_err("refused");
        assert!(e.to_string().contains("http://HOST:PORT"), "{e}");
    }

    #[test]
    fn subjects_are_encoded_as_one_path_segment() {
        assert_eq!(path_segment("hr-bot"), "hr-bot");
        assert_eq!(path_segment("bot@acme.example"), "bot@acme.example");
        assert_eq!(path_segment("a/b?c#d%e"), "a%2Fb%3Fc%23d%25e");
    }
}
