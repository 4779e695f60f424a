//! SIGKILL at random moments loses no acknowledged write and leaves no
//! half-written one. SQLite-specific: the file is the store.
//!
//! The parent re-runs this test binary as a child that writes in a loop and
//! prints one `ACK` line per committed write; then kills it, reopens the
//! database and checks every acknowledged write and every invariant.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use aifn_registry::{Registry, RegistryError, VersionAction};
use aifn_types::{Role, VersionState};

use crate::{NoAudit, fname, principal, target, tenant, upload};

const CHILD_ENV: &str = "AIFN_REGISTRY_CRASH_CHILD";
const ROUNDS: usize = 20;
const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

/// The child: writes until killed. Without the variable it does nothing.
#[test]
fn child_writes_until_killed() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let reg = Registry::open(&path, NoAudit).expect("child open");
    let author = principal("acme", Role::Author, "alice");
    let bob = principal("acme", Role::Approver, "bob");
    let seed = getrandom::u64().expect("random");
    for i in 0u64.. {
        let name = NAMES[(i % 3) as usize];
        let v = upload(&reg, &author, name, &format!("{seed}-{i}"));
        println!("ACK upload {name} {} {}", v.version, v.sha256);
        match i % 4 {
            0 | 1 => {
                reg.approve(&bob, &target(&v), &v.sha256, "crash test", false)
                    .expect("approve");
                println!("ACK approve {name} {}", v.version);
            }
            2 => {
                reg.reject(&bob, &target(&v), &v.sha256, "crash test")
                    .expect("reject");
                println!("ACK reject {name} {}", v.version);
            }
            _ => {}
        }
        if i % 9 == 8
            && let Ok(active) = reg.active(&author.tenant, &v.name)
        {
            reg.revoke(&bob, &target(&active), "crash test")
                .expect("revoke");
            println!("ACK revoke {name} {}", active.version);
        }
        if i % 5 == 0 {
            let key = reg
                .create_key(
                    &author.tenant,
                    Role::Agent,
                    &crate::subject("bot"),
                    &crate::subject("cli"),
                )
                .expect("key");
            println!("ACK key {}", key.secret);
        }
    }
}

fn verify(reg: &Registry, acks: &[String]) {
    let acme = tenant("acme");
    for line in acks {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["ACK", "upload", name, version, sha] => {
                let v = reg
                    .get_version(&acme, &fname(name), version.parse().expect("n"))
                    .expect(line);
                assert_eq!(v.sha256, *sha, "{line}");
                assert_eq!(
                    reg.module_bytes(sha).expect("module").len() as u64,
                    v.report.module.size_bytes
                );
            }
            [
                "ACK",
                action @ ("approve" | "reject" | "revoke"),
                name,
                version,
            ] => {
                let v = reg
                    .get_version(&acme, &fname(name), version.parse().expect("n"))
                    .expect(line);
                let kind = match *action {
                    "approve" => VersionAction::Approve,
                    "reject" => VersionAction::Reject,
                    _ => VersionAction::Revoke,
                };
                assert!(
                    v.decisions
                        .iter()
                        .any(|d| d.action == kind && d.sha256 == v.sha256),
                    "{line}: {v:?}"
                );
                let allowed: &[VersionState] = match kind {
                    VersionAction::Approve => &[
                        VersionState::Active,
                        VersionState::Superseded,
                        VersionState::Revoked,
                    ],
                    VersionAction::Reject => &[VersionState::Rejected],
                    _ => &[VersionState::Revoked],
                };
                assert!(allowed.contains(&v.state), "{line}: state {}", v.state);
            }
            ["ACK", "key", secret] => {
                let p = reg.authenticate(secret).expect(line);
                assert_eq!((p.tenant.as_str(), p.role), ("acme", Role::Agent));
            }
            _ => panic!("unexpected ack {line:?}"),
        }
    }
    for name in NAMES {
        match reg.active(&acme, &fname(name)) {
            Ok(v) => assert_eq!(v.state, VersionState::Active),
            Err(RegistryError::NotActive { .. } | RegistryError::NotFound { .. }) => {}
            Err(e) => panic!("{name}: {e:?}"),
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_write() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return; // we are the child
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.sqlite3");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked = Vec::new();
    let mut killed_mid_run = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash::child_writes_until_killed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).expect("read child");
            out
        });
        let delay = 50 + getrandom::u64().expect("random") % 400;
        std::thread::sleep(Duration::from_millis(delay));
        // std's kill is SIGKILL on Unix: no destructor, no flush, no commit.
        child.kill().expect("kill");
        let status = child.wait().expect("wait");
        if status.code().is_none() {
            killed_mid_run += 1;
        }
        let out = reader.join().expect("reader");
        // A line is acknowledged only when whole; a torn last line is not.
        let complete = match out.rfind('\n') {
            Some(end) => &out[..end],
            None => "",
        };
        acked.extend(
            complete
                .lines()
                .filter(|l| l.starts_with("ACK "))
                .map(str::to_owned),
        );

        let reg = Registry::open(&path, NoAudit)
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e:?}"));
        verify(&reg, &acked);
        drop(reg);
        let conn = rusqlite::Connection::open(&path).expect("raw");
        crate::storage::check_invariants(&conn);
    }
    eprintln!("crash: {} acks over {ROUNDS} rounds", acked.len());
    assert_eq!(killed_mid_run, ROUNDS, "every child died by the signal");
    assert!(
        acked.len() >= ROUNDS,
        "too few writes acknowledged to mean anything: {}",
        acked.len()
    );
    let uploads = acked.iter().filter(|l| l.starts_with("ACK upload")).count();
    let approvals = acked
        .iter()
        .filter(|l| l.starts_with("ACK approve"))
        .count();
    assert!(
        uploads > 0 && approvals > 0,
        "uploads {uploads}, approvals {approvals}"
    );
}
