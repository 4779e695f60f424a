//! Writers on two nodes of one PostgreSQL database: the write lock
//! serializes them, so the state machine holds across nodes as it does
//! for two processes on one SQLite file.

use std::sync::{Arc, Barrier};

use aifn_registry::{Registry, RegistryError, RegistryOptions, Upload};
use aifn_test_support::{postgres_url, psql_at};
use aifn_types::{Limits, Role, VersionState};

use super::{check_invariants, scalar};
use crate::{
    NoAudit, fname, manifest, module, postgres_fixture, principal, report_for, target, tenant,
    upload,
};

/// Two nodes approve two pending versions of one function at the same
/// moment, round after round: each round ends with exactly one active.
#[test]
fn two_nodes_approving_two_versions_at_once_leave_exactly_one_active() {
    let f = postgres_fixture();
    let url = f.url.clone().expect("postgres");
    let second = f.reopen(NoAudit);
    let nodes = [&f.reg, &second];
    let author = principal("acme", Role::Author, "alice");
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let pair = [
            upload(&f.reg, &author, "calc", &format!("{round}-a")),
            upload(&second, &author, "calc", &format!("{round}-b")),
        ];
        let barrier = Barrier::new(2);
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .zip(nodes)
                .enumerate()
                .map(|(i, (v, node))| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let bob = principal("acme", Role::Approver, &format!("bob{i}"));
                        barrier.wait();
                        node.approve(&bob, &target(v), &v.sha256, "race", false)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(
            results.iter().all(Result::is_ok),
            "round {round}: {results:?}"
        );
        let states: Vec<_> = pair
            .iter()
            .map(|v| {
                f.reg
                    .get_version(&v.tenant, &v.name, v.version)
                    .expect("get")
                    .state
            })
            .collect();
        assert!(
            states == [VersionState::Active, VersionState::Superseded]
                || states == [VersionState::Superseded, VersionState::Active],
            "round {round}: {states:?}"
        );
        let active = second
            .active(&tenant("acme"), &fname("calc"))
            .expect("active");
        assert!(pair.iter().any(|v| v.version == active.version));
    }
    let detail = f
        .reg
        .get_function(&tenant("acme"), &fname("calc"))
        .expect("get");
    assert_eq!(detail.summary.counts.active, 1);
    assert_eq!(detail.summary.counts.superseded as usize, 2 * ROUNDS - 1);
    check_invariants(&url);
}

/// Uploads, approvals and revocations racing on two nodes: version numbers
/// stay consecutive, at most one version is ever active, every state
/// change has its decision.
#[test]
fn writers_racing_on_two_nodes_keep_every_invariant() {
    let f = postgres_fixture();
    let url = f.url.clone().expect("postgres");
    let nodes = [Arc::new(f.reopen(NoAudit)), Arc::new(f.reopen(NoAudit))];
    const PER_NODE: usize = 12;
    let barrier = Barrier::new(nodes.len());
    std::thread::scope(|s| {
        for (n, node) in nodes.iter().enumerate() {
            let barrier = &barrier;
            s.spawn(move || {
                let author = principal("acme", Role::Author, "alice");
                let bob = principal("acme", Role::Approver, &format!("bob{n}"));
                barrier.wait();
                for i in 0..PER_NODE {
                    let v = upload(node, &author, "calc", &format!("{n}-{i}"));
                    node.approve(&bob, &target(&v), &v.sha256, "race", false)
                        .expect("approve");
                    if i % 4 == 3 {
                        // The other node may have superseded it already.
                        match node.revoke(&bob, &target(&v), "stop") {
                            Ok(_) | Err(RegistryError::IllegalTransition { .. }) => {}
                            Err(e) => panic!("revoke: {e:?}"),
                        }
                    }
                }
            });
        }
    });
    let detail = f
        .reg
        .get_function(&tenant("acme"), &fname("calc"))
        .expect("get");
    assert_eq!(detail.summary.latest_version as usize, 2 * PER_NODE);
    assert!(
        detail.summary.counts.active <= 1,
        "{:?}",
        detail.summary.counts
    );
    check_invariants(&url);
}

/// The registry's write lock, a PostgreSQL advisory lock (0x6169666e_00000001):
/// what serializes writes across nodes, as `BEGIN IMMEDIATE` does on SQLite.
const WRITE_LOCK: i64 = 7_019_254_116_866_064_385;

/// A write waits for another holder of the write lock, and gives up after
/// the busy timeout having stored nothing; once the lock is free it goes
/// through.
#[test]
fn a_write_waits_for_the_write_lock_and_times_out_cleanly() {
    let url = postgres_url();
    let options = RegistryOptions {
        busy_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let reg = Registry::open_postgres(&url, &options, NoAudit).expect("open");
    let author = principal("acme", Role::Author, "alice");
    upload(&reg, &author, "calc", "first");
    // Another "node" holds the lock until it is terminated below.
    let holder = std::thread::spawn({
        let url = url.clone();
        move || {
            psql_at(
                &url,
                &format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK}); SELECT pg_sleep(60); COMMIT"
                ),
            )
        }
    });
    let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while scalar(&url, held) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the holder never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let bytes = module("second");
    let up = Upload {
        name: fname("calc"),
        manifest: manifest("d"),
        module: &bytes,
        report: report_for(&bytes),
        tests: Vec::new(),
        source: None,
        runs_on: None,
        expected_version: None,
    };
    let started = std::time::Instant::now();
    let err = reg
        .upload(&author, up, &Limits::default())
        .expect_err("the lock is held");
    assert!(
        matches!(
            err,
            RegistryError::Storage {
                op: "begin write",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    // The holder's session ends (as a node that died): the lock is free.
    let (ok, out) = psql_at(
        &url,
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
    assert!(ok, "{out}");
    let (ok, _) = holder.join().expect("holder");
    assert!(!ok, "the holder was terminated");
    assert_eq!(
        reg.next_version(&tenant("acme"), &fname("calc"))
            .expect("next"),
        2
    );
    assert_eq!(upload(&reg, &author, "calc", "second").version, 2);
    check_invariants(&url);
}
