//! Agent policies and tenant settings: the statements both the write
//! transaction and the read connections run.

use aifn_types::{Subject, TenantId, Timestamp};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;

use super::{execute, get, query, query_opt, small};
use crate::store::{Result, json};
use crate::{AgentInfo, PolicyInfo, RegistryError, TenantInfo};

/// Versions are BIGINT columns (i64); they never reach i64's range.
fn unsigned(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| RegistryError::Corrupt(format!("negative version {v}")))
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const POLICY_SQL: &str = "SELECT h.subject, h.version, h.policy, h.updated_at, h.updated_by \
     FROM agent_policies p JOIN policy_history h \
       ON h.tenant = p.tenant AND h.subject = p.subject AND h.version = p.version";

fn policy_row(r: &Row) -> Result<PolicyInfo> {
    let policy: String = get(r, 2)?;
    Ok(PolicyInfo {
        subject: get(r, 0)?,
        version: unsigned(get(r, 1)?)?,
        policy: json("policy", &policy)?,
        updated_at: get(r, 3)?,
        updated_by: get(r, 4)?,
    })
}

pub(super) async fn policies(c: &ClientWrapper, tenant: &TenantId) -> Result<Vec<PolicyInfo>> {
    let sql = format!("{POLICY_SQL} WHERE p.tenant = $1 ORDER BY p.subject");
    let rows = query(c, "list policies", &sql, &[tenant]).await?;
    rows.iter().map(policy_row).collect()
}

pub(super) async fn policy(
    c: &ClientWrapper,
    tenant: &TenantId,
    subject: &Subject,
) -> Result<Option<PolicyInfo>> {
    let sql = format!("{POLICY_SQL} WHERE p.tenant = $1 AND p.subject = $2");
    query_opt(c, "read policy", &sql, &[tenant, subject])
        .await?
        .as_ref()
        .map(policy_row)
        .transpose()
}

pub(super) async fn last_version(
    c: &ClientWrapper,
    tenant: &TenantId,
    subject: &Subject,
) -> Result<u64> {
    let rows = query(
        c,
        "read policy version",
        "SELECT coalesce(max(version), 0) FROM policy_history WHERE tenant = $1 AND subject = $2",
        &[tenant, subject],
    )
    .await?;
    match rows.first() {
        Some(r) => unsigned(get(r, 0)?),
        None => Ok(0),
    }
}

pub(super) async fn put_policy(
    c: &ClientWrapper,
    tenant: &TenantId,
    info: &PolicyInfo,
) -> Result<()> {
    let text = serde_json::to_string(&info.policy)
        .map_err(|e| RegistryError::Corrupt(format!("encode policy: {e}")))?;
    let version = signed(info.version);
    execute(
        c,
        "store policy",
        "INSERT INTO policy_history (tenant, subject, version, policy, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            tenant,
            &info.subject,
            &version,
            &text,
            &info.updated_at,
            &info.updated_by,
        ],
    )
    .await?;
    execute(
        c,
        "make policy current",
        "INSERT INTO agent_policies (tenant, subject, version) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant, subject) DO UPDATE SET version = excluded.version",
        &[tenant, &info.subject, &version],
    )
    .await?;
    Ok(())
}

pub(super) async fn delete_policy(
    c: &ClientWrapper,
    tenant: &TenantId,
    subject: &Subject,
) -> Result<()> {
    let gone = execute(
        c,
        "delete policy",
        "DELETE FROM agent_policies WHERE tenant = $1 AND subject = $2",
        &[tenant, subject],
    )
    .await?;
    if gone != 1 {
        return Err(RegistryError::PolicyNotFound {
            subject: subject.clone(),
        });
    }
    Ok(())
}

pub(super) async fn tenant_settings(c: &ClientWrapper, tenant: &TenantId) -> Result<TenantInfo> {
    let row = query_opt(
        c,
        "read tenant settings",
        "SELECT settings, version, updated_at, updated_by FROM tenant_settings WHERE tenant = $1",
        &[tenant],
    )
    .await?;
    let Some(r) = row else {
        return Ok(TenantInfo::defaults(tenant.clone()));
    };
    let settings: String = get(&r, 0)?;
    Ok(TenantInfo {
        tenant_id: tenant.clone(),
        settings: json("tenant settings", &settings)?,
        version: unsigned(get(&r, 1)?)?,
        updated_at: Some(get::<Timestamp>(&r, 2)?),
        updated_by: Some(get::<Subject>(&r, 3)?),
    })
}

pub(super) async fn put_tenant_settings(c: &ClientWrapper, info: &TenantInfo) -> Result<()> {
    let text = serde_json::to_string(&info.settings)
        .map_err(|e| RegistryError::Corrupt(format!("encode tenant settings: {e}")))?;
    // The first version is inserted, later ones update it (the triggers
    // hold both to their numbers).
    let sql = if info.version == 1 {
        "INSERT INTO tenant_settings (settings, tenant, version, updated_at, updated_by) \
         VALUES ($2, $1, $3, $4, $5)"
    } else {
        "UPDATE tenant_settings SET settings = $2, version = $3, updated_at = $4, updated_by = $5 \
         WHERE tenant = $1"
    };
    let changed = execute(
        c,
        "store tenant settings",
        sql,
        &[
            &info.tenant_id,
            &text,
            &signed(info.version),
            &info.updated_at,
            &info.updated_by,
        ],
    )
    .await?;
    match changed {
        1 => Ok(()),
        _ => Err(RegistryError::Corrupt("tenant settings row missing".into())),
    }
}

/// Subjects with agent keys or a policy; keys counted unless revoked.
const AGENTS_SQL: &str = "SELECT s.subject, \
       (SELECT count(*) FROM api_keys k WHERE k.tenant = $1 AND k.subject = s.subject \
          AND k.role = 'agent' AND k.revoked_at IS NULL), \
       (SELECT p.version FROM agent_policies p WHERE p.tenant = $1 AND p.subject = s.subject) \
     FROM (SELECT subject FROM api_keys WHERE tenant = $1 AND role = 'agent' \
           UNION SELECT subject FROM agent_policies WHERE tenant = $1) s \
     ORDER BY s.subject";

pub(super) async fn agents(c: &ClientWrapper, tenant: &TenantId) -> Result<Vec<AgentInfo>> {
    let rows = query(c, "list agents", AGENTS_SQL, &[tenant]).await?;
    rows.iter()
        .map(|r| {
            Ok(AgentInfo {
                subject: get(r, 0)?,
                active_keys: small(get(r, 1)?)?,
                policy_version: get::<Option<i64>>(r, 2)?.map(unsigned).transpose()?,
            })
        })
        .collect()
}

pub(super) async fn open_tenants(c: &ClientWrapper) -> Result<Vec<TenantId>> {
    let rows = query(
        c,
        "list open tenants",
        "SELECT tenant FROM tenant_settings WHERE settings::json ->> 'mode' = 'open' ORDER BY tenant",
        &[],
    )
    .await?;
    rows.iter().map(|r| get(r, 0)).collect()
}
