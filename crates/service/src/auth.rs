//! Authentication: a credential in, a [`Principal`] out. Every failure is
//! recorded in the host-level security stream, never the key itself.
//! Also the role check every use case starts with.

use std::fmt;
use std::net::SocketAddr;

use aifn_audit::{SecurityEvent, SecurityReason};
use aifn_registry::{AuthError, Principal};
use aifn_types::{OutcomeKind, Role, Timestamp};

use crate::{Service, ServiceError};

/// What a caller presented to prove who it is. Transports parse their own
/// syntax (HTTP's `Authorization: Bearer ...`) into this.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing was presented.
    Missing,
    /// Something was presented, but not in a form that can hold a key.
    Malformed,
    /// An API key's secret.
    ApiKey(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Missing => f.write_str("Missing"),
            Credential::Malformed => f.write_str("Malformed"),
            Credential::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// Where a request came from, for the security stream.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The route template (`/v1/functions/{name}/invoke`), never the path,
    /// so that no caller-chosen text lands in the host's stream.
    pub route: &'a str,
    /// The peer address, when the request came over a socket.
    pub remote: Option<SocketAddr>,
}

/// Refuses unless `who` has one of `roles`; `what` names the action.
pub(crate) fn require(who: &Principal, roles: &[Role], what: &str) -> Result<(), ServiceError> {
    if roles.contains(&who.role) {
        return Ok(());
    }
    let allowed: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
    Err(ServiceError::Forbidden {
        reason: format!(
            "{what} needs the {} role; this key is {}",
            allowed.join(" or "),
            who.role
        ),
    })
}

impl Service {
    /// Resolves a credential to its key's principal. Every failure is
    /// recorded in the host-level security stream and counted as an
    /// `unauthenticated` attempt.
    pub fn authenticate(
        &self,
        credential: &Credential,
        origin: Origin<'_>,
    ) -> Result<Principal, ServiceError> {
        let reason = match credential {
            Credential::Missing => SecurityReason::MissingKey,
            Credential::Malformed => SecurityReason::MalformedKey,
            Credential::ApiKey(secret) => match self.inner.registry.authenticate(secret) {
                Ok(p) => return Ok(p),
                Err(AuthError::Malformed) => SecurityReason::MalformedKey,
                Err(AuthError::Unknown) => SecurityReason::UnknownKey,
                Err(AuthError::Revoked) => SecurityReason::RevokedKey,
                // The database is away: no verdict on the key, and no call.
                Err(AuthError::Registry(e)) => return Err(e.into()),
                Err(e) => return Err(ServiceError::internal("authenticate", &e)),
            },
        };
        Err(self.unauthenticated(reason, origin))
    }

    /// Re-checks the principal of a console session at each of its
    /// requests: its key must still authenticate, so that revoking the key
    /// ends every session made from it at its next request (recorded in
    /// the security stream like a revoked key presented).
    pub fn reauthenticate(&self, who: &Principal, origin: Origin<'_>) -> Result<(), ServiceError> {
        match self.inner.registry.key_is_live(&who.key_id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.unauthenticated(SecurityReason::RevokedKey, origin)),
            Err(e) => Err(e.into()),
        }
    }

    fn unauthenticated(&self, reason: SecurityReason, origin: Origin<'_>) -> ServiceError {
        let event = SecurityEvent {
            time: Timestamp::now(),
            route: origin.route.to_owned(),
            reason,
            remote_addr: origin.remote.map(|a| a.to_string()),
            node: String::new(),
        };
        if let Err(e) = self.inner.audit.record_security(event) {
            tracing::error!(error = %e, "could not record an unauthenticated attempt");
        }
        self.inner
            .metrics
            .record_refusal(OutcomeKind::Unauthenticated);
        let reason = match reason {
            SecurityReason::MissingKey => "missing key",
            SecurityReason::MalformedKey => "malformed key",
            SecurityReason::UnknownKey => "unknown key",
            SecurityReason::RevokedKey => "revoked key",
        };
        ServiceError::Unauthenticated { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_never_prints_its_secret() {
        let shown = format!("{:?}", Credential::ApiKey("aifn_0123_secret".into()));
        assert_eq!(shown, "ApiKey(<redacted>)");
        assert_eq!(format!("{:?}", Credential::Missing), "Missing");
        assert_eq!(format!("{:?}", Credential::Malformed), "Malformed");
    }
}
