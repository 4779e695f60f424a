//! The structural JSON diff: what was added, removed or changed between
//! two documents, each change at a JSON Pointer. Objects are compared key
//! by key; arrays element by element, aligned by a sequence diff so that
//! one insertion in a `required` list is one change, not a shifted list.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use similar::{Algorithm, DiffOp, capture_diff_slices_deadline};

/// How one place in a document changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonChangeKind {
    /// Only the after document has it.
    Added,
    /// Only the before document has it.
    Removed,
    /// Both have it, with different values (or types).
    Changed,
}

/// One change between two JSON documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonChange {
    /// A JSON Pointer (`""` is the whole document): into the before
    /// document for a removal, into the after document otherwise.
    pub path: String,
    /// What happened there.
    pub change: JsonChangeKind,
    /// The value before, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl JsonChange {
    fn added(path: String, after: &Value) -> JsonChange {
        JsonChange {
            path,
            change: JsonChangeKind::Added,
            before: None,
            after: Some(after.clone()),
        }
    }

    fn removed(path: String, before: &Value) -> JsonChange {
        JsonChange {
            path,
            change: JsonChangeKind::Removed,
            before: Some(before.clone()),
            after: None,
        }
    }
}

/// How long [`json_diff`] spends aligning arrays before it settles for a
/// correct but not minimal alignment: the documents are authors' (a
/// schema `enum` can be long), the time is the host's.
pub(crate) const JSON_DIFF_TIME: Duration = Duration::from_millis(500);

/// Every change from `before` to `after`, in document order (object keys
/// sorted). Equal documents give none.
pub fn json_diff(before: &Value, after: &Value) -> Vec<JsonChange> {
    json_diff_until(before, after, Instant::now() + JSON_DIFF_TIME)
}

/// [`json_diff`], aligning arrays minimally only until `deadline`.
pub(crate) fn json_diff_until(before: &Value, after: &Value, deadline: Instant) -> Vec<JsonChange> {
    let mut out = Vec::new();
    walk(before, after, "", deadline, &mut out);
    out
}

/// [`json_diff_until`] where either document may be absent: a document
/// that appears is one addition at `""`, one that goes is one removal.
pub(crate) fn optional_diff(
    before: Option<&Value>,
    after: Option<&Value>,
    deadline: Instant,
) -> Vec<JsonChange> {
    match (before, after) {
        (None, None) => Vec::new(),
        (None, Some(a)) => vec![JsonChange::added(String::new(), a)],
        (Some(b), None) => vec![JsonChange::removed(String::new(), b)],
        (Some(b), Some(a)) => json_diff_until(b, a, deadline),
    }
}

/// The pointer to `key` under `path` (RFC 6901 escaping).
fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn walk(before: &Value, after: &Value, path: &str, deadline: Instant, out: &mut Vec<JsonChange>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                let at = child(path, k);
                match (b.get(k), a.get(k)) {
                    (Some(bv), Some(av)) => walk(bv, av, &at, deadline, out),
                    (Some(bv), None) => out.push(JsonChange::removed(at, bv)),
                    (None, Some(av)) => out.push(JsonChange::added(at, av)),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => arrays(b, a, path, deadline, out),
        _ if before == after => {}
        _ => out.push(JsonChange {
            path: path.to_owned(),
            change: JsonChangeKind::Changed,
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
    }
}

/// Arrays aligned by a sequence diff of their elements' canonical forms:
/// equal runs are skipped, deletions and insertions are removals and
/// additions, and a replaced run is compared pairwise (so a changed
/// object in a list shows its own changed members).
fn arrays(b: &[Value], a: &[Value], path: &str, deadline: Instant, out: &mut Vec<JsonChange>) {
    let bk: Vec<String> = b.iter().map(canonical).collect();
    let ak: Vec<String> = a.iter().map(canonical).collect();
    let at = |i: usize| child(path, &i.to_string());
    for op in capture_diff_slices_deadline(Algorithm::Myers, &bk, &ak, Some(deadline)) {
        match op {
            DiffOp::Equal { .. } => {}
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for (i, v) in (old_index..).zip(&b[old_index..old_index + old_len]) {
                    out.push(JsonChange::removed(at(i), v));
                }
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for (i, v) in (new_index..).zip(&a[new_index..new_index + new_len]) {
                    out.push(JsonChange::added(at(i), v));
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let paired = old_len.min(new_len);
                for k in 0..paired {
                    walk(
                        &b[old_index + k],
                        &a[new_index + k],
                        &at(new_index + k),
                        deadline,
                        out,
                    );
                }
                let (gone, came) = (old_index + paired, new_index + paired);
                for (i, v) in (gone..).zip(&b[gone..old_index + old_len]) {
                    out.push(JsonChange::removed(at(i), v));
                }
                for (i, v) in (came..).zip(&a[came..new_index + new_len]) {
                    out.push(JsonChange::added(at(i), v));
                }
            }
        }
    }
}

/// A value's text with object keys sorted, whatever the map's order: two
/// equal values have the same canonical form.
fn canonical(v: &Value) -> String {
    let mut s = String::new();
    write_canonical(v, &mut s);
    s
}

fn write_canonical(v: &Value, s: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            s.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&Value::String(k.clone()).to_string());
                s.push(':');
                if let Some(x) = m.get(k) {
                    write_canonical(x, s);
                }
            }
            s.push('}');
        }
        Value::Array(items) => {
            s.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                write_canonical(x, s);
            }
            s.push(']');
        }
        other => s.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn soon() -> Instant {
        Instant::now() + JSON_DIFF_TIME
    }

    #[test]
    fn past_the_deadline_arrays_are_still_diffed_completely() {
        // Already past: no time for a minimal alignment, still every change.
        let late = Instant::now();
        let long: Vec<u32> = (0..20_000).collect();
        let mut changed = long.clone();
        changed[10_000] = 7;
        let (b, a) = (json!(long), json!(changed));
        assert!(json_diff_until(&b, &b, late).is_empty());
        let d = json_diff_until(&b, &a, late);
        assert!(!d.is_empty());
        assert!(
            d.iter().any(|c| c.after == Some(json!(7))),
            "the new element is reported: {d:?}"
        );
        // Pair: in time, the same change is exactly one element.
        assert_eq!(
            paths(&json_diff(&b, &a)),
            [("/10000", JsonChangeKind::Changed)]
        );
    }

    fn paths(changes: &[JsonChange]) -> Vec<(&str, JsonChangeKind)> {
        changes
            .iter()
            .map(|c| (c.path.as_str(), c.change))
            .collect()
    }

    #[test]
    fn equal_documents_have_no_changes() {
        let doc =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert!(json_diff(&doc, &doc.clone()).is_empty());
        assert!(json_diff(&json!(null), &json!(null)).is_empty());
        // Pair: one nested change is found.
        let mut other = doc.clone();
        other["properties"]["a"]["type"] = json!("integer");
        assert_eq!(
            json_diff(&doc, &other),
            [JsonChange {
                path: "/properties/a/type".into(),
                change: JsonChangeKind::Changed,
                before: Some(json!("string")),
                after: Some(json!("integer")),
            }]
        );
    }

    #[test]
    fn members_added_and_removed_at_nested_paths() {
        let before = json!({"properties": {"a": {"type": "string"}, "gone": {}}});
        let after = json!({"properties": {"a": {"type": "string", "maxLength": 5}, "new": true}});
        let d = json_diff(&before, &after);
        assert_eq!(
            paths(&d),
            [
                ("/properties/a/maxLength", JsonChangeKind::Added),
                ("/properties/gone", JsonChangeKind::Removed),
                ("/properties/new", JsonChangeKind::Added),
            ]
        );
        assert_eq!(d[0].after, Some(json!(5)));
        assert_eq!(d[1].before, Some(json!({})));
        assert_eq!(d[1].after, None);
    }

    #[test]
    fn a_change_of_type_is_one_change_at_that_path() {
        let d = json_diff(&json!({"a": {"b": 1}}), &json!({"a": [1]}));
        assert_eq!(paths(&d), [("/a", JsonChangeKind::Changed)]);
        let whole = json_diff(&json!(1), &json!("1"));
        assert_eq!(paths(&whole), [("", JsonChangeKind::Changed)]);
    }

    #[test]
    fn arrays_are_aligned_not_shifted() {
        let d = json_diff(&json!(["a", "b", "c"]), &json!(["x", "a", "b", "c"]));
        assert_eq!(paths(&d), [("/0", JsonChangeKind::Added)]);
        let d = json_diff(&json!(["a", "b", "c"]), &json!(["a", "c"]));
        assert_eq!(paths(&d), [("/1", JsonChangeKind::Removed)]);
        assert_eq!(d[0].before, Some(json!("b")));
        // A changed object in a list shows its own member's change.
        let d = json_diff(
            &json!([{"n": 1, "k": "x"}, 2]),
            &json!([{"n": 1, "k": "y"}, 2]),
        );
        assert_eq!(paths(&d), [("/0/k", JsonChangeKind::Changed)]);
    }

    #[test]
    fn key_order_does_not_matter_and_keys_are_escaped() {
        let a: Value = serde_json::from_str(r#"[{"x": 1, "y": 2}]"#).expect("json");
        let b: Value = serde_json::from_str(r#"[{"y": 2, "x": 1}]"#).expect("json");
        assert!(json_diff(&a, &b).is_empty());
        let d = json_diff(&json!({"a/b": 1, "m~n": 1}), &json!({"a/b": 2, "m~n": 2}));
        assert_eq!(
            paths(&d),
            [
                ("/a~1b", JsonChangeKind::Changed),
                ("/m~0n", JsonChangeKind::Changed)
            ]
        );
    }

    #[test]
    fn an_absent_document_is_one_change_at_the_root() {
        let s = json!({"type": "object"});
        assert!(optional_diff(None, None, soon()).is_empty());
        assert_eq!(
            paths(&optional_diff(None, Some(&s), soon())),
            [("", JsonChangeKind::Added)]
        );
        assert_eq!(
            paths(&optional_diff(Some(&s), None, soon())),
            [("", JsonChangeKind::Removed)]
        );
        assert!(optional_diff(Some(&s), Some(&s), soon()).is_empty());
    }
}
