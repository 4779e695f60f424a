//! How `aifn audit list` and `export` print: one summary row per record,
//! or the records' JSON, page after page.

use aifn_audit::AuditRecord;
use aifn_service::{AuditEntry, AuditPage};
use serde_json::Value;

use crate::output::{self, err, out};

/// The serde name of a product word (`missing_key`, `prune`).
pub(super) fn word(v: impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn summary_row(e: &AuditEntry) -> Vec<String> {
    let (time, what) = match &e.record {
        AuditRecord::Execution(r) => {
            let version = r.version.map(|v| format!("@{v}")).unwrap_or_default();
            let mut what = format!("{}{version} {} by {}", r.function, r.outcome, r.agent_id);
            // Calls without an end user say nothing about one.
            if !r.user_id.is_empty() {
                what.push_str(&format!(" for {}", r.user_id));
            }
            if let Some(a) = &r.admission {
                what.push_str(&format!(" [{a}]"));
            }
            // Test runs and replays are never an agent's execution: say so.
            match (&r.test_name, &r.replay_of) {
                (Some(t), _) => what.push_str(&format!(" (test run {t:?})")),
                (None, Some(id)) => what.push_str(&format!(" (replay of {id})")),
                (None, None) if !r.run.is_invocation() => {
                    what.push_str(&format!(" ({})", r.run.as_str().replace('_', " ")));
                }
                (None, None) => {}
            }
            (r.time, what)
        }
        AuditRecord::Registry(r) => (
            r.time,
            format!(
                "{} {} by {}",
                r.action.action.as_str(),
                r.action.target,
                r.action.actor
            ),
        ),
        AuditRecord::Security(r) => (r.time, format!("{} on {}", word(r.reason), r.route)),
        AuditRecord::System(r) => (
            r.time,
            format!("{} of {} records by {}", word(r.event), r.pruned, r.actor),
        ),
    };
    vec![
        e.seq.to_string(),
        time.to_string(),
        e.record.stream().as_str().to_owned(),
        what,
    ]
}

pub(super) fn print_page(page: &AuditPage, json: bool, raw: &Value) {
    if json {
        output::json(raw);
        return;
    }
    output::table(
        &["SEQ", "TIME", "STREAM", "WHAT"],
        page.entries.iter().map(summary_row).collect(),
    );
    if let Some(n) = page.next_before_seq {
        out!("more: --before-seq {n}");
    }
}

/// Pages newest first through `page(before_seq)` until the last page or a
/// closed stdout; `None` once a refusal was printed. Returns the records'
/// JSON, oldest first.
pub(super) fn every_page(
    mut page: impl FnMut(Option<u64>) -> anyhow::Result<Option<(AuditPage, Value)>>,
) -> anyhow::Result<Option<Vec<Value>>> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let Some((typed, mut raw)) = page(before)? else {
            return Ok(None);
        };
        if let Value::Array(entries) = raw["entries"].take() {
            all.extend(entries);
        }
        match typed.next_before_seq {
            Some(n) if !output::stdout_closed() => before = Some(n),
            _ => break,
        }
    }
    all.reverse();
    Ok(Some(all))
}

pub(super) fn print_lines(entries: &[Value]) {
    for e in entries {
        out!("{e}");
    }
    err!("exported {} records", entries.len());
}
