//! Collecting what a bundle holds: the records of its scope, the versions
//! they involve with all their registry records, then the evidence.

use std::collections::{BTreeMap, BTreeSet};

use aifn_audit::{AuditEntry, AuditError, AuditLog, AuditQuery, AuditRecord, Stream};
use aifn_registry::{Registry, VersionInfo};
use aifn_types::{AuditTarget, FunctionName, RegistryActionKind, TenantId, Timestamp};
use base64::Engine as _;

use super::request::Scope;
use super::verify::superseded_by;
use super::{Bundle, BundleRequest, BundledVersion, MAX_BUNDLE_RECORDS};
use crate::ServiceError;
use crate::admin::query_error;

/// The records and versions a bundle holds, before the evidence.
#[derive(Default)]
struct Collected {
    seqs: BTreeSet<u64>,
    versions: BTreeMap<u32, VersionInfo>,
}

impl Collected {
    fn add(&mut self, seq: u64) -> Result<(), ServiceError> {
        self.seqs.insert(seq);
        if self.seqs.len() > MAX_BUNDLE_RECORDS {
            return Err(ServiceError::InvalidRequest {
                message: format!(
                    "a bundle holds at most {MAX_BUNDLE_RECORDS} records; narrow it with \
                     since/until or a version"
                ),
            });
        }
        Ok(())
    }
}

/// Builds the bundle of `req` in `tenant` from its audit log and registry.
pub(crate) fn build(
    audit: &AuditLog,
    registry: &Registry,
    tenant: &TenantId,
    req: BundleRequest,
) -> Result<Bundle, ServiceError> {
    let mut c = Collected::default();
    let name = match req.scope()? {
        Scope::Execution(id) => by_execution(audit, registry, tenant, &id, &mut c)?,
        Scope::Function {
            name,
            version,
            since,
            until,
        } => {
            let window = Window { since, until };
            by_function(audit, registry, tenant, (&name, version), window, &mut c)?;
            name
        }
    };
    if c.seqs.is_empty() {
        return Err(ServiceError::NotFound {
            what: format!("audit records of function {name} in this window"),
        });
    }
    let seqs: Vec<u64> = c.seqs.into_iter().collect();
    let evidence = audit.evidence(tenant, &seqs).map_err(evidence_error)?;
    let mut versions = Vec::with_capacity(c.versions.len());
    for info in c.versions.into_values() {
        let module_base64 = if req.include_module {
            let bytes = registry.module_bytes(&info.sha256)?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            None
        };
        versions.push(BundledVersion {
            info,
            module_base64,
        });
    }
    Ok(Bundle::new(tenant.clone(), req, versions, evidence))
}

fn evidence_error(e: AuditError) -> ServiceError {
    match e {
        AuditError::Unprovable { .. } => ServiceError::Conflict {
            message: e.to_string(),
        },
        AuditError::InvalidQuery { reason } => ServiceError::InvalidRequest {
            message: format!("{reason}; narrow the bundle with since/until or a version"),
        },
        other => ServiceError::internal("audit evidence", &other),
    }
}

/// The execution, its version, and that version's registry records.
fn by_execution(
    audit: &AuditLog,
    registry: &Registry,
    tenant: &TenantId,
    id: &str,
    c: &mut Collected,
) -> Result<FunctionName, ServiceError> {
    let not_found = || ServiceError::NotFound {
        what: format!("execution {id}"),
    };
    let entry = audit
        .execution(tenant, id)
        .map_err(query_error)?
        .ok_or_else(not_found)?;
    let AuditRecord::Execution(rec) = &entry.record else {
        return Err(not_found());
    };
    c.add(entry.seq)?;
    // A refusal before the name was checked may hold any text: no version.
    let Ok(name) = FunctionName::new(&rec.function) else {
        return Err(not_found());
    };
    let Some(sha256) = &rec.module_sha256 else {
        return Ok(name);
    };
    let detail = registry.get_function(tenant, &name)?;
    // The version it names, else (an upload that raced for its number)
    // the one stored with its module.
    let info = detail
        .versions
        .iter()
        .find(|v| &v.sha256 == sha256 && Some(v.version) == rec.version)
        .or_else(|| detail.versions.iter().find(|v| &v.sha256 == sha256))
        .ok_or_else(|| ServiceError::Conflict {
            message: format!(
                "execution {id} ran a module that is no stored version of {name} (a manifest \
                 test of an upload that was not stored); there is no version to bundle"
            ),
        })?;
    let records = registry_records(audit, tenant, &name)?;
    add_version(c, info, &records)?;
    Ok(name)
}

#[derive(Debug, Clone, Copy)]
struct Window {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Window {
    /// The audit query's semantics: at or after `since`, before `until`.
    fn holds(self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// The function's execution records in the window (of the version, when
/// named) and its registry records in the window; the versions they
/// involve, each with all of its registry records.
fn by_function(
    audit: &AuditLog,
    registry: &Registry,
    tenant: &TenantId,
    (name, version): (&FunctionName, Option<u32>),
    window: Window,
    c: &mut Collected,
) -> Result<(), ServiceError> {
    let detail = registry.get_function(tenant, name)?;
    let all: BTreeMap<u32, &VersionInfo> = detail.versions.iter().map(|v| (v.version, v)).collect();
    let scope: BTreeMap<u32, &VersionInfo> = match version {
        Some(v) => {
            let info = all.get(&v).ok_or_else(|| ServiceError::NotFound {
                what: format!("version {name}@{v}"),
            })?;
            BTreeMap::from([(v, *info)])
        }
        None => all.clone(),
    };
    let shas: BTreeSet<&str> = scope.values().map(|v| v.sha256.as_str()).collect();
    let mut involved: BTreeSet<u32> = version.into_iter().collect();
    let q = AuditQuery {
        stream: Some(Stream::Execution),
        function: Some(name.to_string()),
        since: window.since,
        until: window.until,
        ..AuditQuery::default()
    };
    scan(audit, tenant, q, |e| {
        let AuditRecord::Execution(r) = &e.record else {
            return Ok(());
        };
        // An execution whose module is no stored version (a manifest test
        // of an upload that was not stored) has no version to bundle.
        let keep = match &r.module_sha256 {
            Some(sha) => shas.contains(sha.as_str()),
            None => version.is_none() || r.version == version,
        };
        if keep {
            c.add(e.seq)?;
            if let Some(sha) = &r.module_sha256 {
                involved.extend(
                    scope
                        .values()
                        .filter(|v| &v.sha256 == sha)
                        .map(|v| v.version),
                );
            }
        }
        Ok(())
    })?;
    let records = registry_records(audit, tenant, name)?;
    for e in &records {
        let at = target_version(e);
        let in_scope = version.is_none() || at == version;
        if in_scope && entry_time(e).is_some_and(|t| window.holds(t)) {
            c.add(e.seq)?;
            involved.extend(at.filter(|v| all.contains_key(v)));
        }
    }
    for v in involved {
        if let Some(info) = all.get(&v) {
            add_version(c, info, &records)?;
        }
    }
    Ok(())
}

/// A version with every one of its registry records, in the window or
/// not, so its upload and decisions can be checked; and, for each time it
/// was superseded, the approval of the version that replaced it.
fn add_version(
    c: &mut Collected,
    info: &VersionInfo,
    records: &[AuditEntry],
) -> Result<(), ServiceError> {
    let newer: BTreeSet<u32> = info.decisions.iter().filter_map(superseded_by).collect();
    for e in records {
        let Some(v) = target_version(e) else { continue };
        let approval = matches!(&e.record, AuditRecord::Registry(r)
            if r.action.action == RegistryActionKind::Approve && r.action.refused.is_none());
        if v == info.version || (approval && newer.contains(&v)) {
            c.add(e.seq)?;
        }
    }
    c.versions.insert(info.version, info.clone());
    Ok(())
}

/// Every registry record of the function, any time.
fn registry_records(
    audit: &AuditLog,
    tenant: &TenantId,
    name: &FunctionName,
) -> Result<Vec<AuditEntry>, ServiceError> {
    let q = AuditQuery {
        stream: Some(Stream::Registry),
        function: Some(name.to_string()),
        ..AuditQuery::default()
    };
    let mut out = Vec::new();
    scan(audit, tenant, q, |e| {
        out.push(e.clone());
        Ok(())
    })?;
    Ok(out)
}

/// Every page of a query, newest first, each entry handed to `each`.
fn scan(
    audit: &AuditLog,
    tenant: &TenantId,
    mut q: AuditQuery,
    mut each: impl FnMut(&AuditEntry) -> Result<(), ServiceError>,
) -> Result<(), ServiceError> {
    q.limit = Some(aifn_audit::MAX_PAGE);
    loop {
        let page = audit.query(tenant, &q).map_err(query_error)?;
        for e in &page.entries {
            each(e)?;
        }
        match page.next_before_seq {
            Some(seq) => q.before_seq = Some(seq),
            None => return Ok(()),
        }
    }
}

/// The version a registry record is about, if it is about one.
fn target_version(e: &AuditEntry) -> Option<u32> {
    match &e.record {
        AuditRecord::Registry(r) => match &r.action.target {
            AuditTarget::Version { version, .. } => Some(*version),
            _ => None,
        },
        _ => None,
    }
}

fn entry_time(e: &AuditEntry) -> Option<Timestamp> {
    match &e.record {
        AuditRecord::Registry(r) => Some(r.time),
        _ => None,
    }
}
