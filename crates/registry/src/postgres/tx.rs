//! The write transaction: every statement that changes the registry, each
//! run to completion on the store's runtime (the body calling them is
//! synchronous).

use std::future::Future;

use aifn_types::{FunctionName, ModuleReport, Subject, TenantId, Timestamp, VersionState};
use deadpool_postgres::ClientWrapper;
use tokio::runtime::Runtime;

use super::rows::{self, HEAD_COLUMNS};
use super::{execute, get, policies, query_opt};
use crate::store::{NewVersionRow, Result, StoredKey, VersionHead, WriteTx};
use crate::{Decision, KeyInfo, PolicyInfo, RegistryError, TenantInfo, VersionInfo, VersionRef};

/// A write transaction on one pooled connection, after `BEGIN` and the
/// write lock.
pub(super) struct PgTx<'a> {
    pub(super) runtime: &'a Runtime,
    pub(super) conn: &'a ClientWrapper,
    /// A statement failed. PostgreSQL then aborts the transaction and
    /// answers a later `COMMIT` with a silent rollback, so a body that
    /// went on regardless must not be told it committed.
    pub(super) failed: bool,
}

impl PgTx<'_> {
    fn run<T>(&mut self, f: impl Future<Output = Result<T>>) -> Result<T> {
        let out = self.runtime.block_on(f);
        self.failed |= out.is_err();
        out
    }
}

impl WriteTx for PgTx<'_> {
    fn function_id(&mut self, tenant: &TenantId, name: &FunctionName) -> Result<Option<i64>> {
        self.run(async {
            query_opt(
                self.conn,
                "find function",
                "SELECT id FROM functions WHERE tenant = $1 AND name = $2",
                &[tenant, name],
            )
            .await?
            .map(|r| get(&r, 0))
            .transpose()
        })
    }

    fn insert_function(
        &mut self,
        tenant: &TenantId,
        name: &FunctionName,
        created_at: Timestamp,
    ) -> Result<i64> {
        self.run(async {
            let row = query_opt(
                self.conn,
                "insert function",
                "INSERT INTO functions (tenant, name, created_at) VALUES ($1, $2, $3) RETURNING id",
                &[tenant, name, &created_at],
            )
            .await?
            .ok_or_else(|| RegistryError::Corrupt("inserted function has no id".into()))?;
            get(&row, 0)
        })
    }

    fn latest_report(&mut self, function_id: i64) -> Result<Option<(u32, ModuleReport)>> {
        self.run(rows::latest_report(self.conn, function_id))
    }

    fn put_module(&mut self, sha256: &str, bytes: &[u8]) -> Result<()> {
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.run(execute(
            self.conn,
            "store module",
            "INSERT INTO modules (sha256, size_bytes, bytes) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
            &[&sha256, &size, &bytes],
        ))?;
        Ok(())
    }

    fn insert_version(&mut self, row: &NewVersionRow<'_>) -> Result<()> {
        let version = i64::from(row.version);
        let language = row.source.map(|(s, _)| s.language.as_str());
        let text = row.source.map(|(s, _)| s.text.as_str());
        let source_sha256 = row.source.map(|(_, sha256)| sha256);
        self.run(execute(
            self.conn,
            "insert version",
            "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, \
             manifest, report, source_language, source, source_sha256) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11)",
            &[
                &row.function_id,
                &version,
                &row.sha256,
                row.author,
                &row.uploaded_at,
                &row.description,
                &row.manifest_json,
                &row.report_json,
                &language,
                &text,
                &source_sha256,
            ],
        ))?;
        Ok(())
    }

    fn version_head(&mut self, target: &VersionRef) -> Result<Option<VersionHead>> {
        let sql = format!(
            "SELECT {HEAD_COLUMNS} FROM versions v JOIN functions f ON f.id = v.function_id \
             WHERE f.tenant = $1 AND f.name = $2 AND v.version = $3"
        );
        let version = i64::from(target.version);
        self.run(async {
            query_opt(
                self.conn,
                "read version",
                &sql,
                &[&target.tenant, &target.name, &version],
            )
            .await?
            .as_ref()
            .map(rows::head)
            .transpose()
        })
    }

    fn active_head(&mut self, function_id: i64) -> Result<Option<VersionHead>> {
        let sql = format!(
            "SELECT {HEAD_COLUMNS} FROM versions v WHERE v.function_id = $1 AND v.state = 'active'"
        );
        self.run(async {
            query_opt(self.conn, "read active version", &sql, &[&function_id])
                .await?
                .as_ref()
                .map(rows::head)
                .transpose()
        })
    }

    fn set_state(&mut self, version_id: i64, from: VersionState, to: VersionState) -> Result<()> {
        let changed = self.run(execute(
            self.conn,
            "change version state",
            "UPDATE versions SET state = $1 WHERE id = $2 AND state = $3",
            &[&to, &version_id, &from],
        ))?;
        if changed != 1 {
            // Cannot happen under the write lock; refuse rather than guess.
            return Err(RegistryError::Corrupt(format!(
                "version row {version_id} was not {from}"
            )));
        }
        Ok(())
    }

    fn insert_decision(&mut self, version_id: i64, d: &Decision) -> Result<()> {
        self.run(execute(
            self.conn,
            "record decision",
            "INSERT INTO decisions (version_id, action, actor, at, notes, sha256, override_failing_tests) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &version_id,
                &d.action.as_str(),
                &d.actor,
                &d.at,
                &d.notes,
                &d.sha256,
                &d.override_failing_tests,
            ],
        ))?;
        Ok(())
    }

    fn version(&mut self, target: &VersionRef) -> Result<Option<VersionInfo>> {
        self.run(rows::version_of(self.conn, target))
    }

    fn insert_key(&mut self, key: &StoredKey) -> Result<()> {
        let k = &key.info;
        self.run(execute(
            self.conn,
            "insert key",
            "INSERT INTO api_keys (key_id, tenant, role, subject, secret_sha256, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &k.key_id,
                &k.tenant,
                &k.role,
                &k.subject,
                &key.secret_sha256,
                &k.created_at,
                &k.created_by,
            ],
        ))?;
        Ok(())
    }

    fn key(&mut self, key_id: &str) -> Result<Option<KeyInfo>> {
        Ok(self.run(rows::key_of(self.conn, key_id))?.map(|k| k.info))
    }

    fn revoke_key(&mut self, key_id: &str, at: Timestamp, by: &Subject) -> Result<()> {
        let changed = self.run(execute(
            self.conn,
            "revoke key",
            "UPDATE api_keys SET revoked_at = $1, revoked_by = $2 WHERE key_id = $3 AND revoked_at IS NULL",
            &[&at, by, &key_id],
        ))?;
        if changed != 1 {
            return Err(RegistryError::KeyAlreadyRevoked {
                key_id: key_id.to_owned(),
            });
        }
        Ok(())
    }

    fn policy(&mut self, tenant: &TenantId, subject: &Subject) -> Result<Option<PolicyInfo>> {
        self.run(policies::policy(self.conn, tenant, subject))
    }

    fn last_policy_version(&mut self, tenant: &TenantId, subject: &Subject) -> Result<u64> {
        self.run(policies::last_version(self.conn, tenant, subject))
    }

    fn put_policy(&mut self, tenant: &TenantId, info: &PolicyInfo) -> Result<()> {
        self.run(policies::put_policy(self.conn, tenant, info))
    }

    fn delete_policy(&mut self, tenant: &TenantId, subject: &Subject) -> Result<()> {
        self.run(policies::delete_policy(self.conn, tenant, subject))
    }

    fn tenant_settings(&mut self, tenant: &TenantId) -> Result<TenantInfo> {
        self.run(policies::tenant_settings(self.conn, tenant))
    }

    fn put_tenant_settings(&mut self, info: &TenantInfo) -> Result<()> {
        self.run(policies::put_tenant_settings(self.conn, info))
    }
}
