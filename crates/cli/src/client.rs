//! The HTTP client commands: upload, list, pending, inspect, approve,
//! reject, revoke, invoke, tools.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Exit, output};

/// Where the server is and who we are.
#[derive(clap::Args, Clone)]
pub(crate) struct Conn {
    /// The aifn server.
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
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Conn {
    pub(crate) fn json_output(&self) -> bool {
        self.json
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.trim_end_matches('/'), path)
    }

    fn key(&self) -> anyhow::Result<&str> {
        self.key
            .as_deref()
            .context("no API key: pass --key or set AIFN_KEY")
    }

    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Reply> {
        let resp = Self::agent()
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.key()?))
            .call()
            .with_context(|| format!("cannot reach {}", self.server))?;
        Self::reply(resp)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        let resp = Self::agent()
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.key()?))
            .send_json(body)
            .with_context(|| format!("cannot reach {}", self.server))?;
        Self::reply(resp)
    }

    fn reply(mut resp: ureq::http::Response<ureq::Body>) -> anyhow::Result<Reply> {
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .context("cannot read the response")?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply { status, body })
    }
}

/// Prints an error reply and returns exit 1.
pub(crate) fn failed(reply: &Reply, json: bool) -> Exit {
    if json {
        output::json(&reply.body);
    } else {
        let kind = reply.body["error"]["kind"].as_str().unwrap_or("error");
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        eprintln!("aifn: {kind}: {message} (HTTP {})", reply.status);
        if let Some(vs) = reply.body["error"]["violations"].as_array() {
            for v in vs {
                eprintln!(
                    "  {}: {}",
                    v["path"].as_str().unwrap_or(""),
                    v["message"].as_str().unwrap_or("")
                );
            }
        }
        if let Some(id) = reply.body["execution_id"].as_str() {
            eprintln!("  execution_id: {id}");
        }
    }
    Exit::Failed
}

fn ok(reply: &Reply) -> bool {
    (200..300).contains(&reply.status)
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

/// Reads a manifest file (TOML): `description`, `input_schema` (inline, or
/// `input_schema_file` relative to the manifest, or `schema.json` beside
/// it), optional `output_schema`/`output_schema_file`, `[limits]`, `[capture]`.
pub(crate) fn read_manifest(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid TOML in {}", path.display()))?;
    let mut v = serde_json::to_value(table)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let obj = v.as_object_mut().context("the manifest must be a table")?;
    for field in ["input_schema", "output_schema"] {
        let file_key = format!("{field}_file");
        if let Some(file) = obj.remove(&file_key) {
            let file = file
                .as_str()
                .with_context(|| format!("{file_key} must be a path"))?;
            let p = dir.join(file);
            let schema: Value = serde_json::from_slice(
                &std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
            )
            .with_context(|| format!("{} is not JSON", p.display()))?;
            obj.insert(field.to_owned(), schema);
        }
    }
    if !obj.contains_key("input_schema") {
        let p = dir.join("schema.json");
        if p.exists() {
            let schema: Value = serde_json::from_slice(&std::fs::read(&p)?)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            obj.insert("input_schema".into(), schema);
        }
    }
    Ok(v)
}

fn manifest_path(module: &Path, manifest: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(m) = manifest {
        return Ok(m);
    }
    for candidate in [
        module.with_extension("toml"),
        module.parent().unwrap_or(Path::new(".")).join("aifn.toml"),
        PathBuf::from("aifn.toml"),
    ] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("no manifest: pass --manifest FILE (a TOML file with description and input_schema)")
}

pub(crate) fn upload(
    conn: &Conn,
    name: &str,
    module: &Path,
    manifest: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    let bytes = crate::run::read_module(&module.to_path_buf())?;
    let manifest = read_manifest(&manifest_path(module, manifest)?)?;
    let body = json!({"manifest": manifest, "module": base64::engine::general_purpose::STANDARD.encode(&bytes)});
    let reply = conn.post(&format!("/v1/functions/{name}/versions"), &body)?;
    if !ok(&reply) {
        return Ok(failed(&reply, conn.json));
    }
    if conn.json {
        output::json(&reply.body);
    } else {
        let b = &reply.body;
        println!(
            "uploaded {}@{} ({})",
            b["name"].as_str().unwrap_or(name),
            b["version"],
            b["state"].as_str().unwrap_or("?")
        );
        println!("sha256 {}", b["sha256"].as_str().unwrap_or(""));
        print_report(&b["report"]);
        println!("An approver of your tenant (not you) must approve it before it can run.");
    }
    Ok(Exit::Ok)
}

fn print_report(r: &Value) {
    let m = &r["module"];
    println!(
        "  size {} bytes, {} functions, code {} bytes",
        m["size_bytes"], m["function_count"], m["code_size_bytes"]
    );
    let imports: Vec<String> = m["imports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    format!(
                        "{}.{}",
                        i["module"].as_str().unwrap_or(""),
                        i["name"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "  imports: {}",
        if imports.is_empty() {
            "(none)".to_owned()
        } else {
            imports.join(", ")
        }
    );
    println!("  uses WASI (zero capabilities): {}", m["uses_wasi"]);
    if let Some(f) = m["features"].as_array().filter(|f| !f.is_empty()) {
        let names: Vec<_> = f.iter().filter_map(|x| x.as_str()).collect();
        println!("  features: {}", names.join(", "));
    }
    if let Some(mem) = m["memory"].as_object() {
        println!(
            "  memory: {} pages initial, max {}",
            mem["min_pages"],
            mem.get("max_pages").cloned().unwrap_or(Value::Null)
        );
    }
    let l = &r["effective_limits"];
    println!(
        "  runs with: fuel {}, timeout {} ms, memory {} bytes, output {} bytes",
        l["fuel"], l["timeout_ms"], l["memory_bytes"], l["output_bytes"]
    );
    if let Some(d) = r["diff"].as_object() {
        println!(
            "  since v{}: imports +{} -{}, size {:+} bytes",
            d["previous_version"],
            d["imports_added"],
            d["imports_removed"],
            d["size_change_bytes"].as_i64().unwrap_or(0)
        );
    }
}

pub(crate) fn list(conn: &Conn) -> anyhow::Result<Exit> {
    let reply = conn.get("/v1/functions")?;
    if !ok(&reply) {
        return Ok(failed(&reply, conn.json));
    }
    if conn.json {
        output::json(&reply.body);
        return Ok(Exit::Ok);
    }
    let rows = reply.body["functions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    vec![
                        f["name"].as_str().unwrap_or("").to_owned(),
                        f["active_version"]
                            .as_u64()
                            .map_or("-".into(), |v| v.to_string()),
                        f["latest_version"].to_string(),
                        f["counts"]["pending"].to_string(),
                        f["description"]
                            .as_str()
                            .unwrap_or("")
                            .chars()
                            .take(60)
                            .collect(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    output::table(
        &["NAME", "ACTIVE", "LATEST", "PENDING", "DESCRIPTION"],
        rows,
    );
    Ok(Exit::Ok)
}

pub(crate) fn pending(conn: &Conn) -> anyhow::Result<Exit> {
    let reply = conn.get("/v1/pending")?;
    if !ok(&reply) {
        return Ok(failed(&reply, conn.json));
    }
    if conn.json {
        output::json(&reply.body);
        return Ok(Exit::Ok);
    }
    let rows = reply.body["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    vec![
                        format!("{}@{}", v["name"].as_str().unwrap_or(""), v["version"]),
                        v["author"].as_str().unwrap_or("").to_owned(),
                        v["uploaded_at"].as_str().unwrap_or("").to_owned(),
                        v["sha256"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    output::table(&["VERSION", "AUTHOR", "UPLOADED", "SHA256"], rows);
    Ok(Exit::Ok)
}

pub(crate) fn inspect(conn: &Conn, target: &str) -> anyhow::Result<Exit> {
    let (name, version) = name_at_version(target)?;
    let path = match version {
        Some(v) => format!("/v1/functions/{name}/versions/{v}"),
        None => format!("/v1/functions/{name}"),
    };
    let reply = conn.get(&path)?;
    if !ok(&reply) {
        return Ok(failed(&reply, conn.json));
    }
    if conn.json {
        output::json(&reply.body);
        return Ok(Exit::Ok);
    }
    let versions: Vec<Value> = match version {
        Some(_) => vec![reply.body.clone()],
        None => reply.body["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    for v in versions {
        println!(
            "{}@{}  {}  by {}  at {}",
            v["name"].as_str().unwrap_or(""),
            v["version"],
            v["state"].as_str().unwrap_or(""),
            v["author"].as_str().unwrap_or(""),
            v["uploaded_at"].as_str().unwrap_or("")
        );
        println!("  sha256 {}", v["sha256"].as_str().unwrap_or(""));
        println!("  {}", v["manifest"]["description"].as_str().unwrap_or(""));
        print_report(&v["report"]);
        for d in v["decisions"].as_array().into_iter().flatten() {
            println!(
                "  {} by {} at {}: {}",
                d["action"].as_str().unwrap_or(""),
                d["actor"].as_str().unwrap_or(""),
                d["at"].as_str().unwrap_or(""),
                d["notes"].as_str().unwrap_or("")
            );
        }
    }
    Ok(Exit::Ok)
}

pub(crate) fn decide(
    conn: &Conn,
    action: &str,
    target: &str,
    notes: &str,
    sha256: Option<String>,
) -> anyhow::Result<Exit> {
    let (name, version) = name_at_version(target)?;
    let Some(version) = version else {
        bail!("{action} needs NAME@VERSION")
    };
    let mut body = json!({"notes": notes});
    if action != "revoke" {
        // Bind the decision to the hash the approver saw: the one given, or
        // the one the server shows now (printed so it is on record).
        let sha = match sha256 {
            Some(s) => s,
            None => {
                let reply = conn.get(&format!("/v1/functions/{name}/versions/{version}"))?;
                if !ok(&reply) {
                    return Ok(failed(&reply, conn.json));
                }
                reply.body["sha256"].as_str().unwrap_or_default().to_owned()
            }
        };
        if !conn.json {
            eprintln!("{action} {name}@{version} sha256 {sha}");
        }
        body["sha256"] = Value::String(sha);
    }
    let reply = conn.post(
        &format!("/v1/functions/{name}/versions/{version}/{action}"),
        &body,
    )?;
    if !ok(&reply) {
        return Ok(failed(&reply, conn.json));
    }
    if conn.json {
        output::json(&reply.body);
    } else {
        println!(
            "{name}@{version} is now {}",
            reply.body["state"].as_str().unwrap_or("?")
        );
    }
    Ok(Exit::Ok)
}

pub(crate) fn invoke(conn: &Conn, name: &str, input: &str, user: &str) -> anyhow::Result<Exit> {
    let input: Value = serde_json::from_str(input).context("--input must be JSON")?;
    let reply = conn.post(
        &format!("/v1/functions/{name}/invoke"),
        &json!({"input": input, "user_id": user}),
    )?;
    if !ok(&reply) {
        return Ok(failed(&reply, conn.json));
    }
    if conn.json {
        output::json(&reply.body);
    } else {
        output::json(&reply.body["output"]);
        eprintln!(
            "execution_id {}  fuel {}  {:.3} ms",
            reply.body["execution_id"].as_str().unwrap_or(""),
            reply.body["fuel_used"],
            reply.body["duration_ms"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(Exit::Ok)
}

pub(crate) fn tools(conn: &Conn, format: &str) -> anyhow::Result<Exit> {
    let reply = conn.get(&format!("/v1/tools?format={format}"))?;
    if !ok(&reply) {
        return Ok(failed(&reply, conn.json));
    }
    if conn.json {
        output::json(&reply.body["tools"]);
        return Ok(Exit::Ok);
    }
    let rows = reply.body["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let f = if t["function"].is_object() {
                        &t["function"]
                    } else {
                        t
                    };
                    vec![
                        f["name"].as_str().unwrap_or("").to_owned(),
                        f["description"]
                            .as_str()
                            .unwrap_or("")
                            .chars()
                            .take(80)
                            .collect(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    output::table(&["TOOL", "DESCRIPTION"], rows);
    Ok(Exit::Ok)
}
