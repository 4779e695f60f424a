//! The caller of a request: its bearer key resolved to a principal by the
//! service, with the route template and the peer recorded for every
//! failed attempt. Extracted before anything else in a handler, so a
//! request without a valid key learns nothing about the route.

use std::net::SocketAddr;

use aifn_service::{Credential, Origin, Principal, Service};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{Extensions, header};

use crate::error::ApiError;
use crate::{AppState, blocking};

/// The authenticated principal of a request.
pub(crate) struct Caller(pub(crate) Principal);

/// `Authorization: Bearer KEY`; the scheme is case-insensitive (RFC 9110
/// section 11.1).
fn credential(parts: &Parts) -> Credential {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Credential::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credential::Malformed;
    };
    let value = value.trim();
    if value.is_empty() {
        return Credential::Missing;
    }
    match value.split_at_checked(7) {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer ") && !token.trim().is_empty() =>
        {
            Credential::ApiKey(token.trim().to_owned())
        }
        _ => Credential::Malformed,
    }
}

/// The route template and the peer of a request, for the security
/// stream's record of a failed attempt.
pub(crate) fn origin_of(extensions: &Extensions) -> (String, Option<SocketAddr>) {
    let route = extensions
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |m| m.as_str().to_owned());
    let remote = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    (route, remote)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = Presented::of(parts);
        let service = state.service.clone();
        blocking(move || Ok(Caller(presented.authenticate(&service)?))).await
    }
}

/// What a request presented, not yet checked: for a handler that checks
/// it on the blocking thread that also does its work (one hop, not two).
/// A credential that cannot be a key is refused before the body is read.
pub(crate) struct Presented {
    credential: Credential,
    route: String,
    remote: Option<SocketAddr>,
}

impl Presented {
    fn of(parts: &Parts) -> Presented {
        let (route, remote) = origin_of(&parts.extensions);
        Presented {
            credential: credential(parts),
            route,
            remote,
        }
    }

    /// The principal, or the refusal (recorded in the security stream).
    /// Blocking: call it off the reactor.
    pub(crate) fn authenticate(&self, service: &Service) -> Result<Principal, ApiError> {
        let origin = Origin {
            route: &self.route,
            remote: self.remote,
        };
        Ok(service.authenticate(&self.credential, origin)?)
    }
}

impl FromRequestParts<AppState> for Presented {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = Presented::of(parts);
        if matches!(presented.credential, Credential::ApiKey(_)) {
            return Ok(presented);
        }
        // Missing or malformed: refused (and recorded) now, body unread.
        let service = state.service.clone();
        blocking(move || {
            // Only a key authenticates, so this is the refusal.
            presented.authenticate(&service)?;
            Ok(presented)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parse(h: Option<&[u8]>) -> Credential {
        let mut b = Request::builder();
        if let Some(h) = h {
            b = b.header(header::AUTHORIZATION, h);
        }
        let (parts, ()) = b.body(()).expect("request").into_parts();
        credential(&parts)
    }

    #[test]
    fn bearer_keys_and_everything_else() {
        assert_eq!(parse(None), Credential::Missing);
        assert_eq!(parse(Some(b"  ")), Credential::Missing);
        assert_eq!(parse(Some(b"Bearer k1")), Credential::ApiKey("k1".into()));
        assert_eq!(parse(Some(b"bEaReR  k1 ")), Credential::ApiKey("k1".into()));
        assert_eq!(parse(Some(b"Bearer ")), Credential::Malformed);
        assert_eq!(parse(Some(b"Bearer \t ")), Credential::Malformed);
        assert_eq!(parse(Some(b"Basic k1")), Credential::Malformed);
        assert_eq!(parse(Some(b"Bearerk1")), Credential::Malformed);
        assert_eq!(parse(Some(b"\xff\xfe")), Credential::Malformed);
    }
}
