//! Signed checkpoints of the chain head and the key that signs them. The
//! key lives in its own file, outside the database, so whoever can rewrite
//! the database cannot also sign a matching head.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AuditError;
use crate::canon::canonical_json;

/// Domain separation: a checkpoint signature can never be mistaken for a
/// signature over anything else.
const DOMAIN: &[u8] = b"aifn-audit-checkpoint-v1\n";

/// A signed statement "the chain head was `seq` / `hash` at `time`", one
/// JSON line in the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last seq covered.
    pub seq: u64,
    /// Its hash (lowercase hex; zeros for an empty log).
    pub hash: String,
    /// When the checkpoint was made (RFC 3339 UTC, milliseconds).
    pub time: String,
    /// The host that made it.
    pub node: String,
    /// The Ed25519 public key that signed it (hex).
    pub public_key: String,
    /// Ed25519 signature (hex) over the domain string and the canonical
    /// JSON of `{hash, node, seq, time}`.
    pub signature: String,
}

fn message(seq: u64, hash: &str, time: &str, node: &str) -> Vec<u8> {
    let body = canonical_json(&json!({"seq": seq, "hash": hash, "time": time, "node": node}));
    [DOMAIN, body.as_bytes()].concat()
}

impl Checkpoint {
    pub(crate) fn sign(
        key: &SigningKey,
        seq: u64,
        hash: String,
        time: String,
        node: String,
    ) -> Checkpoint {
        let sig = key.sign(&message(seq, &hash, &time, &node));
        Checkpoint {
            seq,
            hash,
            time,
            node,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(sig.to_bytes()),
        }
    }

    /// Checks the signature against `key`, or against the key the line names.
    pub(crate) fn check(&self, key: Option<&VerifyingKey>) -> Result<(), String> {
        let named = parse_public_key(&self.public_key).ok_or("public_key is not 32 hex bytes")?;
        let key = key.unwrap_or(&named);
        if key.as_bytes() != named.as_bytes() {
            return Err("signed by a key other than the trusted one".into());
        }
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sig)
            .map_err(|_| "signature is not 64 hex bytes")?;
        key.verify(
            &message(self.seq, &self.hash, &self.time, &self.node),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| "signature does not verify".to_owned())
    }
}

pub(crate) fn parse_public_key(s: &str) -> Option<VerifyingKey> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(s, &mut b).ok()?;
    VerifyingKey::from_bytes(&b).ok()
}

/// Reads the signing key (hex of the 32-byte secret), creating it with
/// mode 0600 if missing. An existing key readable by others is refused.
pub(crate) fn load_or_create_key(path: &Path) -> Result<SigningKey, AuditError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| AuditError::Key {
                path: path.to_owned(),
                reason: format!("no randomness: {e}"),
            })?;
            let key = SigningKey::from_bytes(&secret);
            f.write_all(format!("{}\n", hex::encode(secret)).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| AuditError::io(path, "write signing key", e))?;
            sync_parent(path);
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let meta = std::fs::metadata(path)
                    .map_err(|e| AuditError::io(path, "stat signing key", e))?;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(AuditError::Key {
                        path: path.to_owned(),
                        reason: format!("mode {mode:o} lets others read it; chmod 600"),
                    });
                }
            }
            read_key(path)
        }
        Err(e) => Err(AuditError::io(path, "create signing key", e)),
    }
}

pub(crate) fn read_key(path: &Path) -> Result<SigningKey, AuditError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| AuditError::io(path, "read signing key", e))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| AuditError::Key {
        path: path.to_owned(),
        reason: "not 64 hex digits (a 32-byte Ed25519 secret)".into(),
    })?;
    Ok(SigningKey::from_bytes(&secret))
}

fn sync_parent(path: &Path) {
    // Best effort: makes the new file's directory entry durable.
    if let Some(dir) = path.parent().and_then(|p| File::open(p).ok()) {
        let _ = dir.sync_all();
    }
}

/// The append-only checkpoint file (JSON lines), fsynced per line.
pub(crate) struct CheckpointFile {
    path: PathBuf,
    file: File,
}

impl CheckpointFile {
    /// Opens for appending. A torn last line (a crash mid-append; never
    /// acknowledged) is cut off so the file stays parseable.
    pub(crate) fn open(path: &Path) -> Result<CheckpointFile, AuditError> {
        let e = |op| move |err| AuditError::io(path, op, err);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(e("open checkpoints"))?;
        let len = file.metadata().map_err(e("stat checkpoints"))?.len();
        let (start, tail) = read_tail(&mut file, len).map_err(e("read checkpoints"))?;
        if let Some(keep) = torn_line_cut(start, &tail) {
            file.set_len(keep).map_err(e("cut torn checkpoint line"))?;
        }
        sync_parent(path);
        Ok(CheckpointFile {
            path: path.to_owned(),
            file,
        })
    }

    pub(crate) fn append(&mut self, c: &Checkpoint) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(c)
            .map_err(|e| AuditError::io(&self.path, "encode checkpoint", e.into()))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| AuditError::io(&self.path, "append checkpoint", e))
    }
}

/// Where to cut a file whose last 8 KiB (`tail`, from offset `start`) do
/// not end in a newline: after the last newline; `None` when the file is
/// whole (or empty), or when no newline is in reach, which is left for
/// verify to report rather than guessed at.
fn torn_line_cut(start: u64, tail: &[u8]) -> Option<u64> {
    if tail.is_empty() || tail.ends_with(b"\n") {
        return None;
    }
    match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => Some(start + i as u64 + 1),
        None if start == 0 => Some(0),
        None => None,
    }
}

/// The last 8 KiB of the file: (offset of the buffer, bytes).
fn read_tail(file: &mut File, len: u64) -> std::io::Result<(u64, Vec<u8>)> {
    let start = len.saturating_sub(8192);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    Ok((start, buf))
}

/// The last complete line of the checkpoint file, parsed; `None` if the
/// file is missing or empty.
pub(crate) fn last_checkpoint(path: &Path) -> Result<Option<Checkpoint>, AuditError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(path, "open checkpoints", e)),
    };
    let len = file
        .metadata()
        .map_err(|e| AuditError::io(path, "stat checkpoints", e))?
        .len();
    let (_, tail) =
        read_tail(&mut file, len).map_err(|e| AuditError::io(path, "read checkpoints", e))?;
    let text = String::from_utf8_lossy(&tail);
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        None => Ok(None),
        Some(line) => {
            serde_json::from_str(line)
                .map(Some)
                .map_err(|e| AuditError::CheckpointMismatch {
                    path: path.to_owned(),
                    db_seq: 0,
                    checkpoint_seq: 0,
                    reason: format!("last checkpoint line does not parse: {e}"),
                })
        }
    }
}

/// Every line of the checkpoint file with its 1-based number.
pub(crate) fn read_lines(path: &Path) -> Result<Vec<(u64, String)>, AuditError> {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io(path, "read checkpoints", e)),
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i as u64 + 1, l.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_after_the_last_newline() {
        assert_eq!(torn_line_cut(0, b""), None, "an empty file is whole");
        assert_eq!(torn_line_cut(0, b"a\n"), None);
        assert_eq!(torn_line_cut(0, b"a\nbc"), Some(2));
        assert_eq!(torn_line_cut(100, b"a\nbc"), Some(102));
        assert_eq!(torn_line_cut(0, b"abc"), Some(0), "one torn line");
        assert_eq!(torn_line_cut(8192, b"abc"), None, "no newline in reach");
    }

    #[test]
    fn signatures_verify_and_catch_changes() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let c = Checkpoint::sign(
            &key,
            5,
            "ab".repeat(32),
            "2026-01-01T00:00:00.000Z".into(),
            "n1".into(),
        );
        assert_eq!(c.check(None), Ok(()));
        assert_eq!(c.check(Some(&key.verifying_key())), Ok(()));
        let mut changed = c.clone();
        changed.seq = 6;
        assert_eq!(changed.check(None), Err("signature does not verify".into()));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(c.check(Some(&other)).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let a = load_or_create_key(&path).expect("create");
        let b = load_or_create_key(&path).expect("reuse");
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(matches!(
                load_or_create_key(&path),
                Err(AuditError::Key { .. })
            ));
        }
    }

    #[test]
    fn torn_last_line_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"seq\":").expect("write");
        drop(CheckpointFile::open(&path).expect("open"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\":1}\n");
    }

    fn operation(e: AuditError) -> &'static str {
        match e {
            AuditError::Io { operation, .. } => operation,
            other => panic!("not an I/O error: {other:?}"),
        }
    }

    #[test]
    fn a_key_that_cannot_be_created_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "").expect("write");
        // Its parent is a file: creating fails, and not because it exists.
        let e = load_or_create_key(&file.join("k")).expect_err("cannot create");
        assert_eq!(operation(e), "create signing key");
        // Pair: a missing checkpoint file is no checkpoint; one that cannot
        // be opened for another reason is an error.
        assert_eq!(
            last_checkpoint(&dir.path().join("none")).expect("none"),
            None
        );
        let e = last_checkpoint(&file.join("c")).expect_err("not a directory");
        assert_eq!(operation(e), "open checkpoints");
        // The same for reading every line.
        assert_eq!(read_lines(&dir.path().join("none")).expect("none"), []);
        let e = read_lines(&file.join("c")).expect_err("not a directory");
        assert_eq!(operation(e), "read checkpoints");
        std::fs::write(&file, "a\n\n  \nb\n").expect("write");
        assert_eq!(
            read_lines(&file).expect("lines"),
            [(1, "a".to_owned()), (4, "b".to_owned())]
        );
    }

    #[test]
    fn a_torn_last_line_is_cut_only_when_its_start_is_known() {
        let dir = tempfile::tempdir().expect("tempdir");
        let len = |p: &Path| std::fs::metadata(p).expect("stat").len();
        // A file that is one torn line, shorter than the tail read: cut whole.
        let short = dir.path().join("short");
        std::fs::write(&short, b"{\"seq\":1").expect("write");
        CheckpointFile::open(&short).expect("open");
        assert_eq!(len(&short), 0);
        // A complete line then a torn one: the torn one goes.
        let mixed = dir.path().join("mixed");
        std::fs::write(&mixed, b"{}\n{\"seq\"").expect("write");
        CheckpointFile::open(&mixed).expect("open");
        assert_eq!(len(&mixed), 3);
        // No newline within the last 8 KiB of a longer file: left for
        // verify to report, not guessed at.
        let long = dir.path().join("long");
        std::fs::write(&long, vec![b'x'; 9000]).expect("write");
        CheckpointFile::open(&long).expect("open");
        assert_eq!(len(&long), 9000);
        // An intact file is untouched.
        let whole = dir.path().join("whole");
        std::fs::write(&whole, b"{}\n").expect("write");
        CheckpointFile::open(&whole).expect("open");
        assert_eq!(len(&whole), 3);
    }
}
