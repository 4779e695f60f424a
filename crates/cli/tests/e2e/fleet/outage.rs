//! The database goes away during traffic: calls fail closed with 503,
//! `/readyz` says so, and everything recovers by itself when it returns.

use std::time::Duration;

use aifn_test_support::PostgresServer;
use serde_json::{Value, json};

use super::{Node, eventually, keys, recorded, upload_echo, verify};
use crate::http;

#[test]
fn a_database_that_goes_away_fails_calls_closed_and_they_recover() {
    let pg = PostgresServer::start();
    let url = pg.database();
    let k = keys(&url);
    let node = Node::start("node-1", &url);
    let (code, _, err) = node.cli(&k.admin, &["policy", "set", "hr-bot", "--allow", "echo"]);
    assert_eq!(code, 0, "{err}");
    let v = upload_echo(&node, &k);
    let (code, _, err) = node.cli(
        &k.approver,
        &["approve", &format!("echo@{v}"), "--notes", "ok"],
    );
    assert_eq!(code, 0, "{err}");
    let mut acked = Vec::new();
    let mut call = |input: Value| {
        let (status, body) = node.invoke(&k.agent, input);
        if status == 200 {
            acked.push(body["execution_id"].as_str().expect("id").to_owned());
        }
        (status, body)
    };
    assert_eq!(call(json!({"before": true})).0, 200);

    pg.stop();
    // Nothing runs while the records could not be kept: 503, never 200.
    for i in 0..5 {
        let (status, body) = call(json!({"down": i}));
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["kind"], "unavailable", "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("postgres") && !text.contains("tokio"),
            "leaks: {text}"
        );
    }
    let (status, _) = http("GET", &format!("{}/readyz", node.server.url()), None, None);
    assert_eq!(status, 503, "readyz while the database is down");
    let (status, _) = http("GET", &format!("{}/healthz", node.server.url()), None, None);
    assert_eq!(status, 200, "the process itself is alive");

    pg.resume();
    eventually(Duration::from_secs(20), "calls succeed again", || {
        call(json!({"after": true})).0 == 200
    });
    let (status, _) = http("GET", &format!("{}/readyz", node.server.url()), None, None);
    assert_eq!(status, 200, "readyz after the database returned");
    let have = recorded(&node, &k.admin);
    assert!(
        acked.iter().all(|id| have.contains(id)),
        "every acknowledged call is recorded"
    );
    let data = node.data.path().to_owned();
    assert!(node.server.stop().success());
    let (code, out) = verify(&data, &url);
    assert_eq!(code, 0, "{out}");
}
