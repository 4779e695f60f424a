//! Console sessions. An API key is presented once, at sign-in, and
//! exchanged for a random session token that lives only in an HttpOnly,
//! SameSite=Strict cookie; the server keeps the session (the principal,
//! its CSRF token, its expiry) in memory, keyed by the token's sha256.
//! Every request of a session re-checks its key, so a revoked key ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aifn_service::{Origin, Principal, ServiceError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sha2::{Digest as _, Sha256};

use super::ConsoleError;
use crate::{AppState, blocking};

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "aifn_session";
/// The sign-in form's own CSRF cookie (before there is a session).
pub(crate) const SIGN_IN_COOKIE: &str = "aifn_sign_in";
/// Sessions held at once; past it sign-in is refused (503), never an
/// older session silently dropped.
const MAX_SESSIONS: usize = 10_000;
/// Sessions of one key at once; a new one past it ends that key's oldest,
/// so that one key cannot fill the table for everyone.
const MAX_SESSIONS_PER_KEY: usize = 20;

/// One signed-in person.
pub(crate) struct Session {
    pub(crate) who: Principal,
    /// Sent back in every form; a POST without it is refused.
    pub(crate) csrf: String,
    expires: Instant,
}

/// The sessions of this node.
pub(crate) struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<[u8; 32], Arc<Session>>>,
}

/// 32 random bytes, hex.
pub(crate) fn random_token() -> Result<String, ServiceError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| ServiceError::internal("session token", &e))?;
    Ok(hex::encode(b))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal strings, in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    pub(crate) fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `who`: its token (for the cookie) and itself.
    pub(crate) fn open(&self, who: Principal) -> Result<(String, Arc<Session>), ServiceError> {
        let token = random_token()?;
        let session = Arc::new(Session {
            who,
            csrf: random_token()?,
            expires: Instant::now() + self.ttl,
        });
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        let mine: Vec<([u8; 32], Instant)> = map
            .iter()
            .filter(|(_, s)| s.who.key_id == session.who.key_id)
            .map(|(k, s)| (*k, s.expires))
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_KEY
            && let Some((oldest, _)) = mine.iter().min_by_key(|(_, at)| *at)
        {
            map.remove(oldest);
        }
        if map.len() >= MAX_SESSIONS {
            return Err(ServiceError::Unavailable {
                message: "too many console sessions are open; retry later".into(),
            });
        }
        map.insert(digest(&token), Arc::clone(&session));
        Ok((token, session))
    }

    /// The live session of `token`; an expired one is ended here.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Session>> {
        let key = digest(token);
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(Arc::clone(s)),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`, if there is one.
    pub(crate) fn close(&self, token: &str) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&digest(token));
    }
}

/// The value of cookie `name` in the request, if sent.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A cookie for the console's paths, HttpOnly and SameSite=Strict;
/// Secure when the console is served over TLS.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The signed-in person of a request: its session, re-checked against
/// the registry (a revoked key ends it). No session: the sign-in page.
pub(crate) struct Viewer {
    pub(crate) session: Arc<Session>,
}

impl Viewer {
    pub(crate) fn who(&self) -> &Principal {
        &self.session.who
    }

    pub(crate) fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// Refuses a state-changing request whose form lacks the session's
    /// CSRF token.
    pub(crate) fn check_csrf(&self, sent: Option<&str>) -> Result<(), ConsoleError> {
        match sent {
            Some(t) if same_secret(t, &self.session.csrf) => Ok(()),
            _ => Err(ConsoleError::csrf()),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ConsoleError::SignIn);
        };
        let Some(session) = state.sessions.get(token) else {
            return Err(ConsoleError::SignIn);
        };
        let (route, remote) = crate::caller::origin_of(&parts.extensions);
        let (service, check) = (state.service.clone(), Arc::clone(&session));
        let token = token.to_owned();
        let live = blocking(move || {
            let origin = Origin {
                route: &route,
                remote,
            };
            Ok(service.reauthenticate(&check.who, origin))
        })
        .await
        .map_err(|_| ConsoleError::from(ServiceError::internal("session", &"task failed")))?;
        match live {
            Ok(()) => {}
            // Only a key that no longer authenticates ends the session;
            // a passing storage error does not sign anyone out.
            Err(e @ ServiceError::Unauthenticated { .. }) => {
                state.sessions.close(&token);
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Viewer { session })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    fn principal() -> Principal {
        Principal {
            key_id: "k".into(),
            tenant: aifn_types::TenantId::new("acme").expect("tenant"),
            role: aifn_types::Role::Approver,
            subject: aifn_types::Subject::new("bob").expect("subject"),
        }
    }

    #[test]
    fn a_session_ends_at_its_expiry_and_at_sign_out() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let (token, s) = sessions.open(principal()).expect("open");
        assert_eq!(s.csrf.len(), 64);
        assert!(sessions.get(&token).is_some());
        assert!(sessions.get("other").is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&token).is_none(), "expired");
        let (token, _) = sessions.open(principal()).expect("open");
        sessions.close(&token);
        assert!(sessions.get(&token).is_none(), "signed out");
    }

    #[test]
    fn one_key_holds_at_most_its_share_of_sessions() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let first = sessions.open(principal()).expect("open").0;
        let mut last = String::new();
        for _ in 0..MAX_SESSIONS_PER_KEY {
            last = sessions.open(principal()).expect("open").0;
        }
        assert!(sessions.get(&first).is_none(), "the oldest was ended");
        assert!(sessions.get(&last).is_some());
        let map = sessions.map.lock().expect("lock");
        assert_eq!(map.len(), MAX_SESSIONS_PER_KEY);
    }

    #[test]
    fn cookies_are_strict_and_http_only() {
        let c = set_cookie("n", "v", Duration::from_secs(60), false);
        assert_eq!(
            c,
            "n=v; Path=/console; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(set_cookie("n", "v", Duration::ZERO, true).ends_with("; Secure"));
    }
}
