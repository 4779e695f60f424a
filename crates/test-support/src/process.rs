//! The test process's own resources, read from `/proc/self` (Linux), to
//! check that they return to a baseline, and a test re-run alone in a
//! child process, where other tests cannot disturb those numbers.

use std::fs;
use std::process::Command;

/// Resident memory in bytes (`/proc/self/statm`, 4 KiB pages).
pub fn rss_bytes() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .expect("rss")
        .parse()
        .expect("number");
    pages * 4096
}

/// Open file descriptors.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Threads.
pub fn threads() -> usize {
    fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// Runs the test `path` (`module::name`) of this test binary alone in a
/// child process, with `env` set (the variable that tells the test it is
/// the child among them); asserts that it ran and passed and returns its
/// output, stdout then stderr.
#[track_caller]
pub fn run_alone(path: &str, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", path, "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .output()
        .expect("child runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probes_see_this_process() {
        // Other tests run beside this one: only lower bounds are stable.
        assert!(rss_bytes() > 0);
        assert!(open_fds() >= 3, "stdin, stdout and stderr at least");
        assert!(threads() >= 1);
    }

    #[test]
    fn a_test_runs_alone_and_a_missing_one_fails() {
        if std::env::var_os("AIFN_TEST_SUPPORT_CHILD").is_some() {
            return;
        }
        let path = "process::tests::a_test_runs_alone_and_a_missing_one_fails";
        let text = run_alone(path, &[("AIFN_TEST_SUPPORT_CHILD", "1")]);
        assert!(text.contains(path), "{text}");
        let missing = std::panic::catch_unwind(|| run_alone("process::tests::nope", &[]));
        assert!(missing.is_err(), "0 tests ran, and that is a failure");
    }
}
