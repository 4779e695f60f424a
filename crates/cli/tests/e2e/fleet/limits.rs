//! Limits of a fleet: budgets counted in the shared database, the
//! per-tenant limits split between the nodes.

use serde_json::json;

use super::{Keys, Node, fleet_key_in, keys, upload_echo};
use aifn_test_support::postgres_url;

#[test]
fn budgets_and_tenant_limits_hold_for_the_fleet_as_a_whole() {
    let url = postgres_url();
    let k = keys(&url);
    // Tenant limits are the fleet's, each of two nodes holding half: a
    // burst of 8 (and no refill to speak of) is 4 per node.
    let tenant = "fleet_nodes = 2\n[service.tenant]\nburst = 8\nrate_per_second = 0.001\n";
    let nodes = [
        Node::start_with("node-1", &url, tenant),
        Node::start_with("node-2", &url, tenant),
    ];
    let (code, _, err) = nodes[0].cli(
        &k.admin,
        &[
            "policy",
            "set",
            "hr-bot",
            "--allow",
            "echo",
            "--calls-per-hour",
            "5",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v = upload_echo(&nodes[0], &k);
    let (code, _, err) = nodes[1].cli(
        &k.approver,
        &["approve", &format!("echo@{v}"), "--notes", "ok"],
    );
    assert_eq!(code, 0, "{err}");

    // The agent's budget of 5 calls an hour is counted in the database:
    // 5 calls succeed across both nodes, whichever node they reach.
    let mut verdicts = Vec::new();
    for i in 0..8 {
        let (status, body) = nodes[i % 2].invoke(&k.agent, json!({"i": i}));
        verdicts.push((
            status,
            body["error"]["kind"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let ok = verdicts.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 5, "{verdicts:?}");
    assert!(
        verdicts[5..]
            .iter()
            .all(|(s, k)| *s == 429 && k == "rate_limited"),
        "{verdicts:?}"
    );
    let (status, usage) = nodes[1].get(&k.admin, "/v1/agents/hr-bot/usage");
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["agent"]["calls"], 5, "{usage}");
    assert!(
        usage["agent"]["fuel"].as_u64().expect("fuel") > 0,
        "{usage}"
    );

    // Without a budget, a tenant's burst of 8 holds across the fleet: 4 on
    // each node. Another tenant (acme's calls spent its tokens), set up
    // through a third node, since uploads and approvals spend them too.
    let other = fleet_key_in(&url, "globex", "agent", "fin-bot");
    let g_admin = fleet_key_in(&url, "globex", "admin", "gail");
    let g_author = fleet_key_in(&url, "globex", "author", "gina");
    let g_approver = fleet_key_in(&url, "globex", "approver", "gus");
    let setup = Node::start("node-3", &url);
    let (code, _, err) = setup.cli(&g_admin, &["policy", "set", "fin-bot", "--allow", "echo"]);
    assert_eq!(code, 0, "{err}");
    let g = Keys {
        author: g_author,
        approver: g_approver.clone(),
        agent: other.clone(),
        admin: g_admin,
    };
    let v = upload_echo(&nodes[0], &g);
    let (code, _, err) = nodes[1].cli(
        &g_approver,
        &["approve", &format!("echo@{v}"), "--notes", "ok"],
    );
    assert_eq!(code, 0, "{err}");
    let mut per_node = [0, 0];
    let mut seen = Vec::new();
    for i in 0..20 {
        let (status, body) = nodes[i % 2].invoke(&other, json!({"i": i}));
        if status == 200 {
            per_node[i % 2] += 1;
        }
        seen.push((status, body["error"]["message"].clone()));
    }
    assert_eq!(
        per_node,
        [4, 4],
        "each node admits its half of the burst: {seen:?}"
    );
}
