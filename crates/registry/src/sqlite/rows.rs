//! Reading rows: every column is read as its shared type (names, states,
//! times), and JSON columns are decoded once, here.

use aifn_types::{
    FunctionName, InspectionReport, ModuleReport, Source, SourceInfo, Subject, TenantId, Timestamp,
    VersionState,
};
use rusqlite::{Connection, OptionalExtension, Row};

use super::db;
use crate::store::{Result, StoredKey, VersionHead};
use crate::{
    Decision, FunctionSummary, KeyInfo, RegistryError, StateCounts, VersionInfo, VersionRef,
};

fn corrupt(what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Corrupt(format!("{what}: {e}"))
}

pub(super) use crate::store::{json, language};

/// Columns of a [`VersionInfo`], decisions folded into one JSON array so a
/// version is always one query. The source text is not read (only its
/// language, sha256 and size).
pub(super) const VERSION_COLUMNS: &str = "f.tenant, f.name, v.version, v.sha256, v.author, v.uploaded_at, v.state, \
     v.manifest, v.report, \
     (SELECT json_group_array(json_object('action', d.action, 'actor', d.actor, 'at', d.at, \
                                          'notes', d.notes, 'sha256', d.sha256, \
                                          'override_failing_tests', \
                                          json(CASE d.override_failing_tests WHEN 1 THEN 'true' ELSE 'false' END)) \
                              ORDER BY d.id) \
      FROM decisions d WHERE d.version_id = v.id), \
     v.source_language, v.source_sha256, length(CAST(v.source AS BLOB))";

/// A version row: typed columns, JSON columns still text (decoded outside
/// rusqlite's callback, so their errors stay ours).
pub(super) struct VersionRow {
    tenant: TenantId,
    name: FunctionName,
    version: u32,
    sha256: String,
    author: Subject,
    uploaded_at: Timestamp,
    state: VersionState,
    manifest: String,
    report: String,
    decisions: String,
    source_language: Option<String>,
    source_sha256: Option<String>,
    source_size: Option<u32>,
}

impl VersionRow {
    pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<VersionRow> {
        Ok(VersionRow {
            tenant: row.get(0)?,
            name: row.get(1)?,
            version: row.get(2)?,
            sha256: row.get(3)?,
            author: row.get(4)?,
            uploaded_at: row.get(5)?,
            state: row.get(6)?,
            manifest: row.get(7)?,
            report: row.get(8)?,
            decisions: row.get(9)?,
            source_language: row.get(10)?,
            source_sha256: row.get(11)?,
            source_size: row.get(12)?,
        })
    }

    pub(super) fn decode(self) -> Result<VersionInfo> {
        let source = match (self.source_language, self.source_sha256, self.source_size) {
            (Some(language), Some(sha256), Some(size_bytes)) => Some(SourceInfo {
                language: self::language(&language)?,
                sha256,
                size_bytes: u64::from(size_bytes),
            }),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    "source",
                    "language, text and sha256 not all stored",
                ));
            }
        };
        Ok(VersionInfo {
            tenant: self.tenant,
            name: self.name,
            version: self.version,
            sha256: self.sha256,
            author: self.author,
            uploaded_at: self.uploaded_at,
            state: self.state,
            manifest: json("manifest", &self.manifest)?,
            report: json("report", &self.report)?,
            decisions: json::<Vec<Decision>>("decisions", &self.decisions)?,
            source,
        })
    }
}

pub(super) fn versions_where(
    conn: &Connection,
    filter: &str,
    order: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<VersionInfo>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN functions f ON f.id = v.function_id WHERE {filter} ORDER BY {order}"
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(db("prepare version query"))?;
    let rows = stmt
        .query_map(args, VersionRow::read)
        .map_err(db("query versions"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("read versions"))?;
    rows.into_iter().map(VersionRow::decode).collect()
}

pub(super) fn version_of(conn: &Connection, target: &VersionRef) -> Result<Option<VersionInfo>> {
    let found = versions_where(
        conn,
        "f.tenant = ?1 AND f.name = ?2 AND v.version = ?3",
        "v.version",
        &[&target.tenant, &target.name, &target.version],
    )?;
    Ok(found.into_iter().next())
}

/// A function's summary: the active version's description, the latest
/// version's number and state, and the counts per state.
const SUMMARY_SQL: &str = "SELECT f.name, \
       (SELECT a.description FROM versions a WHERE a.function_id = f.id AND a.state = 'active'), \
       max(CASE WHEN v.state = 'active' THEN v.version END), \
       max(v.version), \
       (SELECT l.state FROM versions l WHERE l.function_id = f.id ORDER BY l.version DESC LIMIT 1), \
       sum(CASE WHEN v.state = 'pending' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'active' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'rejected' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'revoked' THEN 1 ELSE 0 END), \
       sum(CASE WHEN v.state = 'superseded' THEN 1 ELSE 0 END) \
     FROM functions f JOIN versions v ON v.function_id = f.id";

fn summary(r: &Row<'_>) -> rusqlite::Result<FunctionSummary> {
    Ok(FunctionSummary {
        name: r.get(0)?,
        description: r.get(1)?,
        active_version: r.get(2)?,
        latest_version: r.get(3)?,
        latest_state: r.get::<_, VersionState>(4)?,
        counts: StateCounts {
            pending: r.get(5)?,
            active: r.get(6)?,
            rejected: r.get(7)?,
            revoked: r.get(8)?,
            superseded: r.get(9)?,
        },
    })
}

pub(super) fn summaries(
    conn: &Connection,
    name: Option<&FunctionName>,
    tenant: &TenantId,
) -> Result<Vec<FunctionSummary>> {
    let filter = match name {
        Some(_) => "f.tenant = ?1 AND f.name = ?2",
        None => "f.tenant = ?1",
    };
    let sql = format!("{SUMMARY_SQL} WHERE {filter} GROUP BY f.id, f.name ORDER BY f.name");
    let args: &[&dyn rusqlite::ToSql] = match &name {
        Some(n) => &[tenant, n],
        None => &[tenant],
    };
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(args, summary)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("query functions"))
}

pub(super) const KEY_COLUMNS: &str =
    "key_id, tenant, role, subject, created_at, created_by, revoked_at, revoked_by, secret_sha256";

pub(super) fn key(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey {
        info: KeyInfo {
            key_id: r.get(0)?,
            tenant: r.get(1)?,
            role: r.get(2)?,
            subject: r.get(3)?,
            created_at: r.get(4)?,
            created_by: r.get(5)?,
            revoked_at: r.get(6)?,
            revoked_by: r.get(7)?,
        },
        secret_sha256: r.get(8)?,
    })
}

pub(super) fn key_of(conn: &Connection, key_id: &str) -> Result<Option<StoredKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([key_id], key).optional())
        .map_err(db("read key"))
}

/// Columns of a [`VersionHead`], for `head`: the names of the tests that
/// failed are picked out of the stored report by the database (the same
/// rule its approval trigger applies).
pub(super) const HEAD_COLUMNS: &str = "v.id, v.function_id, v.version, v.state, v.sha256, v.author, \
     (SELECT json_group_array(json_extract(t.value, '$.name')) FROM json_each(v.report, '$.tests') t \
      WHERE json_extract(t.value, '$.passed') = 0)";

pub(super) fn head(r: &Row<'_>) -> rusqlite::Result<VersionHead> {
    let failing: String = r.get(6)?;
    let failing_tests = serde_json::from_str(&failing).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(VersionHead {
        id: r.get(0)?,
        function_id: r.get(1)?,
        version: r.get(2)?,
        state: r.get(3)?,
        sha256: r.get(4)?,
        author: r.get(5)?,
        failing_tests,
    })
}

/// A version's source: `None` without the version, `Some(None)` when it
/// has no source.
pub(super) fn source_of(conn: &Connection, target: &VersionRef) -> Result<Option<Option<Source>>> {
    let raw: Option<(Option<String>, Option<String>)> = conn
        .prepare_cached(
            "SELECT v.source_language, v.source FROM versions v JOIN functions f ON f.id = v.function_id \
             WHERE f.tenant = ?1 AND f.name = ?2 AND v.version = ?3",
        )
        .and_then(|mut s| {
            s.query_row(
                rusqlite::params![target.tenant, target.name, target.version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map_err(db("read source"))?;
    raw.map(|columns| match columns {
        (Some(language), Some(text)) => Ok(Some(Source {
            language: self::language(&language)?,
            text,
        })),
        (None, None) => Ok(None),
        _ => Err(corrupt("source", "language and text not both stored")),
    })
    .transpose()
}

/// The newest version number of a function.
pub(super) fn latest_version(
    conn: &Connection,
    tenant: &TenantId,
    name: &FunctionName,
) -> Result<Option<u32>> {
    conn.prepare_cached(
        "SELECT max(v.version) FROM versions v JOIN functions f ON f.id = v.function_id \
         WHERE f.tenant = ?1 AND f.name = ?2",
    )
    .and_then(|mut s| s.query_row(rusqlite::params![tenant, name], |r| r.get(0)))
    .map_err(db("read latest version number"))
}

pub(super) fn latest_report(
    conn: &Connection,
    function_id: i64,
) -> Result<Option<(u32, ModuleReport)>> {
    let raw: Option<(u32, String)> = conn
        .prepare_cached(
            "SELECT version, report FROM versions WHERE function_id = ?1 ORDER BY version DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row([function_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db("read latest version"))?;
    raw.map(|(v, text)| {
        let report: InspectionReport = json("report", &text)?;
        Ok((v, report.module))
    })
    .transpose()
}
