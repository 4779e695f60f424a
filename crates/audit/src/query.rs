//! Queries and exports: a tenant's view (the tenant a separate, typed
//! argument, from the caller's credentials) and the host-level view.

use std::io::Write;
use std::path::Path;

use aifn_types::{OutcomeKind, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canon::canonical_json;
use crate::record::{AuditEntry, AuditRecord, Stream};
use crate::store::{Filter, StoredRow};
use crate::{AuditError, AuditLog};

/// A filter on a tenant's view of the log: its `execution` and `registry`
/// records. `agent_id`, `user_id` and `outcome` only match execution
/// records; `function` also matches registry actions on that function.
/// The tenant is not part of it: it is passed beside it, from the caller's
/// credentials. Deserializes from query parameters (unknown ones refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditQuery {
    /// `execution` or `registry`; both when `None`.
    pub stream: Option<Stream>,
    /// Function name.
    pub function: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Outcome kind.
    pub outcome: Option<OutcomeKind>,
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records before this time.
    pub until: Option<Timestamp>,
    /// Records with a smaller seq (the cursor of the next page).
    pub before_seq: Option<u64>,
    /// Page size: 50 when `None`, at most 1000. Ignored by export.
    pub limit: Option<usize>,
}

/// The host-level view: the `security` and `system` streams (no tenant).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityQuery {
    /// `security` or `system`; both when `None`.
    pub stream: Option<Stream>,
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records before this time.
    pub until: Option<Timestamp>,
    /// Records with a smaller seq.
    pub before_seq: Option<u64>,
    /// Page size: 50 when `None`, at most 1000. Ignored by export.
    pub limit: Option<usize>,
}

/// One page of a query, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The records.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before_seq` for the next page; `None` on the last page.
    pub next_before_seq: Option<u64>,
}

/// The page size of a query that names none.
pub const DEFAULT_PAGE: usize = 50;
/// The largest page a query answers; a larger `limit` is served as this.
pub const MAX_PAGE: usize = 1000;
const EXPORT_CHUNK: usize = 500;

impl AuditLog {
    /// One page of a tenant's records, newest first. Never returns another
    /// tenant's records.
    pub fn query(&self, tenant: &TenantId, q: &AuditQuery) -> Result<AuditPage, AuditError> {
        self.page(tenant_filter(tenant, q)?, Some(tenant.as_str()))
    }

    /// The execution record with this id in this tenant (the first one, if
    /// a bug ever wrote two); never another tenant's. Uses the lookup index
    /// of migration 3.
    pub fn execution(
        &self,
        tenant: &TenantId,
        execution_id: &str,
    ) -> Result<Option<AuditEntry>, AuditError> {
        let filter = Filter {
            tenant: Some(tenant.to_string()),
            streams: vec![Stream::Execution],
            execution_id: Some(execution_id.to_owned()),
            limit: 1,
            ascending: true,
            ..Filter::default()
        };
        let rows = self.with_reader(|s| s.select(&filter))?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let entry = to_entry(row, Some(tenant.as_str()))?;
        // The index column found it; the chained body must agree.
        match &entry.record {
            AuditRecord::Execution(r) if r.execution_id == execution_id => Ok(Some(entry)),
            _ => Err(corrupt(
                row.seq,
                "body's execution id does not match its index",
            )),
        }
    }

    /// One page of the host-level `security` and `system` records.
    pub fn query_security(&self, q: &SecurityQuery) -> Result<AuditPage, AuditError> {
        self.page(host_filter(q)?, None)
    }

    pub(crate) fn page(
        &self,
        mut filter: Filter,
        tenant: Option<&str>,
    ) -> Result<AuditPage, AuditError> {
        let limit = filter.limit;
        filter.limit = limit + 1;
        let mut rows = self.with_reader(|s| s.select(&filter))?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let entries = rows
            .iter()
            .map(|r| to_entry(r, tenant))
            .collect::<Result<Vec<_>, _>>()?;
        let next_before_seq = if more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_before_seq,
        })
    }

    /// Writes every record of a tenant matching `q` (all pages, `limit`
    /// ignored) as JSON lines, oldest first: the record's fields plus
    /// `seq`, `stream`, `hash` and `prev_hash`, keys sorted. Returns the
    /// number of lines. Removing `seq`, `hash` and `prev_hash` from a line
    /// gives the chained body back.
    pub fn export_jsonl(
        &self,
        tenant: &TenantId,
        q: &AuditQuery,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        self.export(tenant_filter(tenant, q)?, Some(tenant.as_str()), out)
    }

    /// [`AuditLog::export_jsonl`] for the host-level streams.
    pub fn export_security_jsonl(
        &self,
        q: &SecurityQuery,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        self.export(host_filter(q)?, None, out)
    }

    fn export(
        &self,
        mut filter: Filter,
        tenant: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        filter.ascending = true;
        filter.limit = EXPORT_CHUNK;
        self.with_reader(|store| {
            store.begin_snapshot()?;
            let mut n = 0u64;
            loop {
                let rows = store.select(&filter)?;
                for row in &rows {
                    let mut line = export_line(row, tenant)?;
                    line.push('\n');
                    out.write_all(line.as_bytes())
                        .map_err(|e| AuditError::io(Path::new("<export>"), "write export", e))?;
                    n += 1;
                }
                match rows.last() {
                    Some(last) if rows.len() == EXPORT_CHUNK => filter.after_seq = Some(last.seq),
                    _ => break,
                }
            }
            store.end_snapshot()?;
            Ok(n)
        })
    }
}

fn bad_query(reason: impl Into<String>) -> AuditError {
    AuditError::InvalidQuery {
        reason: reason.into(),
    }
}

fn limit_of(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

fn ms_of(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix_ms)
}

fn tenant_filter(tenant: &TenantId, q: &AuditQuery) -> Result<Filter, AuditError> {
    let streams = match q.stream {
        None => vec![Stream::Execution, Stream::Registry],
        Some(s @ (Stream::Execution | Stream::Registry)) => vec![s],
        Some(s) => {
            return Err(bad_query(format!(
                "the {} stream is host-level, not a tenant's",
                s.as_str()
            )));
        }
    };
    Ok(Filter {
        tenant: Some(tenant.to_string()),
        streams,
        function: q.function.clone(),
        agent_id: q.agent_id.clone(),
        user_id: q.user_id.clone(),
        outcome: q.outcome,
        execution_id: None,
        since_ms: ms_of(q.since),
        until_ms: ms_of(q.until),
        before_seq: q.before_seq,
        after_seq: None,
        limit: limit_of(q.limit),
        ascending: false,
    })
}

fn host_filter(q: &SecurityQuery) -> Result<Filter, AuditError> {
    let streams = match q.stream {
        None => vec![Stream::Security, Stream::System],
        Some(s @ (Stream::Security | Stream::System)) => vec![s],
        Some(s) => {
            return Err(bad_query(format!(
                "the {} stream belongs to tenants",
                s.as_str()
            )));
        }
    };
    Ok(Filter {
        tenant: None,
        streams,
        since_ms: ms_of(q.since),
        until_ms: ms_of(q.until),
        before_seq: q.before_seq,
        limit: limit_of(q.limit),
        ..Filter::default()
    })
}

fn corrupt(seq: u64, reason: impl Into<String>) -> AuditError {
    AuditError::Corrupt {
        seq,
        reason: reason.into(),
    }
}

/// Parses a stored row and re-checks its tenant against the body, so an
/// edited index column cannot leak a record to another tenant.
pub(crate) fn to_entry(row: &StoredRow, tenant: Option<&str>) -> Result<AuditEntry, AuditError> {
    let body = row
        .body
        .as_deref()
        .ok_or_else(|| corrupt(row.seq, "body is not text"))?;
    let record: AuditRecord =
        serde_json::from_str(body).map_err(|e| corrupt(row.seq, format!("body: {e}")))?;
    if record.tenant_id() != tenant {
        return Err(corrupt(row.seq, "body's tenant does not match its index"));
    }
    Ok(AuditEntry {
        seq: row.seq,
        prev_hash: row.prev_hash.clone().unwrap_or_default(),
        hash: row.hash.clone().unwrap_or_default(),
        record,
    })
}

fn export_line(row: &StoredRow, tenant: Option<&str>) -> Result<String, AuditError> {
    let body = row
        .body
        .as_deref()
        .ok_or_else(|| corrupt(row.seq, "body is not text"))?;
    let mut v: Value =
        serde_json::from_str(body).map_err(|e| corrupt(row.seq, format!("body: {e}")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| corrupt(row.seq, "body is not an object"))?;
    if obj.get("tenant_id").and_then(Value::as_str) != tenant {
        return Err(corrupt(row.seq, "body's tenant does not match its index"));
    }
    obj.insert("seq".into(), row.seq.into());
    obj.insert("hash".into(), row.hash.clone().unwrap_or_default().into());
    obj.insert(
        "prev_hash".into(),
        row.prev_hash.clone().unwrap_or_default().into(),
    );
    Ok(canonical_json(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_bounded_and_scoped() {
        assert_eq!(limit_of(None), 50);
        assert_eq!(limit_of(Some(0)), 1);
        assert_eq!(limit_of(Some(5000)), 1000);
        let q = SecurityQuery {
            stream: Some(Stream::Execution),
            ..SecurityQuery::default()
        };
        assert!(matches!(
            host_filter(&q),
            Err(AuditError::InvalidQuery { .. })
        ));
        let t = TenantId::new("t").expect("tenant");
        let f = tenant_filter(&t, &AuditQuery::default()).expect("valid");
        assert_eq!(f.streams, [Stream::Execution, Stream::Registry]);
        assert_eq!(f.tenant.as_deref(), Some("t"));
    }
}
