//! The credential detector: keys with a known prefix, PEM private keys
//! and JWTs. One regex finds the candidates (its literal prefixes make the
//! clean case a fast literal search); a check per family then confirms:
//!
//! - `sk-` keys (OpenAI, Anthropic) need 20+ key characters with a digit,
//!   an uppercase and a lowercase letter (so `sk-learn-pipeline` is not
//!   one); Slack tokens (`xoxb-`, `xoxp-`, ...) need 10+ digits;
//! - Stripe (`sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`), GitHub
//!   (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), AWS access key
//!   ids (`AKIA`/`ASIA` + 16 uppercase letters or digits) and Google API
//!   keys (`AIza` + 35) are specific enough as they are;
//! - `-----BEGIN ... PRIVATE KEY-----` is a PEM private key;
//! - a JWT is three base64url segments whose first decodes to a JSON
//!   object with an `"alg"` member.
//!
//! Prefixed keys must start a word (`task-...` holds no `sk-` key).
//! Masked keys (`sk-****`) do not match: `*` is no key character.

use regex::Regex;
use std::sync::LazyLock;

use super::GuardError;

/// The shortest string a credential can be (`AKIA` + 16).
pub(super) const MIN_LEN: usize = 20;

const PATTERN: &str = concat!(
    r"(?-u:\b)(?:",
    r"sk-[A-Za-z0-9_-]{20,}",
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
    r"|gh[pousr]_[A-Za-z0-9]{36,}",
    r"|github_pat_[A-Za-z0-9_]{22,}",
    r"|xox[abprs]-[A-Za-z0-9-]{10,}",
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)",
    r"|AIza[0-9A-Za-z_-]{35}",
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    r")",
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----",
);

static CANDIDATES: LazyLock<Result<Regex, regex::Error>> = LazyLock::new(|| Regex::new(PATTERN));

/// The compiled candidate regex (compiled once per process).
pub(super) fn regex() -> Result<Regex, GuardError> {
    CANDIDATES
        .as_ref()
        .map(Regex::clone)
        .map_err(|e| GuardError::Builtin { source: e.clone() })
}

/// Whether `s` holds a credential.
pub(super) fn found(candidates: &Regex, s: &str) -> bool {
    if !may_hold(s.as_bytes()) || !candidates.is_match(s) {
        return false;
    }
    candidates.find_iter(s).any(|m| confirmed(m.as_str()))
}

/// The cheap pass before the regex: a credential starts a word with one
/// of these two bytes, or is a PEM block (`--`). Most strings have none.
fn may_hold(b: &[u8]) -> bool {
    let mut word_start = true;
    for i in 0..b.len().saturating_sub(1) {
        let c = b[i];
        if word_start || c == b'-' {
            let next = b[i + 1];
            let hit = match c {
                b's' | b'r' => next == b'k',
                b'g' => matches!(next, b'h' | b'i'),
                b'x' => next == b'o',
                b'e' => next == b'y',
                b'A' => matches!(next, b'K' | b'S' | b'I'),
                b'-' => next == b'-',
                _ => false,
            };
            if hit {
                return true;
            }
        }
        word_start = !(c.is_ascii_alphanumeric() || c == b'_');
    }
    false
}

/// The family check of one candidate.
fn confirmed(m: &str) -> bool {
    if let Some(key) = m.strip_prefix("sk-") {
        let b = key.as_bytes();
        b.iter().any(u8::is_ascii_digit)
            && b.iter().any(u8::is_ascii_uppercase)
            && b.iter().any(u8::is_ascii_lowercase)
    } else if m.starts_with("xox") {
        m.bytes().filter(u8::is_ascii_digit).count() >= 10
    } else if m.starts_with("eyJ") {
        is_jwt(m)
    } else {
        true
    }
}

/// A JWT: the header segment decodes to a JSON object naming its `alg`.
fn is_jwt(m: &str) -> bool {
    let Some((header, _)) = m.split_once('.') else {
        return false;
    };
    let Some(bytes) = base64url(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .is_ok_and(|h| h.get("alg").is_some_and(serde_json::Value::is_string))
}

/// Decodes unpadded base64url; `None` for a bad character or length.
pub(super) fn base64url(s: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    let b = s.as_bytes();
    if b.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    for chunk in b.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= sextet(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}
