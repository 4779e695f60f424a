//! Canonical JSON and the chain hash.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record of a fresh log.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// JSON with object keys sorted (by bytes) and no whitespace. Written by
/// hand so the result does not depend on serde_json's map features.
pub(crate) fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    // Serializing a str cannot fail; serde_json's escaping is deterministic.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// `sha256(prev_hash || seq as 8 bytes big-endian || body)`.
pub(crate) fn chain_hash(prev: &[u8; 32], seq: u64, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(body.as_bytes());
    h.finalize().into()
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
}
