//! The registry commands over HTTP: upload, list, pending, inspect,
//! approve, reject, revoke.

use std::path::{Path, PathBuf};

use aifn_service::{FunctionDetail, FunctionList, VersionInfo, VersionList};
use aifn_types::{Source, SourceLanguage};
use anyhow::bail;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::client::{Conn, name_at_version};
use crate::output::{self, err, out};
use crate::report::{print_numbered, print_report, print_version};
use crate::run::{self, ModuleFile};
use crate::{Exit, manifest};

/// The upload body's code: a `.wat` file as its source (the server builds
/// it and approvers read it), unless `as_module`; a `.wasm` as module bytes.
fn code_fields(module: &Path, as_module: bool) -> anyhow::Result<(&'static str, Value)> {
    let b64 = |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    match run::read_module_file(module)? {
        ModuleFile::Wasm(bytes) => {
            if as_module {
                err!(
                    "{} is already a wasm module: --as-module changes nothing",
                    module.display()
                );
            }
            Ok(("module", b64(&bytes)))
        }
        ModuleFile::Wat { wasm, .. } if as_module => Ok(("module", b64(&wasm))),
        ModuleFile::Js { .. } if as_module => bail!(
            "{} is JavaScript: it is uploaded as its source, which the server runs on its engine; drop --as-module",
            module.display()
        ),
        ModuleFile::Js { text, .. } => {
            let source = Source {
                language: SourceLanguage::Javascript,
                text,
            };
            Ok(("source", serde_json::to_value(source)?))
        }
        ModuleFile::Wat { text, .. } => {
            if text.len() > Source::MAX_BYTES {
                bail!(
                    "{} is {} bytes of WAT; a source may be at most {} bytes: send it compiled with --as-module",
                    module.display(),
                    text.len(),
                    Source::MAX_BYTES
                );
            }
            let source = Source {
                language: SourceLanguage::Wat,
                text,
            };
            Ok(("source", serde_json::to_value(source)?))
        }
    }
}

pub(crate) fn upload(
    conn: &Conn,
    name: &str,
    module: &Path,
    manifest: Option<PathBuf>,
    as_module: bool,
) -> anyhow::Result<Exit> {
    let (field, code) = code_fields(module, as_module)?;
    let manifest = manifest::read(&manifest::locate(module, manifest)?)?;
    let mut body = json!({"manifest": manifest});
    body[field] = code;
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
    let failing = v.report.failing_tests();
    if !failing.is_empty() {
        out!(
            "Failing tests: {}. Approval is refused while a test fails (unless an approver overrides it, saying why).",
            failing.join(", ")
        );
    }
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
        // A JavaScript version is read as its source: the code that runs.
        if v.source
            .as_ref()
            .is_some_and(|s| s.language == SourceLanguage::Javascript)
        {
            let path = format!("/v1/functions/{name}/versions/{}/source", v.version);
            let Some(source) = conn.get_as::<Source>(&path)? else {
                return Ok(Exit::Failed);
            };
            out!("  source:");
            print_numbered(&source.value.text);
        }
    }
    Ok(Exit::Ok)
}

/// A decision on one version.
#[derive(Clone, Copy)]
pub(crate) enum Action {
    /// Activate it; with the override although manifest tests fail.
    Approve { override_failing_tests: bool },
    /// Refuse it.
    Reject,
    /// Take the active version out of service.
    Revoke,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Approve { .. } => "approve",
            Action::Reject => "reject",
            Action::Revoke => "revoke",
        }
    }
}

pub(crate) fn decide(
    conn: &Conn,
    action: Action,
    target: &str,
    notes: &str,
    sha256: Option<String>,
) -> anyhow::Result<Exit> {
    let verb = action.as_str();
    let (name, version) = name_at_version(target)?;
    let Some(version) = version else {
        bail!("{verb} needs NAME@VERSION")
    };
    let path = format!("/v1/functions/{name}/versions/{version}");
    let mut body = json!({"notes": notes});
    if let Action::Approve {
        override_failing_tests: true,
    } = action
    {
        body["override_failing_tests"] = Value::Bool(true);
    }
    if !matches!(action, Action::Revoke) {
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
            err!("{verb} {name}@{version} sha256 {sha}");
        }
        body["sha256"] = Value::String(sha);
    }
    let Some(reply) = conn.post_as::<VersionInfo>(&format!("{path}/{verb}"), &body)? else {
        return Ok(Exit::Failed);
    };
    if conn.json_output() {
        output::json(&reply.raw);
        return Ok(Exit::Ok);
    }
    out!("{name}@{version} is now {}", reply.value.state);
    let overridden = reply
        .value
        .decisions
        .last()
        .is_some_and(|d| d.override_failing_tests);
    if overridden {
        out!(
            "approved over failing tests ({}): the override is recorded with your notes",
            reply.value.report.failing_tests().join(", ")
        );
    }
    Ok(Exit::Ok)
}
