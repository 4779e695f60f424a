//! API keys: creation, authentication, listing, revocation.

use aifn_types::{
    AuditTarget, RegistryAction, RegistryActionKind, Role, Subject, TenantId, Timestamp,
};

use crate::registry::Result;
use crate::secret;
use crate::store::StoredKey;
use crate::{AuthError, KeyInfo, NewKey, Principal, Registry, RegistryError};

impl Registry {
    /// Creates an API key for `subject` with `role` in `tenant`. The secret
    /// in the answer is shown once: only its sha256 is stored.
    pub fn create_key(
        &self,
        tenant: &TenantId,
        role: Role,
        subject: &Subject,
        actor: &Subject,
    ) -> Result<NewKey> {
        let (key_id, token) = secret::generate()?;
        let stored = StoredKey {
            info: KeyInfo {
                key_id: key_id.clone(),
                tenant: tenant.clone(),
                role,
                subject: subject.clone(),
                created_at: Timestamp::now(),
                created_by: actor.clone(),
                revoked_at: None,
                revoked_by: None,
            },
            secret_sha256: secret::hash(&token).to_vec(),
        };
        self.write(|tx| {
            tx.insert_key(&stored)?;
            self.record(&RegistryAction {
                tenant_id: tenant.clone(),
                actor: actor.clone(),
                action: RegistryActionKind::KeyCreated,
                target: AuditTarget::Key {
                    key_id: key_id.clone(),
                },
                sha256: None,
                notes: Some(format!("role {role} for {subject}")),
                refused: None,
                before: None,
                after: None,
                override_failing_tests: false,
            })
        })?;
        Ok(NewKey {
            key_id,
            secret: token,
        })
    }

    /// Who a secret speaks for. A wrong secret for an existing key id is
    /// `Unknown`, like a missing id; `Revoked` only for the right secret.
    pub fn authenticate(&self, token: &str) -> std::result::Result<Principal, AuthError> {
        let key_id = secret::parse(token).ok_or(AuthError::Malformed)?;
        let stored = self.store().key(key_id)?.ok_or(AuthError::Unknown)?;
        if !secret::constant_time_eq(&secret::hash(token), &stored.secret_sha256) {
            return Err(AuthError::Unknown);
        }
        if stored.info.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        let KeyInfo {
            key_id,
            tenant,
            role,
            subject,
            ..
        } = stored.info;
        Ok(Principal {
            key_id,
            tenant,
            role,
            subject,
        })
    }

    /// Whether key `key_id` still authenticates (it exists and is not
    /// revoked): a console session made from it checks this at every
    /// request, so that revoking the key ends the session.
    pub fn key_is_live(&self, key_id: &str) -> Result<bool> {
        Ok(self
            .store()
            .key(key_id)?
            .is_some_and(|k| k.info.revoked_at.is_none()))
    }

    /// The keys of one tenant, or of all tenants; never secrets or hashes.
    pub fn list_keys(&self, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>> {
        self.store().keys(tenant)
    }

    /// Revokes a key for good; it authenticates as `Revoked` from now on.
    /// Revoking a revoked key is refused and recorded in the key's tenant;
    /// an unknown key id has no tenant to record it in.
    pub fn revoke_key(&self, key_id: &str, actor: &Subject) -> Result<KeyInfo> {
        let at = Timestamp::now();
        let mut tenant = None;
        let action = |tenant_id: TenantId| RegistryAction {
            tenant_id,
            actor: actor.clone(),
            action: RegistryActionKind::KeyRevoked,
            target: AuditTarget::Key {
                key_id: key_id.to_owned(),
            },
            sha256: None,
            notes: None,
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        };
        let result = self.write(|tx| {
            let key = tx.key(key_id)?.ok_or_else(|| RegistryError::KeyNotFound {
                key_id: key_id.to_owned(),
            })?;
            tenant = Some(key.tenant.clone());
            if key.revoked_at.is_some() {
                return Err(RegistryError::KeyAlreadyRevoked {
                    key_id: key_id.to_owned(),
                });
            }
            tx.revoke_key(key_id, at, actor)?;
            self.record(&action(key.tenant.clone()))?;
            Ok(KeyInfo {
                revoked_at: Some(at),
                revoked_by: Some(actor.clone()),
                ..key
            })
        });
        result.map_err(|e| match tenant {
            Some(t) => self.refused(action(t), e),
            None => e,
        })
    }
}
