//! API key secrets: `aifn_<key id>_<secret>`, where the key id is 16 hex
//! digits and the secret 64 (32 random bytes). Lookup is by id; the stored
//! sha256 of the whole string is compared in constant time.

use sha2::{Digest, Sha256};

use crate::RegistryError;

const PREFIX: &str = "aifn_";
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], RegistryError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RegistryError::Storage {
        op: "generate random key",
        source: Box::new(e),
    })?;
    Ok(buf)
}

/// A new key id and its full secret string.
pub(crate) fn generate() -> Result<(String, String), RegistryError> {
    let id = hex::encode(random_bytes::<{ ID_HEX / 2 }>()?);
    let secret = hex::encode(random_bytes::<{ SECRET_HEX / 2 }>()?);
    let token = format!("{PREFIX}{id}_{secret}");
    Ok((id, token))
}

/// The key id inside a well-formed secret, or `None`.
pub(crate) fn parse(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let lower_hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (lower_hex(id, ID_HEX) && lower_hex(secret, SECRET_HEX)).then_some(id)
}

pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares without an early exit, so timing says nothing about where two
/// hashes differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        // Two differences that cancel under XOR accumulation still differ.
        assert!(!constant_time_eq(b"ab", b"ba"));
        assert!(!constant_time_eq(&[1, 2, 3, 3], &[2, 1, 3, 3]));
    }
}
