//! The write transaction: every statement that changes the registry.

use aifn_types::{FunctionName, ModuleReport, Subject, TenantId, Timestamp, VersionState};
use rusqlite::{Connection, OptionalExtension, params};

use super::db;
use super::policies;
use super::rows::{self, HEAD_COLUMNS};
use crate::store::{NewVersionRow, Result, StoredKey, VersionHead, WriteTx};
use crate::{Decision, KeyInfo, PolicyInfo, RegistryError, TenantInfo, VersionInfo, VersionRef};

/// A write transaction on the write connection.
pub(super) struct SqliteTx<'a> {
    pub(super) conn: &'a Connection,
}

impl WriteTx for SqliteTx<'_> {
    fn function_id(&mut self, tenant: &TenantId, name: &FunctionName) -> Result<Option<i64>> {
        self.conn
            .prepare_cached("SELECT id FROM functions WHERE tenant = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row(params![tenant, name], |r| r.get(0)).optional())
            .map_err(db("find function"))
    }

    fn insert_function(
        &mut self,
        tenant: &TenantId,
        name: &FunctionName,
        created_at: Timestamp,
    ) -> Result<i64> {
        self.conn
            .prepare_cached("INSERT INTO functions (tenant, name, created_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.insert(params![tenant, name, created_at]))
            .map_err(db("insert function"))
    }

    fn latest_report(&mut self, function_id: i64) -> Result<Option<(u32, ModuleReport)>> {
        rows::latest_report(self.conn, function_id)
    }

    fn put_module(&mut self, sha256: &str, bytes: &[u8]) -> Result<()> {
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "INSERT INTO modules (sha256, size_bytes, bytes) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![sha256, size, bytes]))
            .map_err(db("store module"))?;
        Ok(())
    }

    fn insert_version(&mut self, row: &NewVersionRow<'_>) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, \
                 manifest, report, source_language, source, source_sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.function_id,
                    row.version,
                    row.sha256,
                    row.author,
                    row.uploaded_at,
                    row.description,
                    row.manifest_json,
                    row.report_json,
                    row.source.map(|(s, _)| s.language.as_str()),
                    row.source.map(|(s, _)| s.text.as_str()),
                    row.source.map(|(_, sha256)| sha256),
                ])
            })
            .map_err(db("insert version"))?;
        Ok(())
    }

    fn version_head(&mut self, target: &VersionRef) -> Result<Option<VersionHead>> {
        let sql = format!(
            "SELECT {HEAD_COLUMNS} FROM versions v JOIN functions f ON f.id = v.function_id \
             WHERE f.tenant = ?1 AND f.name = ?2 AND v.version = ?3"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row(
                    params![target.tenant, target.name, target.version],
                    rows::head,
                )
                .optional()
            })
            .map_err(db("read version"))
    }

    fn active_head(&mut self, function_id: i64) -> Result<Option<VersionHead>> {
        let sql = format!(
            "SELECT {HEAD_COLUMNS} FROM versions v WHERE v.function_id = ?1 AND v.state = 'active'"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([function_id], rows::head).optional())
            .map_err(db("read active version"))
    }

    fn set_state(&mut self, version_id: i64, from: VersionState, to: VersionState) -> Result<()> {
        let changed = self
            .conn
            .prepare_cached("UPDATE versions SET state = ?1 WHERE id = ?2 AND state = ?3")
            .and_then(|mut s| s.execute(params![to, version_id, from]))
            .map_err(db("change version state"))?;
        if changed != 1 {
            // Cannot happen under BEGIN IMMEDIATE; refuse rather than guess.
            return Err(RegistryError::Corrupt(format!(
                "version row {version_id} was not {from}"
            )));
        }
        Ok(())
    }

    fn insert_decision(&mut self, version_id: i64, d: &Decision) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO decisions (version_id, action, actor, at, notes, sha256, override_failing_tests) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    version_id,
                    d.action.as_str(),
                    d.actor,
                    d.at,
                    d.notes,
                    d.sha256,
                    d.override_failing_tests
                ])
            })
            .map_err(db("record decision"))?;
        Ok(())
    }

    fn version(&mut self, target: &VersionRef) -> Result<Option<VersionInfo>> {
        rows::version_of(self.conn, target)
    }

    fn insert_key(&mut self, key: &StoredKey) -> Result<()> {
        let k = &key.info;
        self.conn
            .prepare_cached(
                "INSERT INTO api_keys (key_id, tenant, role, subject, secret_sha256, created_at, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    k.key_id,
                    k.tenant,
                    k.role,
                    k.subject,
                    key.secret_sha256,
                    k.created_at,
                    k.created_by
                ])
            })
            .map_err(db("insert key"))?;
        Ok(())
    }

    fn key(&mut self, key_id: &str) -> Result<Option<KeyInfo>> {
        Ok(rows::key_of(self.conn, key_id)?.map(|k| k.info))
    }

    fn revoke_key(&mut self, key_id: &str, at: Timestamp, by: &Subject) -> Result<()> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE api_keys SET revoked_at = ?1, revoked_by = ?2 WHERE key_id = ?3 AND revoked_at IS NULL",
            )
            .and_then(|mut s| s.execute(params![at, by, key_id]))
            .map_err(db("revoke key"))?;
        if changed != 1 {
            return Err(RegistryError::KeyAlreadyRevoked {
                key_id: key_id.to_owned(),
            });
        }
        Ok(())
    }

    fn policy(&mut self, tenant: &TenantId, subject: &Subject) -> Result<Option<PolicyInfo>> {
        policies::policy(self.conn, tenant, subject)
    }

    fn last_policy_version(&mut self, tenant: &TenantId, subject: &Subject) -> Result<u64> {
        policies::last_version(self.conn, tenant, subject)
    }

    fn put_policy(&mut self, tenant: &TenantId, info: &PolicyInfo) -> Result<()> {
        policies::put_policy(self.conn, tenant, info)
    }

    fn delete_policy(&mut self, tenant: &TenantId, subject: &Subject) -> Result<()> {
        policies::delete_policy(self.conn, tenant, subject)
    }

    fn tenant_settings(&mut self, tenant: &TenantId) -> Result<TenantInfo> {
        policies::tenant_settings(self.conn, tenant)
    }

    fn put_tenant_settings(&mut self, info: &TenantInfo) -> Result<()> {
        policies::put_tenant_settings(self.conn, info)
    }
}
