use std::collections::BTreeSet;
use std::time::Duration;

use aifn_audit::{
    AuditError, AuditQuery, AuditRecord, Captured, SecurityEvent, SecurityQuery, SecurityReason,
    Stream,
};
use aifn_types::{OutcomeKind, RegistryActionKind, TenantId};
use serde_json::{Value, json};

use crate::common::*;

fn seqs(page: &aifn_audit::AuditPage) -> Vec<u64> {
    page.entries.iter().map(|e| e.seq).collect()
}

#[test]
fn a_query_never_returns_another_tenants_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let mut a_seqs = Vec::new();
    for i in 0..6 {
        a_seqs.push(
            log.record_execution(exec("tenant-a", "f", i), None)
                .expect("a")
                .seq,
        );
        log.record_execution(exec("tenant-b", "f", i), None)
            .expect("b");
    }
    a_seqs.push(
        log.record_registry(&registry("tenant-a", RegistryActionKind::Upload, "f@1"))
            .expect("reg")
            .seq,
    );
    log.record_registry(&registry("tenant-b", RegistryActionKind::Upload, "f@1"))
        .expect("reg");

    let page = log
        .query(&tenant("tenant-a"), &AuditQuery::default())
        .expect("query");
    a_seqs.reverse();
    assert_eq!(seqs(&page), a_seqs);
    assert!(
        page.entries
            .iter()
            .all(|e| e.record.tenant_id() == Some("tenant-a"))
    );
    assert_eq!(page.next_before_seq, None);

    let b = log
        .query(&tenant("tenant-b"), &AuditQuery::default())
        .expect("query");
    assert_eq!(b.entries.len(), 7);
    assert!(
        b.entries
            .iter()
            .all(|e| e.record.tenant_id() == Some("tenant-b"))
    );
    assert!(
        log.query(&tenant("tenant-c"), &AuditQuery::default())
            .expect("query")
            .entries
            .is_empty()
    );

    // Security records are host-level: never in a tenant's view.
    log.record_security(SecurityEvent {
        time: t0().into(),
        route: "/v1/functions".into(),
        reason: SecurityReason::RevokedKey,
        remote_addr: Some("192.0.2.1".into()),
        node: String::new(),
    })
    .expect("security");
    assert_eq!(
        log.query(&tenant("tenant-a"), &AuditQuery::default())
            .expect("query")
            .entries
            .len(),
        7
    );

    // A query without a tenant cannot be written: the tenant is a
    // validated id, passed beside the filter.
    assert!(TenantId::new("").is_err());
    let q = AuditQuery {
        stream: Some(Stream::Security),
        ..AuditQuery::default()
    };
    assert!(matches!(
        log.query(&tenant("tenant-a"), &q),
        Err(AuditError::InvalidQuery { .. })
    ));
}

#[test]
fn an_edited_tenant_column_is_an_error_not_a_leak() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    log.record_execution(exec("tenant-a", "f", 1), None)
        .expect("a");
    let b = log
        .record_execution(exec("tenant-b", "f", 1), None)
        .expect("b");
    db(&cfg)
        .execute(
            "UPDATE audit_entries SET tenant_id = 'tenant-a' WHERE seq = ?1",
            &[&(b.seq as i64)],
        )
        .expect("edit");
    match log.query(&tenant("tenant-a"), &AuditQuery::default()) {
        Err(AuditError::Corrupt { seq, .. }) => assert_eq!(seq, b.seq),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn filters_select_exactly_the_matching_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    for i in 0..12 {
        let f = if i < 6 { "alpha" } else { "beta" };
        log.record_execution(exec("acme", f, i), None)
            .expect("record");
    }
    let upload = log
        .record_registry(&registry("acme", RegistryActionKind::Upload, "beta@2"))
        .expect("reg");
    log.record_registry(&registry("acme", RegistryActionKind::KeyCreated, "key-1"))
        .expect("reg");

    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        seqs(&log.query(&tenant("acme"), &q).expect("query"))
    };
    // Execution i has seq i + 1.
    assert_eq!(
        q(&|q| q.function = Some("alpha".into())),
        [6, 5, 4, 3, 2, 1]
    );
    assert_eq!(
        q(&|q| q.function = Some("beta".into())),
        [upload.seq, 12, 11, 10, 9, 8, 7]
    );
    assert_eq!(
        q(&|q| q.outcome = Some(OutcomeKind::FuelExhausted)),
        [10, 7, 4, 1]
    );
    assert_eq!(
        q(&|q| q.agent_id = Some("agent-1".into())),
        [12, 10, 8, 6, 4, 2]
    );
    assert_eq!(q(&|q| q.stream = Some(Stream::Registry)), [14, 13]);
    assert_eq!(q(&|q| q.user_id = Some("nobody".into())), Vec::<u64>::new());
    assert_eq!(
        q(&|q| {
            q.stream = Some(Stream::Execution);
            q.since = Some((t0() + Duration::from_secs(5)).into());
            q.until = Some((t0() + Duration::from_secs(8)).into());
        }),
        [8, 7, 6]
    );
}

#[test]
fn pages_are_newest_first_and_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    fill(&log, "acme", 120);
    fill(&log, "other", 5);

    let mut q = AuditQuery::default();
    let first = log.query(&tenant("acme"), &q).expect("page 1");
    assert_eq!(seqs(&first), (71..=120).rev().collect::<Vec<_>>());
    assert_eq!(first.next_before_seq, Some(71));
    q.before_seq = first.next_before_seq;
    let second = log.query(&tenant("acme"), &q).expect("page 2");
    assert_eq!(seqs(&second), (21..=70).rev().collect::<Vec<_>>());
    assert_eq!(second.next_before_seq, Some(21));
    q.before_seq = second.next_before_seq;
    let third = log.query(&tenant("acme"), &q).expect("page 3");
    assert_eq!(seqs(&third), (1..=20).rev().collect::<Vec<_>>());
    assert_eq!(third.next_before_seq, None);

    let mut q = AuditQuery {
        limit: Some(0),
        ..AuditQuery::default()
    };
    assert_eq!(
        seqs(&log.query(&tenant("acme"), &q).expect("clamped")),
        [120]
    );
    q.limit = Some(5000);
    assert_eq!(
        log.query(&tenant("acme"), &q)
            .expect("clamped")
            .entries
            .len(),
        120
    );
}

#[test]
fn jsonl_export_uses_the_api_field_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let mut rec = exec("acme", "leave_days", 0);
    rec.time = (t0() + Duration::from_millis(123)).into();
    rec.outcome = OutcomeKind::FunctionError;
    rec.error_message = Some("no such employee".into());
    let a = log.record_execution(rec, None).expect("record");
    log.record_registry(&registry(
        "acme",
        RegistryActionKind::Approve,
        "leave_days@1",
    ))
    .expect("reg");
    log.record_execution(exec("other", "leave_days", 1), None)
        .expect("other tenant");

    let mut out = Vec::new();
    let n = log
        .export_jsonl(&tenant("acme"), &AuditQuery::default(), &mut out)
        .expect("export");
    assert_eq!(n, 2);
    let text = String::from_utf8(out).expect("utf8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 2);

    let keys = |v: &Value| {
        v.as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    let expected: BTreeSet<String> = [
        "execution_id",
        "time",
        "tenant_id",
        "agent_id",
        "user_id",
        "function",
        "version",
        "module_sha256",
        "outcome",
        "error_message",
        "duration_ms",
        "fuel_used",
        "memory_peak_bytes",
        "input_sha256",
        "input_size",
        "output_sha256",
        "output_size",
        "input_summary",
        "node",
        "seq",
        "stream",
        "hash",
        "prev_hash",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(&lines[0]), expected);
    let e = &lines[0];
    assert_eq!(e["seq"], 1);
    assert_eq!(e["stream"], "execution");
    assert_eq!(e["hash"], a.hash);
    assert_eq!(e["prev_hash"], "00".repeat(32));
    assert_eq!(e["time"], "2026-11-22T10:00:00.123Z");
    assert_eq!(e["outcome"], "function_error");
    assert_eq!(e["error_message"], "no such employee");
    assert_eq!(e["version"], 1);
    assert_eq!(e["duration_ms"], 1.5);
    assert_eq!(e["node"], "node-1");
    assert_eq!(
        e["input_summary"],
        json!({"days": "number", "name": "string"})
    );
    assert!(!text.contains("secret-0"), "no input values in the log");

    let expected_reg: BTreeSet<String> = [
        "time",
        "tenant_id",
        "actor",
        "action",
        "target",
        "sha256",
        "notes",
        "node",
        "seq",
        "stream",
        "hash",
        "prev_hash",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(&lines[1]), expected_reg);
    assert_eq!(lines[1]["action"], "approve");
    assert_eq!(lines[1]["prev_hash"], a.hash);

    // A line minus seq/hash/prev_hash is the chained body.
    let mut body = lines[1].clone();
    let obj = body.as_object_mut().expect("object");
    let hash = obj.remove("hash").expect("hash");
    obj.remove("seq");
    obj.remove("prev_hash");
    let raw = text.lines().nth(1).expect("line 2");
    let body_text = raw
        .replace(&format!(",\"hash\":{hash}"), "")
        .replace(&format!(",\"prev_hash\":\"{}\"", a.hash), "")
        .replace(",\"seq\":2", "");
    assert_eq!(
        serde_json::from_str::<Value>(&body_text).expect("body"),
        body
    );
    assert_eq!(chain_hash(&a.hash, 2, &body_text), hash);
}

#[test]
fn the_security_stream_is_queried_separately_and_never_holds_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    log.record_execution(exec("acme", "f", 0), None)
        .expect("record");
    let s = log
        .record_security(SecurityEvent {
            time: t0().into(),
            route: "/v1/functions/f/invoke?api_key=sk_live_abcdef".into(),
            reason: SecurityReason::UnknownKey,
            remote_addr: Some("198.51.100.7:4242".into()),
            node: String::new(),
        })
        .expect("security");
    let page = log
        .query_security(&SecurityQuery::default())
        .expect("query");
    assert_eq!(seqs(&page), [s.seq]);
    match &page.entries[0].record {
        AuditRecord::Security(ev) => {
            assert_eq!(ev.route, "/v1/functions/f/invoke");
            assert_eq!(ev.reason, SecurityReason::UnknownKey);
            assert_eq!(ev.remote_addr.as_deref(), Some("198.51.100.7:4242"));
            assert_eq!(ev.node, "node-1");
        }
        other => panic!("expected a security record, got {other:?}"),
    }
    let mut out = Vec::new();
    assert_eq!(
        log.export_security_jsonl(&SecurityQuery::default(), &mut out)
            .expect("export"),
        1
    );
    let line: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(line["reason"], "unknown_key");
    assert_eq!(line["stream"], "security");
    let all = if on_postgres() {
        "SELECT string_agg(body, ',' ORDER BY seq) FROM audit_entries"
    } else {
        "SELECT group_concat(body) FROM audit_entries"
    };
    let raw = db(&cfg).one(all, &[]).expect("raw");
    assert!(!raw.contains("sk_live"));
}

#[test]
fn captured_payloads_are_kept_apart_and_per_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let input = br#"{"days":3,"name":"secret-3"}"#.to_vec();
    let mut rec = exec("acme", "f", 3);
    rec.time = (std::time::SystemTime::now()).into();
    rec.set_input(&input);
    let id = rec.execution_id.clone();
    let sha = rec.input_sha256.clone();
    let a = log
        .record_execution(
            rec,
            Some(Captured {
                input: input.clone(),
                output: Some(b"{}".to_vec()),
                retention_days: 7,
            }),
        )
        .expect("record");
    let got = log.captured("acme", &id).expect("read").expect("captured");
    assert_eq!(
        (got.seq, got.input.clone(), got.output.clone()),
        (a.seq, input.clone(), Some(b"{}".to_vec()))
    );
    assert_eq!(
        sha,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&got.input))
    );
    assert_eq!(log.captured("other", &id).expect("read"), None);
    // The chained body holds the hash only.
    let body = db(&cfg)
        .one("SELECT body FROM audit_entries WHERE seq = 1", &[])
        .expect("body");
    assert!(!body.contains("secret-3") && body.contains(&sha));
}

#[test]
fn refused_registry_actions_are_listed_exported_and_verified_like_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 0);
    let log = open(&cfg);
    let taken = registry("acme", RegistryActionKind::Approve, "calc@1");
    let mut refused = registry("acme", RegistryActionKind::Approve, "calc@2");
    refused.refused = Some(aifn_types::Refusal {
        kind: aifn_types::RefusalKind::Forbidden,
        reason: "separation of duties".into(),
    });
    log.record_registry(&taken).expect("taken");
    log.record_registry(&refused).expect("refused");
    let page = log
        .query(&tenant("acme"), &AuditQuery::default())
        .expect("query");
    let v = serde_json::to_value(&page).expect("json");
    assert_eq!(
        v["entries"][0]["refused"],
        json!({"kind": "forbidden", "reason": "separation of duties"})
    );
    assert!(v["entries"][1].get("refused").is_none(), "absent, not null");
    let q = AuditQuery {
        function: Some("calc".into()),
        ..AuditQuery::default()
    };
    assert_eq!(
        log.query(&tenant("acme"), &q)
            .expect("by function")
            .entries
            .len(),
        2
    );
    let mut out = Vec::new();
    log.export_jsonl(&tenant("acme"), &AuditQuery::default(), &mut out)
        .expect("export");
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains(r#""refused":{"kind":"forbidden""#))
    );
    assert!(!text.lines().next().is_some_and(|l| l.contains("refused")));
    log.close().expect("close");
    assert!(aifn_audit::verify(&cfg, None).expect("verify").is_ok());
}

#[test]
fn queries_deserialize_from_parameters_with_product_names() {
    let q: AuditQuery = serde_json::from_value(json!({
        "stream": "registry",
        "outcome": "fuel_exhausted",
        "since": "2026-11-22T11:00:00+01:00",
        "limit": 5
    }))
    .expect("query");
    assert_eq!(q.stream, Some(Stream::Registry));
    assert_eq!(q.outcome, Some(OutcomeKind::FuelExhausted));
    assert_eq!(
        q.since.map(|t| t.to_string()).as_deref(),
        Some("2026-11-22T10:00:00.000Z")
    );
    assert_eq!(q.limit, Some(5));
    assert!(serde_json::from_value::<AuditQuery>(json!({"tenant_id": "other"})).is_err());
    assert!(serde_json::from_value::<AuditQuery>(json!({"stream": "Registry"})).is_err());
    assert!(serde_json::from_value::<SecurityQuery>(json!({"stream": "system"})).is_ok());
}
