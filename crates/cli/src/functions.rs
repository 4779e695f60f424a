//! The registry commands over HTTP: upload, list, pending, inspect,
//! approve, reject, revoke.

use std::path::{Path, PathBuf};

use aifn_service::{FunctionDetail, FunctionList, VersionInfo, VersionList};
use anyhow::bail;
use base64::Engine as _;
use serde_json::json;

use crate::client::{Conn, name_at_version};
use crate::output::{self, err, out};
use crate::report::{print_report, print_version};
use crate::{Exit, manifest};

pub(crate) fn upload(
    conn: &Conn,
    name: &str,
    module: &Path,
    manifest: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    let bytes = crate::run::read_module(module)?;
    let manifest = manifest::read(&manifest::locate(module, manifest)?)?;
    let body = json!({"manifest": manifest, "module": base64::engine::general_purpose::STANDARD.encode(&bytes)});
    let Some(reply) =
        conn.post_as::<VersionInfo>(&format!("/v1/functions/{name}/versions"), &body)?
    else {
        return Ok(Exit::Failed);
    };
    if conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let v = &reply.value;
    out!("uploaded {}@{} ({})", v.name, v.version, v.state);
    out!("sha256 {}", v.sha256);
    print_report(&v.report);
    out!("An approver of your tenant (not you) must approve it before it can run.");
    Ok(Exit::Ok)
}

pub(crate) fn list(conn: &Conn) -> anyhow::Result<Exit> {
    let Some(reply) = conn.get_as::<FunctionList>("/v1/functions")? else {
        return Ok(Exit::Failed);
    };
    if conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let rows = reply
        .value
        .functions
        .iter()
        .map(|f| {
            vec![
                f.name.to_string(),
                f.active_version.map_or("-".into(), |v| v.to_string()),
                format!("{} ({})", f.latest_version, f.latest_state),
                f.counts.pending.to_string(),
                f.description
                    .as_deref()
                    .unwrap_or("-")
                    .chars()
                    .take(60)
                    .collect(),
            ]
        })
        .collect();
    output::table(
        &["NAME", "ACTIVE", "LATEST", "PENDING", "DESCRIPTION"],
        rows,
    );
    Ok(Exit::Ok)
}

pub(crate) fn pending(conn: &Conn) -> anyhow::Result<Exit> {
    let Some(reply) = conn.get_as::<VersionList>("/v1/pending")? else {
        return Ok(Exit::Failed);
    };
    if conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let rows = reply
        .value
        .versions
        .iter()
        .map(|v| {
            vec![
                format!("{}@{}", v.name, v.version),
                v.author.to_string(),
                v.uploaded_at.to_string(),
                v.sha256.clone(),
            ]
        })
        .collect();
    output::table(&["VERSION", "AUTHOR", "UPLOADED", "SHA256"], rows);
    Ok(Exit::Ok)
}

pub(crate) fn inspect(conn: &Conn, target: &str) -> anyhow::Result<Exit> {
    let (name, version) = name_at_version(target)?;
    let (versions, raw) = match version {
        Some(v) => {
            let path = format!("/v1/functions/{name}/versions/{v}");
            let Some(r) = conn.get_as::<VersionInfo>(&path)? else {
                return Ok(Exit::Failed);
            };
            (vec![r.value], r.raw)
        }
        None => {
            let Some(r) = conn.get_as::<FunctionDetail>(&format!("/v1/functions/{name}"))? else {
                return Ok(Exit::Failed);
            };
            (r.value.versions, r.raw)
        }
    };
    if conn.json_output() {
        output::json(&raw);
        return Ok(Exit::Ok);
    }
    for v in &versions {
        print_version(v);
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
    let path = format!("/v1/functions/{name}/versions/{version}");
    let mut body = json!({"notes": notes});
    if action != "revoke" {
        // Bind the decision to the hash the approver saw: the one given, or
        // the one the server shows now (printed so it is on record).
        let sha = match sha256 {
            Some(s) => s,
            None => match conn.get_as::<VersionInfo>(&path)? {
                Some(r) => r.value.sha256,
                None => return Ok(Exit::Failed),
            },
        };
        if !conn.json_output() {
            err!("{action} {name}@{version} sha256 {sha}");
        }
        body["sha256"] = serde_json::Value::String(sha);
    }
    let Some(reply) = conn.post_as::<VersionInfo>(&format!("{path}/{action}"), &body)? else {
        return Ok(Exit::Failed);
    };
    if conn.json_output() {
        output::json(&reply.raw);
    } else {
        out!("{name}@{version} is now {}", reply.value.state);
    }
    Ok(Exit::Ok)
}
