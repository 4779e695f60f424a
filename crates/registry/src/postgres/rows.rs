//! Reading rows: every column is read as its shared type (names, states,
//! times), and JSON columns are decoded once, here. The statements are
//! the SQLite backend's, in PostgreSQL's dialect.

use aifn_types::{
    FunctionName, InspectionReport, ModuleReport, Source, SourceInfo, TenantId, VersionState,
};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;

use super::{Params, get, query, query_opt, small};
use crate::store::{ActiveLookup, Result, StoredKey, VersionHead, json, language};
use crate::{
    Decision, FunctionSummary, KeyInfo, RegistryError, StateCounts, VersionInfo, VersionRef,
};

fn corrupt(what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Corrupt(format!("{what}: {e}"))
}

/// Columns of a [`VersionInfo`], decisions folded into one JSON array so a
/// version is always one query. The source text is not read (only its
/// language, sha256 and size).
pub(super) const VERSION_COLUMNS: &str = "f.tenant, f.name, v.version, v.sha256, v.author, v.uploaded_at, v.state, \
     v.manifest, v.report, \
     (SELECT coalesce(json_agg(json_build_object('action', d.action, 'actor', d.actor, 'at', d.at, \
                                                 'notes', d.notes, 'sha256', d.sha256, \
                                                 'override_failing_tests', d.override_failing_tests) \
                               ORDER BY d.id), '[]'::json)::text \
      FROM decisions d WHERE d.version_id = v.id), \
     v.source_language, v.source_sha256, octet_length(v.source)";

/// Decodes a row of [`VERSION_COLUMNS`].
fn version_row(r: &Row) -> Result<VersionInfo> {
    let source_language: Option<String> = get(r, 10)?;
    let source_sha256: Option<String> = get(r, 11)?;
    let source_size: Option<i32> = get(r, 12)?;
    let source = match (source_language, source_sha256, source_size) {
        (Some(language), Some(sha256), Some(size)) => Some(SourceInfo {
            language: self::language(&language)?,
            sha256,
            size_bytes: u64::try_from(size).map_err(|e| corrupt("source size", e))?,
        }),
        (None, None, None) => None,
        _ => {
            return Err(corrupt(
                "source",
                "language, text and sha256 not all stored",
            ));
        }
    };
    let manifest: String = get(r, 7)?;
    let report: String = get(r, 8)?;
    let decisions: String = get(r, 9)?;
    Ok(VersionInfo {
        tenant: get(r, 0)?,
        name: get(r, 1)?,
        version: small(get(r, 2)?)?,
        sha256: get(r, 3)?,
        author: get(r, 4)?,
        uploaded_at: get(r, 5)?,
        state: get(r, 6)?,
        manifest: json("manifest", &manifest)?,
        report: json("report", &report)?,
        decisions: json::<Vec<Decision>>("decisions", &decisions)?,
        source,
    })
}

pub(super) async fn versions_where(
    c: &ClientWrapper,
    filter: &str,
    order: &str,
    args: Params<'_>,
) -> Result<Vec<VersionInfo>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN functions f ON f.id = v.function_id WHERE {filter} ORDER BY {order}"
    );
    let rows = query(c, "query versions", &sql, args).await?;
    rows.iter().map(version_row).collect()
}

pub(super) async fn version_of(
    c: &ClientWrapper,
    target: &VersionRef,
) -> Result<Option<VersionInfo>> {
    let version = i64::from(target.version);
    let found = versions_where(
        c,
        "f.tenant = $1 AND f.name = $2 AND v.version = $3",
        "v.version",
        &[&target.tenant, &target.name, &version],
    )
    .await?;
    Ok(found.into_iter().next())
}

/// One indexed query tells "no such function" from "none active".
pub(super) async fn active(
    c: &ClientWrapper,
    tenant: &TenantId,
    name: &FunctionName,
) -> Result<ActiveLookup> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM functions f \
         LEFT JOIN versions v ON v.function_id = f.id AND v.state = 'active' \
         WHERE f.tenant = $1 AND f.name = $2"
    );
    let Some(row) = query_opt(c, "find active version", &sql, &[tenant, name]).await? else {
        return Ok(ActiveLookup::NoFunction);
    };
    let version: Option<i64> = get(&row, 2)?;
    Ok(match version {
        None => ActiveLookup::NoActive,
        Some(_) => ActiveLookup::Active(Box::new(version_row(&row)?)),
    })
}

/// A function's summary: the active version's description, the latest
/// version's number and state, and the counts per state.
const SUMMARY_SQL: &str = "SELECT f.name, \
       (SELECT a.description FROM versions a WHERE a.function_id = f.id AND a.state = 'active'), \
       max(CASE WHEN v.state = 'active' THEN v.version END), \
       max(v.version), \
       (SELECT l.state FROM versions l WHERE l.function_id = f.id ORDER BY l.version DESC LIMIT 1), \
       count(*) FILTER (WHERE v.state = 'pending'), \
       count(*) FILTER (WHERE v.state = 'active'), \
       count(*) FILTER (WHERE v.state = 'rejected'), \
       count(*) FILTER (WHERE v.state = 'revoked'), \
       count(*) FILTER (WHERE v.state = 'superseded') \
     FROM functions f JOIN versions v ON v.function_id = f.id";

fn summary(r: &Row) -> Result<FunctionSummary> {
    let count = |i| get::<i64>(r, i).and_then(small);
    Ok(FunctionSummary {
        name: get(r, 0)?,
        description: get(r, 1)?,
        active_version: get::<Option<i64>>(r, 2)?.map(small).transpose()?,
        latest_version: small(get(r, 3)?)?,
        latest_state: get::<VersionState>(r, 4)?,
        counts: StateCounts {
            pending: count(5)?,
            active: count(6)?,
            rejected: count(7)?,
            revoked: count(8)?,
            superseded: count(9)?,
        },
    })
}

pub(super) async fn summaries(
    c: &ClientWrapper,
    name: Option<&FunctionName>,
    tenant: &TenantId,
) -> Result<Vec<FunctionSummary>> {
    let filter = match name {
        Some(_) => "f.tenant = $1 AND f.name = $2",
        None => "f.tenant = $1",
    };
    let sql = format!("{SUMMARY_SQL} WHERE {filter} GROUP BY f.id, f.name ORDER BY f.name");
    let rows = match &name {
        Some(n) => query(c, "query functions", &sql, &[tenant, n]).await?,
        None => query(c, "query functions", &sql, &[tenant]).await?,
    };
    rows.iter().map(summary).collect()
}

const KEY_COLUMNS: &str =
    "key_id, tenant, role, subject, created_at, created_by, revoked_at, revoked_by, secret_sha256";

fn key(r: &Row) -> Result<StoredKey> {
    Ok(StoredKey {
        info: KeyInfo {
            key_id: get(r, 0)?,
            tenant: get(r, 1)?,
            role: get(r, 2)?,
            subject: get(r, 3)?,
            created_at: get(r, 4)?,
            created_by: get(r, 5)?,
            revoked_at: get(r, 6)?,
            revoked_by: get(r, 7)?,
        },
        secret_sha256: get(r, 8)?,
    })
}

pub(super) async fn key_of(c: &ClientWrapper, key_id: &str) -> Result<Option<StoredKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1");
    query_opt(c, "read key", &sql, &[&key_id])
        .await?
        .as_ref()
        .map(key)
        .transpose()
}

pub(super) async fn keys(c: &ClientWrapper, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE ($1::text IS NULL OR tenant = $1) ORDER BY tenant, created_at, key_id"
    );
    let rows = query(c, "list keys", &sql, &[&tenant]).await?;
    rows.iter().map(|r| key(r).map(|k| k.info)).collect()
}

/// Columns of a [`VersionHead`]: the names of the tests that failed are
/// picked out of the stored report by the database, with the function its
/// approval trigger applies.
pub(super) const HEAD_COLUMNS: &str = "v.id, v.function_id, v.version, v.state, v.sha256, v.author, \
     (SELECT coalesce(json_agg(t.test -> 'name' ORDER BY t.i), '[]'::json)::text \
      FROM aifn_failing_tests(v.report) WITH ORDINALITY AS t(test, i))";

pub(super) fn head(r: &Row) -> Result<VersionHead> {
    let failing: String = get(r, 6)?;
    Ok(VersionHead {
        id: get(r, 0)?,
        function_id: get(r, 1)?,
        version: small(get(r, 2)?)?,
        state: get(r, 3)?,
        sha256: get(r, 4)?,
        author: get(r, 5)?,
        failing_tests: json("failing tests", &failing)?,
    })
}

/// A version's source: `None` without the version, `Some(None)` when it
/// has no source.
pub(super) async fn source_of(
    c: &ClientWrapper,
    target: &VersionRef,
) -> Result<Option<Option<Source>>> {
    let version = i64::from(target.version);
    let row = query_opt(
        c,
        "read source",
        "SELECT v.source_language, v.source FROM versions v JOIN functions f ON f.id = v.function_id \
         WHERE f.tenant = $1 AND f.name = $2 AND v.version = $3",
        &[&target.tenant, &target.name, &version],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    match (
        get::<Option<String>>(&row, 0)?,
        get::<Option<String>>(&row, 1)?,
    ) {
        (Some(language), Some(text)) => Ok(Some(Some(Source {
            language: self::language(&language)?,
            text,
        }))),
        (None, None) => Ok(Some(None)),
        _ => Err(corrupt("source", "language and text not both stored")),
    }
}

/// The newest version number of a function.
pub(super) async fn latest_version(
    c: &ClientWrapper,
    tenant: &TenantId,
    name: &FunctionName,
) -> Result<Option<u32>> {
    let row = query_opt(
        c,
        "read latest version number",
        "SELECT max(v.version) FROM versions v JOIN functions f ON f.id = v.function_id \
         WHERE f.tenant = $1 AND f.name = $2",
        &[tenant, name],
    )
    .await?;
    match row {
        Some(r) => get::<Option<i64>>(&r, 0)?.map(small).transpose(),
        None => Ok(None),
    }
}

pub(super) async fn latest_report(
    c: &ClientWrapper,
    function_id: i64,
) -> Result<Option<(u32, ModuleReport)>> {
    let row = query_opt(
        c,
        "read latest version",
        "SELECT version, report FROM versions WHERE function_id = $1 ORDER BY version DESC LIMIT 1",
        &[&function_id],
    )
    .await?;
    row.map(|r| {
        let text: String = get(&r, 1)?;
        let report: InspectionReport = json("report", &text)?;
        Ok((small(get(&r, 0)?)?, report.module))
    })
    .transpose()
}
