//! Verified TLS, the pair each time: the setting that connects, and the
//! one that must not (wrong root, wrong name, no TLS, no client
//! certificate), each refused with a reason that names it.

use std::sync::OnceLock;

use aifn_postgres::{Connector, SslMode, unreachable};
use aifn_test_support::{PostgresServer, TlsFiles};

fn server() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(PostgresServer::start_tls)
}

fn files() -> &'static TlsFiles {
    server().tls().expect("a TLS server")
}

/// The query of a URL with `sslmode`, a root file and the client pair.
fn query(mode: &str, root: &std::path::Path) -> String {
    let t = files();
    format!(
        "sslmode={mode}&sslrootcert={}&sslcert={}&sslkey={}",
        root.display(),
        t.client_cert.display(),
        t.client_key.display()
    )
}

/// Connects and reads this session's row of `pg_stat_ssl`; a failure to
/// connect is its cause chain, and whether it counts as "not there" (no
/// SQLSTATE: the client gave up) rather than a refusal by the server.
fn connect(url: &str) -> Result<(bool, String), (String, bool)> {
    let connector = Connector::parse(url).map_err(|e| (chain(&e), false))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = connector
            .connect()
            .await
            .map_err(|e| (chain(&e), unreachable(&e)))?;
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT ssl, coalesce(client_dn, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| (chain(&e), unreachable(&e)))?;
        Ok((row.get(0), row.get(1)))
    })
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[test]
fn verify_full_with_the_servers_ca_and_a_client_certificate_is_tls_with_that_certificate() {
    let url = server().tcp_database("localhost", &query("verify-full", &files().ca));
    assert_eq!(
        Connector::parse(&url).expect("parse").ssl_mode(),
        SslMode::VerifyFull
    );
    let (ssl, dn) = connect(&url).expect("connects");
    assert!(ssl, "the session is TLS");
    assert_eq!(dn, "/CN=postgres");
}

#[test]
fn verify_full_refuses_a_certificate_for_another_name_and_verify_ca_takes_it() {
    // The server's certificate names localhost only.
    let url = server().tcp_database("127.0.0.1", &query("verify-full", &files().ca));
    let (err, gone) = connect(&url).expect_err("wrong name");
    assert!(err.contains("not valid for name"), "{err}");
    assert!(gone, "refused by the client: no SQLSTATE");
    let url = server().tcp_database("127.0.0.1", &query("verify-ca", &files().ca));
    assert!(connect(&url).expect("the chain is enough").0);
}

#[test]
fn a_root_that_did_not_sign_the_server_is_refused_in_every_tls_mode_without_falling_back() {
    // require and prefer verify as verify-full does; prefer does not fall
    // back to plaintext after a failed verification.
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let url = server().tcp_database("localhost", &query(mode, &files().other_ca));
        let (err, gone) = connect(&url).expect_err(mode);
        assert!(gone, "{mode}: refused by the client");
        assert!(
            err.contains("UnknownIssuer") || err.contains("unknown issuer"),
            "{mode}: {err}"
        );
    }
    let url = server().tcp_database("localhost", &query("require", &files().ca));
    assert!(connect(&url).expect("the right root").0);
}

#[test]
fn plaintext_and_tls_without_a_client_certificate_are_refused_by_the_server() {
    let t = files();
    let url = server().tcp_database(
        "localhost",
        &format!("sslmode=disable&sslrootcert={}", t.ca.display()),
    );
    let (err, gone) = connect(&url).expect_err("plaintext");
    assert!(err.contains("no encryption"), "{err}");
    assert!(!gone, "the server's refusal (28000) is not 'not there'");
    let url = server().tcp_database(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", t.ca.display()),
    );
    let (err, gone) = connect(&url).expect_err("no client certificate");
    assert!(err.contains("certificate"), "{err}");
    assert!(!gone, "{err}");
}

#[test]
fn require_over_a_unix_socket_fails_instead_of_going_plaintext_and_prefer_connects() {
    let socket = server().database();
    let err = connect(&format!(
        "{socket}?sslmode=require&sslrootcert={}",
        files().ca.display()
    ))
    .expect_err("no TLS on a socket")
    .0;
    assert!(err.contains("does not support TLS"), "{err}");
    let (ssl, _) = connect(&format!("{socket}?sslmode=prefer")).expect("plaintext socket");
    assert!(!ssl);
}
