//! Agent policies and tenant settings: the statements both the write
//! transaction and the read connections run.

use aifn_types::{Subject, TenantId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::db;
use super::rows::json;
use crate::store::Result;
use crate::{AgentInfo, PolicyInfo, RegistryError, TenantInfo};

/// Versions are INTEGER columns (i64); they never reach i64's range.
fn unsigned(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| RegistryError::Corrupt(format!("negative version {v}")))
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const POLICY_SQL: &str = "SELECT h.subject, h.version, h.policy, h.updated_at, h.updated_by \
     FROM agent_policies p JOIN policy_history h \
       ON h.tenant = p.tenant AND h.subject = p.subject AND h.version = p.version";

/// A policy row, its JSON still text (decoded outside rusqlite's callback).
type PolicyRow = (Subject, i64, String, aifn_types::Timestamp, Subject);

fn policy_row(r: &Row<'_>) -> rusqlite::Result<PolicyRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode((subject, version, policy, updated_at, updated_by): PolicyRow) -> Result<PolicyInfo> {
    Ok(PolicyInfo {
        subject,
        version: unsigned(version)?,
        policy: json("policy", &policy)?,
        updated_at,
        updated_by,
    })
}

pub(super) fn policies(conn: &Connection, tenant: &TenantId) -> Result<Vec<PolicyInfo>> {
    let sql = format!("{POLICY_SQL} WHERE p.tenant = ?1 ORDER BY p.subject");
    let rows = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map([tenant], policy_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("list policies"))?;
    rows.into_iter().map(decode).collect()
}

pub(super) fn policy(
    conn: &Connection,
    tenant: &TenantId,
    subject: &Subject,
) -> Result<Option<PolicyInfo>> {
    let sql = format!("{POLICY_SQL} WHERE p.tenant = ?1 AND p.subject = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params![tenant, subject], policy_row).optional())
        .map_err(db("read policy"))?
        .map(decode)
        .transpose()
}

pub(super) fn last_version(conn: &Connection, tenant: &TenantId, subject: &Subject) -> Result<u64> {
    conn.prepare_cached(
        "SELECT coalesce(max(version), 0) FROM policy_history WHERE tenant = ?1 AND subject = ?2",
    )
    .and_then(|mut s| s.query_row(params![tenant, subject], |r| r.get(0)))
    .map_err(db("read policy version"))
    .and_then(unsigned)
}

pub(super) fn put_policy(conn: &Connection, tenant: &TenantId, info: &PolicyInfo) -> Result<()> {
    let text = serde_json::to_string(&info.policy)
        .map_err(|e| RegistryError::Corrupt(format!("encode policy: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO policy_history (tenant, subject, version, policy, updated_at, updated_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant,
            info.subject,
            signed(info.version),
            text,
            info.updated_at,
            info.updated_by
        ])
    })
    .map_err(db("store policy"))?;
    conn.prepare_cached(
        "INSERT INTO agent_policies (tenant, subject, version) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tenant, subject) DO UPDATE SET version = excluded.version",
    )
    .and_then(|mut s| s.execute(params![tenant, info.subject, signed(info.version)]))
    .map_err(db("make policy current"))?;
    Ok(())
}

pub(super) fn delete_policy(conn: &Connection, tenant: &TenantId, subject: &Subject) -> Result<()> {
    let gone = conn
        .prepare_cached("DELETE FROM agent_policies WHERE tenant = ?1 AND subject = ?2")
        .and_then(|mut s| s.execute(params![tenant, subject]))
        .map_err(db("delete policy"))?;
    if gone != 1 {
        return Err(RegistryError::PolicyNotFound {
            subject: subject.clone(),
        });
    }
    Ok(())
}

pub(super) fn tenant_settings(conn: &Connection, tenant: &TenantId) -> Result<TenantInfo> {
    let row: Option<(String, i64, aifn_types::Timestamp, Subject)> = conn
        .prepare_cached(
            "SELECT settings, version, updated_at, updated_by FROM tenant_settings WHERE tenant = ?1",
        )
        .and_then(|mut s| {
            s.query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
        })
        .map_err(db("read tenant settings"))?;
    let Some((settings, version, at, by)) = row else {
        return Ok(TenantInfo::defaults(tenant.clone()));
    };
    Ok(TenantInfo {
        tenant_id: tenant.clone(),
        settings: json("tenant settings", &settings)?,
        version: unsigned(version)?,
        updated_at: Some(at),
        updated_by: Some(by),
    })
}

pub(super) fn put_tenant_settings(conn: &Connection, info: &TenantInfo) -> Result<()> {
    let text = serde_json::to_string(&info.settings)
        .map_err(|e| RegistryError::Corrupt(format!("encode tenant settings: {e}")))?;
    // The first version is inserted, later ones update it (the triggers
    // hold both to their numbers).
    let sql = if info.version == 1 {
        "INSERT INTO tenant_settings (settings, tenant, version, updated_at, updated_by) \
         VALUES (?2, ?1, ?3, ?4, ?5)"
    } else {
        "UPDATE tenant_settings SET settings = ?2, version = ?3, updated_at = ?4, updated_by = ?5 \
         WHERE tenant = ?1"
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| {
            s.execute(params![
                info.tenant_id,
                text,
                signed(info.version),
                info.updated_at,
                info.updated_by
            ])
        })
        .map_err(db("store tenant settings"))
        .and_then(|changed| match changed {
            1 => Ok(()),
            _ => Err(RegistryError::Corrupt("tenant settings row missing".into())),
        })
}

/// Subjects with agent keys or a policy; keys counted unless revoked.
const AGENTS_SQL: &str = "SELECT s.subject, \
       (SELECT count(*) FROM api_keys k WHERE k.tenant = ?1 AND k.subject = s.subject \
          AND k.role = 'agent' AND k.revoked_at IS NULL), \
       (SELECT p.version FROM agent_policies p WHERE p.tenant = ?1 AND p.subject = s.subject) \
     FROM (SELECT subject FROM api_keys WHERE tenant = ?1 AND role = 'agent' \
           UNION SELECT subject FROM agent_policies WHERE tenant = ?1) s \
     ORDER BY s.subject";

pub(super) fn agents(conn: &Connection, tenant: &TenantId) -> Result<Vec<AgentInfo>> {
    let rows: Vec<(Subject, u32, Option<i64>)> = conn
        .prepare_cached(AGENTS_SQL)
        .and_then(|mut s| {
            s.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("list agents"))?;
    rows.into_iter()
        .map(|(subject, active_keys, version)| {
            Ok(AgentInfo {
                subject,
                active_keys,
                policy_version: version.map(unsigned).transpose()?,
            })
        })
        .collect()
}

pub(super) fn open_tenants(conn: &Connection) -> Result<Vec<TenantId>> {
    conn.prepare_cached(
        "SELECT tenant FROM tenant_settings WHERE json_extract(settings, '$.mode') = 'open' ORDER BY tenant",
    )
    .and_then(|mut s| {
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(db("list open tenants"))
}
