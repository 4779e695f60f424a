//! Samples for the fleet load (`src/bin/fleetload.rs`): the CPU time of
//! processes from `/proc`, and PostgreSQL's own counters
//! (`pg_stat_statements`, `pg_stat_database`, `pg_stat_bgwriter`,
//! `pg_stat_wal`, the WAL position and the transaction id), taken before
//! and after a measured window and subtracted.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// Clock ticks per second of `/proc`'s CPU times (`getconf CLK_TCK`).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `(ppid, utime + stime in ticks)` of a process, from `/proc/PID/stat`.
fn proc_stat(pid: &str) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces: split after it.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((f.get(1)?.parse().ok()?, ticks))
}

/// CPU ticks (user + system, all threads) of one process.
pub fn cpu_ticks(pid: u32) -> u64 {
    proc_stat(&pid.to_string()).map_or(0, |(_, t)| t)
}

/// CPU ticks of `root` and its living children (PostgreSQL's postmaster
/// and its backends and auxiliary processes).
pub fn tree_ticks(root: u32) -> u64 {
    let mut total = cpu_ticks(root);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if let Some((ppid, ticks)) = proc_stat(pid)
                && ppid == root
            {
                total += ticks;
            }
        }
    }
    total
}

/// The machine's `(busy, all)` ticks over every CPU, from `/proc/stat`.
pub fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let all: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (all - idle, all)
}

/// The postmaster's pid, from `postmaster.pid` in the server's data
/// directory (asked of the server at `url`).
pub fn postmaster_pid(url: &str) -> u32 {
    let (ok, dir) = aifn_test_support::psql_at(url, "SHOW data_directory");
    assert!(ok, "SHOW data_directory: {dir}");
    let file = Path::new(dir.trim()).join("postmaster.pid");
    std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.lines().next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read {}", file.display()))
}

/// One query for every counter, so that they are read at one moment.
const SAMPLE: &str = r"
WITH s AS (SELECT queryid, calls, total_exec_time, rows, query FROM pg_stat_statements
           WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
SELECT json_build_object(
  'statements', (SELECT json_agg(json_build_object('id', queryid::text, 'calls', calls,
      'exec_ms', total_exec_time, 'rows', rows,
      'query', left(regexp_replace(query, '\s+', ' ', 'g'), 140))) FROM s),
  'database', (SELECT row_to_json(d) FROM (SELECT xact_commit, xact_rollback, tup_inserted,
      tup_updated, tup_deleted, tup_fetched, blks_read, blks_hit, blk_write_time
      FROM pg_stat_database WHERE datname = current_database()) d),
  'bgwriter', (SELECT row_to_json(b) FROM (SELECT buffers_checkpoint, buffers_clean,
      buffers_backend, checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter) b),
  'wal', (SELECT row_to_json(w) FROM (SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full,
      wal_write, wal_sync, wal_write_time, wal_sync_time FROM pg_stat_wal) w),
  'wal_lsn_bytes', pg_current_wal_lsn() - '0/0'::pg_lsn,
  'xid', pg_current_xact_id()::text::bigint)";

/// PostgreSQL's counters now.
pub fn sample(url: &str) -> Value {
    let (ok, text) = aifn_test_support::psql_at(url, SAMPLE);
    assert!(ok, "the statistics query failed: {text}");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

/// `after - before` of every number of an object.
fn delta_object(before: &Value, after: &Value) -> serde_json::Map<String, Value> {
    let empty = serde_json::Map::new();
    after
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .map(|(k, v)| (k.clone(), json!(num(v) - num(&before[k]))))
        .collect()
}

/// What PostgreSQL did between two samples, in all and per invocation
/// (`invocations` answered in `seconds`).
pub fn delta(before: &Value, after: &Value, invocations: f64, seconds: f64) -> Value {
    let per = |x: f64| x / invocations.max(1.0);
    let mut by_id: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for s in before["statements"].as_array().into_iter().flatten() {
        let id = s["id"].as_str().unwrap_or("").to_owned();
        by_id.insert(id, (num(&s["calls"]), num(&s["exec_ms"])));
    }
    let mut statements: Vec<(f64, f64, String)> = after["statements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let (calls, ms) = by_id
                .get(s["id"].as_str().unwrap_or(""))
                .copied()
                .unwrap_or((0.0, 0.0));
            (
                num(&s["calls"]) - calls,
                num(&s["exec_ms"]) - ms,
                s["query"].as_str().unwrap_or("").to_owned(),
            )
        })
        .filter(|(calls, _, _)| *calls > 0.0)
        .collect();
    statements.sort_by(|a, b| b.0.total_cmp(&a.0));
    let calls: f64 = statements.iter().map(|s| s.0).sum();
    let exec_ms: f64 = statements.iter().map(|s| s.1).sum();
    // Each audit batch takes the append lock once.
    let batches: f64 = statements
        .iter()
        .filter(|s| s.2.contains("pg_advisory_xact_lock"))
        .map(|s| s.0)
        .sum();
    // The statements a batch runs while it holds the lock, besides its
    // commit: reading the chain's head and the inserts.
    let batch_exec_ms: f64 = statements
        .iter()
        .filter(|s| s.2.contains("audit_entries") || s.2.contains("audit_captures"))
        .map(|s| s.1)
        .sum();
    let db = delta_object(&before["database"], &after["database"]);
    let wal = delta_object(&before["wal"], &after["wal"]);
    let bg = delta_object(&before["bgwriter"], &after["bgwriter"]);
    let g = |m: &serde_json::Map<String, Value>, k: &str| m.get(k).map_or(0.0, num);
    let commits = g(&db, "xact_commit");
    let wal_bytes = num(&after["wal_lsn_bytes"]) - num(&before["wal_lsn_bytes"]);
    // The second sample's own transaction took one id.
    let write_xacts = num(&after["xid"]) - num(&before["xid"]) - 1.0;
    let buffers =
        g(&bg, "buffers_checkpoint") + g(&bg, "buffers_clean") + g(&bg, "buffers_backend");
    let syncs = g(&wal, "wal_sync");
    json!({
        "statements": calls,
        "statements_exec_ms": exec_ms,
        "top_statements": statements.iter().take(10).map(|(c, ms, q)| json!({
            "calls": c, "per_invocation": per(*c), "mean_exec_us": ms * 1e3 / c.max(1.0), "query": q,
        })).collect::<Vec<_>>(),
        "audit_batches": batches,
        "database": db,
        "wal": wal,
        "bgwriter": bg,
        "wal_bytes_from_lsn": wal_bytes,
        "write_transactions": write_xacts,
        "per_invocation": {
            "statements": per(calls),
            "commits": per(commits),
            "write_transactions": per(write_xacts),
            "wal_bytes": per(wal_bytes),
            "wal_records": per(g(&wal, "wal_records")),
            "wal_syncs": per(syncs),
            "tuples_inserted": per(g(&db, "tup_inserted")),
            "buffers_written": per(buffers),
            "statement_exec_us": per(exec_ms * 1e3),
        },
        "records_per_audit_batch": invocations / batches.max(1.0),
        "audit_batches_per_second": batches / seconds,
        "audit_batch_exec_us": batch_exec_ms * 1e3 / batches.max(1.0),
        "commits_per_second": commits / seconds,
        "write_transactions_per_second": write_xacts / seconds,
        "wal_syncs_per_second": syncs / seconds,
        "wal_sync_mean_us": g(&wal, "wal_sync_time") * 1e3 / syncs.max(1.0),
        "wal_bytes_per_second": wal_bytes / seconds,
    })
}
