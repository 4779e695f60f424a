//! The stored form of a JavaScript function: the engine's sha256 and the
//! source, in one blob whose sha256 is what an approver approves. A change
//! of either is a different version.
//!
//! Layout: `\0aifnjs\x01`, 32 bytes of the engine module's sha256, then
//! the source as UTF-8. The first byte can never start a wasm module's
//! `\0asm`, so the two are told apart by their first 8 bytes.

use crate::ModuleError;

/// The first bytes of a JavaScript package.
pub(crate) const MAGIC: &[u8; 8] = b"\0aifnjs\x01";

/// The largest JavaScript source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// A parsed package.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Package<'a> {
    pub(crate) engine_sha256: [u8; 32],
    pub(crate) source: &'a str,
}

impl<'a> Package<'a> {
    /// `None` when `bytes` are not a JavaScript package at all.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Result<Package<'a>, ModuleError>> {
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let refuse = |reason: String| Some(Err(ModuleError::InvalidScript { reason }));
        if rest.len() < 32 {
            return refuse("the JavaScript package is cut short before its engine hash".into());
        }
        let (hash, source) = rest.split_at(32);
        if source.len() > MAX_SOURCE_BYTES {
            return refuse(format!(
                "the source is {} bytes, over the limit of {MAX_SOURCE_BYTES} bytes",
                source.len()
            ));
        }
        let source = match std::str::from_utf8(source) {
            Ok(s) => s,
            Err(e) => return refuse(format!("the source is not UTF-8: {e}")),
        };
        let mut engine_sha256 = [0; 32];
        engine_sha256.copy_from_slice(hash);
        Some(Ok(Package {
            engine_sha256,
            source,
        }))
    }

    /// The package's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + 32 + self.source.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.engine_sha256);
        out.extend_from_slice(self.source.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{MAGIC, MAX_SOURCE_BYTES, Package};

    #[test]
    fn a_package_round_trips_and_anything_else_is_not_one() {
        let p = Package {
            engine_sha256: [7; 32],
            source: "export function main(i) { return i }",
        };
        let bytes = p.encode();
        let back = Package::parse(&bytes)
            .and_then(Result::ok)
            .map(|p| (p.engine_sha256, p.source));
        assert_eq!(back, Some(([7; 32], p.source)));
        assert!(Package::parse(b"\0asm\x01\0\0\0").is_none());
        assert!(Package::parse(b"export function main() {}").is_none());
    }

    #[test]
    fn a_short_oversized_or_non_utf8_package_is_refused() {
        let short = [MAGIC.as_slice(), &[1; 31]].concat();
        let big = [
            MAGIC.as_slice(),
            &[1; 32],
            &vec![b' '; MAX_SOURCE_BYTES + 1],
        ]
        .concat();
        let bad = [MAGIC.as_slice(), &[1; 32], b"\xff"].concat();
        for bytes in [short, big, bad] {
            assert!(matches!(Package::parse(&bytes), Some(Err(_))));
        }
        let max = [MAGIC.as_slice(), &[1; 32], &vec![b' '; MAX_SOURCE_BYTES]].concat();
        assert!(matches!(Package::parse(&max), Some(Ok(_))));
    }
}
