//! Canonical JSON and the chain hash.

use std::io::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record of a fresh log.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// JSON with object keys sorted (by bytes) and no whitespace. Written by
/// hand so the result does not depend on serde_json's map features.
pub(crate) fn canonical_json(v: &Value) -> String {
    // Bytes rather than a String, so strings and numbers are written in
    // place by serde_json's own formatter (no allocation per value).
    let mut out = Vec::with_capacity(512);
    write(v, &mut out);
    // Only valid UTF-8 was written; the lossy path is never taken.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // Writing to a Vec cannot fail; the Display form is serde_json's.
        Value::Number(n) => drop(write!(out, "{n}")),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // serde_json's escaping is deterministic; writing to a Vec cannot fail.
    drop(serde_json::to_writer(&mut *out, s));
}

/// Format 1, the chain of records made before migration 3:
/// `sha256(prev_hash || seq as 8 bytes big-endian || body)`.
pub(crate) fn chain_hash(prev: &[u8; 32], seq: u64, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(body.as_bytes());
    h.finalize().into()
}

/// Format 2: `sha256(prev_hash || seq as 8 bytes big-endian || sha256(body))`,
/// so a link can be checked from the body's digest alone (evidence carries
/// other tenants' links without their bodies).
pub(crate) fn chain_hash_digest(prev: &[u8; 32], seq: u64, body_sha256: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(body_sha256);
    h.finalize().into()
}

/// Which formula chains the record at a seq: format 2 from `format_2_from`
/// on (`None`: a log that predates migration 3, all format 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainFormat {
    pub(crate) format_2_from: Option<u64>,
}

impl ChainFormat {
    /// True when the record at `seq` is chained with format 2.
    pub(crate) fn is_digest(self, seq: u64) -> bool {
        self.format_2_from.is_some_and(|from| seq >= from)
    }

    /// The hash of the record at `seq` with its format.
    pub(crate) fn hash(self, prev: &[u8; 32], seq: u64, body: &str) -> [u8; 32] {
        if self.is_digest(seq) {
            chain_hash_digest(prev, seq, &Sha256::digest(body.as_bytes()).into())
        } else {
            chain_hash(prev, seq, body)
        }
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn decode_hash(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_without_whitespace() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, 2.5, {"z": null, "a": true}], "a": "x\"y", "é": 1 }"#,
        )
        .expect("json");
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"x\"y","b":[1,2.5,{"a":true,"z":null}],"é":1}"#
        );
    }

    #[test]
    fn strings_and_numbers_are_written_as_serde_json_writes_them() {
        let mut all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        all.push_str("\u{2028}\u{fffd}\u{1f600}");
        for s in [all.as_str(), "", "\\\"", "\u{7f}"] {
            let v = Value::String(s.to_owned());
            assert_eq!(canonical_json(&v), serde_json::to_string(s).expect("json"));
        }
        let v: Value =
            serde_json::from_str("[0,-1,18446744073709551615,1.5,1e300,-0.0,0.1]").expect("json");
        let expected: Vec<String> = v
            .as_array()
            .expect("array")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(canonical_json(&v), format!("[{}]", expected.join(",")));
    }

    #[test]
    fn chain_hash_covers_prev_seq_and_body() {
        let h = chain_hash(&GENESIS, 1, "{}");
        assert_ne!(h, chain_hash(&GENESIS, 2, "{}"));
        assert_ne!(h, chain_hash(&h, 1, "{}"));
        assert_ne!(h, chain_hash(&GENESIS, 1, "{ }"));
        let mut manual = Sha256::new();
        manual.update([0u8; 32]);
        manual.update([0, 0, 0, 0, 0, 0, 0, 1]);
        manual.update(b"{}");
        assert_eq!(h, <[u8; 32]>::from(manual.finalize()));
        assert_eq!(decode_hash(&hex::encode(h)), Some(h));
        assert_eq!(decode_hash("zz"), None);
    }

    #[test]
    fn format_2_hashes_the_body_digest_from_its_boundary() {
        let digest: [u8; 32] = Sha256::digest(b"{}").into();
        let h2 = chain_hash_digest(&GENESIS, 1, &digest);
        let mut manual = Sha256::new();
        manual.update([0u8; 32]);
        manual.update([0, 0, 0, 0, 0, 0, 0, 1]);
        manual.update(digest);
        assert_eq!(h2, <[u8; 32]>::from(manual.finalize()));
        assert_ne!(h2, chain_hash_digest(&GENESIS, 2, &digest));
        assert_ne!(h2, chain_hash_digest(&h2, 1, &digest));
        assert_ne!(h2, chain_hash_digest(&GENESIS, 1, &[0; 32]));

        let mixed = ChainFormat {
            format_2_from: Some(5),
        };
        assert!(!mixed.is_digest(4) && mixed.is_digest(5) && mixed.is_digest(6));
        assert_eq!(mixed.hash(&GENESIS, 4, "{}"), chain_hash(&GENESIS, 4, "{}"));
        assert_eq!(
            mixed.hash(&GENESIS, 5, "{}"),
            chain_hash_digest(&GENESIS, 5, &digest)
        );
        let legacy = ChainFormat {
            format_2_from: None,
        };
        assert!(!legacy.is_digest(u64::MAX));
        assert_eq!(
            legacy.hash(&GENESIS, 9, "{}"),
            chain_hash(&GENESIS, 9, "{}")
        );
    }
}
