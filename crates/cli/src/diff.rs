//! `aifn inspect NAME@VERSION --diff [--against N]`: what changed between
//! versions, in lines an approver reads top to bottom: the module hash,
//! the manifest (description, schemas path by path, limits, capture, the
//! output guard, tests), the report (imports, exports, features, memory,
//! table, sizes, test results) and the source's unified diff.

use aifn_service::{
    Change, DiffRelation, DiffReport, FieldChange, JsonChange, JsonChangeKind, TestChange,
    TestChangeKind, VersionDiff,
};
use serde_json::Value;

use crate::Exit;
use crate::client::{Conn, name_at_version};
use crate::output::{self, out};
use crate::report::test_line;

pub(crate) fn inspect_diff(
    conn: &Conn,
    target: &str,
    against: Option<u32>,
) -> anyhow::Result<Exit> {
    let (name, version) = name_at_version(target)?;
    let Some(version) = version else {
        anyhow::bail!("--diff needs NAME@VERSION")
    };
    let mut path = format!("/v1/functions/{name}/versions/{version}/diff");
    if let Some(n) = against {
        path.push_str(&format!("?against={n}"));
    }
    let Some(reply) = conn.get_as::<DiffReport>(&path)? else {
        return Ok(Exit::Failed);
    };
    if conn.json_output() {
        output::json(&reply.raw);
        return Ok(Exit::Ok);
    }
    for line in render(&name, &reply.value) {
        out!("{line}");
    }
    Ok(Exit::Ok)
}

/// The whole report as lines.
pub(crate) fn render(name: &str, report: &DiffReport) -> Vec<String> {
    if report.diffs.is_empty() {
        return vec![format!(
            "{name}@{}: no earlier version and no other active version to compare against",
            report.version
        )];
    }
    let mut lines = Vec::new();
    for d in &report.diffs {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        render_one(&mut lines, name, report.version, d);
    }
    lines
}

fn relation(r: DiffRelation) -> &'static str {
    match r {
        DiffRelation::Previous => "the previous version",
        DiffRelation::Active => "the active version",
        DiffRelation::Chosen => "the version asked for",
    }
}

/// Compact JSON for one line (`null` spelled as absent).
fn compact(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(absent)".to_owned(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

fn change_value(c: &Change<Value>) -> String {
    format!(
        "{} -> {}",
        compact(Some(&c.before)),
        compact(Some(&c.after))
    )
}

fn json_change(c: &JsonChange) -> String {
    let path = if c.path.is_empty() {
        "(whole)"
    } else {
        &c.path
    };
    match c.change {
        JsonChangeKind::Added => format!("+ {path}: {}", compact(c.after.as_ref())),
        JsonChangeKind::Removed => format!("- {path}: {}", compact(c.before.as_ref())),
        JsonChangeKind::Changed => format!(
            "~ {path}: {} -> {}",
            compact(c.before.as_ref()),
            compact(c.after.as_ref())
        ),
    }
}

fn field_change(c: &FieldChange) -> String {
    let side = |v: Option<u64>| v.map_or("(host default)".to_owned(), |n| n.to_string());
    format!("{} {} -> {}", c.field, side(c.before), side(c.after))
}

fn section<T>(lines: &mut Vec<String>, title: &str, items: &[T], each: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    lines.push(format!("  {title}:"));
    lines.extend(items.iter().map(|i| format!("    {}", each(i))));
}

fn added_removed(lines: &mut Vec<String>, what: &str, added: &[String], removed: &[String]) {
    if !added.is_empty() {
        lines.push(format!("  {what} added: {}", added.join(", ")));
    }
    if !removed.is_empty() {
        lines.push(format!("  {what} removed: {}", removed.join(", ")));
    }
}

fn test_change(lines: &mut Vec<String>, t: &TestChange) {
    let what = match t.change {
        TestChangeKind::Added => "added",
        TestChangeKind::Removed => "removed",
        TestChangeKind::DefinitionChanged => "definition changed",
        TestChangeKind::ResultChanged => "result changed",
    };
    lines.push(format!("    {} ({what})", t.name));
    for c in &t.definition {
        lines.push(format!("      {}", json_change(c)));
    }
    if let Some(b) = &t.before {
        lines.push(format!("      before: {}", test_line(b)));
    }
    if let Some(a) = &t.after {
        lines.push(format!("      after:  {}", test_line(a)));
    }
}

fn render_one(lines: &mut Vec<String>, name: &str, version: u32, d: &VersionDiff) {
    lines.push(format!(
        "{name}@{version} against v{} ({}):",
        d.against,
        relation(d.relation)
    ));
    if d.is_empty() {
        lines.push("  no differences: the same module and the same manifest".to_owned());
        return;
    }
    if d.sha256.before == d.sha256.after {
        lines.push(format!("  sha256 {} (unchanged)", d.sha256.after));
    } else {
        lines.push(format!(
            "  sha256 {} -> {}",
            d.sha256.before, d.sha256.after
        ));
    }
    if let Some(c) = &d.description {
        lines.push(format!("  description: {:?} -> {:?}", c.before, c.after));
    }
    section(lines, "input schema", &d.input_schema, json_change);
    section(lines, "output schema", &d.output_schema, json_change);
    section(
        lines,
        "limits the manifest asks for",
        &d.requested_limits,
        field_change,
    );
    section(
        lines,
        "limits calls run with",
        &d.effective_limits,
        field_change,
    );
    if let Some(c) = &d.capture {
        lines.push(format!("  capture: {}", change_value(c)));
    }
    if let Some(c) = &d.output_guard {
        lines.push(format!("  output guard: {}", change_value(c)));
    }
    added_removed(lines, "imports", &d.imports_added, &d.imports_removed);
    added_removed(lines, "exports", &d.exports_added, &d.exports_removed);
    added_removed(lines, "features", &d.features_added, &d.features_removed);
    if let Some(c) = &d.has_start {
        let yn = |b: bool| if b { "yes" } else { "no" };
        lines.push(format!(
            "  start function (runs at instantiation): {} -> {}",
            yn(c.before),
            yn(c.after)
        ));
    }
    if let Some(c) = &d.memory {
        lines.push(format!("  memory: {}", change_value(c)));
    }
    if let Some(c) = &d.table {
        lines.push(format!("  table: {}", change_value(c)));
    }
    section(lines, "sizes", &d.sizes, field_change);
    if !d.tests.is_empty() {
        lines.push("  tests:".to_owned());
        for t in &d.tests {
            test_change(lines, t);
        }
    }
    if let Some(s) = &d.source {
        lines.push(format!(
            "  source: +{} -{} lines",
            s.lines_added, s.lines_removed
        ));
        lines.extend(s.unified.lines().map(|l| format!("    {l}")));
    }
}

#[cfg(test)]
mod tests {
    use aifn_service::SourceDiff;
    use serde_json::json;

    use super::*;

    fn empty(against: u32) -> VersionDiff {
        serde_json::from_value(json!({
            "against": against, "relation": "previous",
            "sha256": {"before": "aa", "after": "aa"},
            "description": null, "input_schema": [], "output_schema": [],
            "requested_limits": [], "effective_limits": [], "capture": null,
            "output_guard": null, "imports_added": [], "imports_removed": [],
            "exports_added": [], "exports_removed": [], "features_added": [],
            "features_removed": [], "has_start": null, "memory": null, "table": null,
            "sizes": [], "tests": [], "source": null
        }))
        .expect("a VersionDiff")
    }

    fn text(d: VersionDiff) -> String {
        render(
            "f",
            &DiffReport {
                version: 2,
                diffs: vec![d],
            },
        )
        .join("\n")
    }

    #[test]
    fn identical_versions_say_so() {
        let t = text(empty(1));
        assert!(
            t.starts_with("f@2 against v1 (the previous version):"),
            "{t}"
        );
        assert!(t.contains("no differences"), "{t}");
    }

    #[test]
    fn each_kind_of_change_is_shown() {
        let mut d = empty(1);
        d.sha256.after = "bb".into();
        d.description = Some(Change {
            before: "old".into(),
            after: "new".into(),
        });
        d.input_schema = vec![JsonChange {
            path: "/properties/x".into(),
            change: JsonChangeKind::Added,
            before: None,
            after: Some(json!({"type": "string"})),
        }];
        d.requested_limits = vec![FieldChange {
            field: "fuel".into(),
            before: None,
            after: Some(5),
        }];
        d.imports_added = vec!["aifn.log".into()];
        d.capture = Some(Change {
            before: Value::Null,
            after: json!({"retention_days": 7}),
        });
        d.source = Some(SourceDiff {
            unified: "--- f@1\n+++ f@2\n-a\n+b\n".into(),
            lines_added: 1,
            lines_removed: 1,
        });
        let t = text(d);
        for want in [
            "sha256 aa -> bb",
            "description: \"old\" -> \"new\"",
            "+ /properties/x: {\"type\":\"string\"}",
            "fuel (host default) -> 5",
            "imports added: aifn.log",
            "capture: (absent) -> {\"retention_days\":7}",
            "source: +1 -1 lines",
            "    +b",
        ] {
            assert!(t.contains(want), "{want:?} missing in\n{t}");
        }
        assert!(!t.contains("no differences"), "{t}");
    }

    #[test]
    fn a_first_version_has_nothing_to_compare() {
        let t = render(
            "f",
            &DiffReport {
                version: 1,
                diffs: vec![],
            },
        )
        .join("\n");
        assert!(t.contains("no earlier version"), "{t}");
    }
}
