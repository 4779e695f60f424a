//! A node on PostgreSQL over verified TLS with a client certificate, the
//! only way the test server takes TCP connections: every connection the
//! node opens (the registry's pools, its listener, the audit writer) is
//! TLS, and a root that did not sign the server's certificate is refused
//! before anything runs.

use aifn_test_support::PostgresServer;
use serde_json::json;

use super::{Node, keys, upload_echo, verify};
use crate::*;

#[test]
fn a_node_over_verified_tls_uses_tls_for_every_connection_and_a_wrong_root_is_refused() {
    let pg = PostgresServer::start_tls();
    let t = pg.tls().expect("TLS files");
    let query = |root: &std::path::Path| {
        format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            root.display(),
            t.client_cert.display(),
            t.client_key.display()
        )
    };
    let url = pg.tcp_database("localhost", &query(&t.ca));
    let db = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .expect("db")
        .to_owned();
    let k = keys(&url);
    let node = Node::start("tls-1", &url);
    let (code, _, err) = node.cli(&k.admin, &["policy", "set", "hr-bot", "--allow", "echo"]);
    assert_eq!(code, 0, "{err}");
    let version = upload_echo(&node, &k);
    let (code, _, err) = node.cli(
        &k.approver,
        &["approve", &format!("echo@{version}"), "--notes", "over TLS"],
    );
    assert_eq!(code, 0, "{err}");
    let (status, body) = node.invoke(&k.agent, json!({"tls": true}));
    assert_eq!(
        (status, &body["output"]),
        (200, &json!({"tls": true})),
        "{body}"
    );

    // The node's sessions, seen by the server (psql's own, over the
    // socket, left out): all TLS, and at least the pool, the listener and
    // the audit writer.
    let (ok, counts) = pg.sql(
        &db,
        "SELECT count(*) FILTER (WHERE s.ssl) || ' ' || count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
    );
    assert!(ok, "{counts}");
    let (tls, plain) = counts.trim().split_once(' ').expect("two counts");
    assert_eq!(plain, "0", "plaintext sessions: {counts}");
    assert!(
        tls.parse::<u32>().expect("count") >= 3,
        "TLS sessions: {counts}"
    );
    let (code, out) = verify(node.data.path(), &url);
    assert_eq!(code, 0, "{out}");
    drop(node);

    // A root that did not sign the server: refused at once, saying why.
    let wrong = pg.tcp_database("localhost", &query(&t.other_ca));
    let (code, _, err) = cli(&["migrate", "--database", &wrong], &[]);
    assert_ne!(code, 0, "migrate over an untrusted certificate succeeded");
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
}
