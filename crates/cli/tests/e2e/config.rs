//! `aifn serve --config`: a zero count or timeout is refused at start-up
//! with the setting's name; the same file with 1 serves.

use crate::{Server, cli, http};

#[test]
fn a_zero_timeout_is_refused_at_start_up_and_one_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("aifn.toml");
    let config_arg = config.to_str().expect("utf-8");

    std::fs::write(&config, "[server]\nheader_timeout_secs = 0\n").expect("write");
    let data_arg = data.to_str().expect("utf-8");
    let serve = [
        "serve",
        "--data-dir",
        data_arg,
        "--listen",
        "127.0.0.1:0",
        "--config",
        config_arg,
    ];
    let (code, _, err) = cli(&serve, &[]);
    assert_ne!(code, 0, "a zero timeout must not serve");
    assert!(
        err.contains("[server] header_timeout_secs must be at least 1"),
        "{err}"
    );

    std::fs::write(&config, "[server]\nheader_timeout_secs = 1\n").expect("write");
    let server = Server::start(&data, &["--config", config_arg]);
    let (status, _) = http("GET", &format!("{}/healthz", server.url()), None, None);
    assert_eq!(status, 200);
    assert!(server.stop().success());
}
