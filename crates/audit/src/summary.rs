//! The shape of an input without its values.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::canon::canonical_json;

/// Deepest nesting kept by [`summarize_input`].
const MAX_DEPTH: usize = 8;
/// Keys kept per object.
const MAX_KEYS: usize = 64;
/// Distinct element shapes kept per array.
const MAX_SHAPES: usize = 16;
/// Longest key kept (bytes).
const MAX_KEY_LEN: usize = 64;
/// Total nodes in one summary.
const MAX_NODES: usize = 1024;
/// Where something was cut. Not a JSON type name, so it cannot be confused.
const CUT: &str = "…";

/// The shape of a JSON value without any of its values: every leaf becomes
/// its type name (`null`, `boolean`, `number`, `string`), objects keep their
/// keys, arrays become the list of distinct element shapes.
///
/// `{"a":1,"b":{"c":"x"},"d":[1,2]}` → `{"a":"number","b":{"c":"string"},"d":["number"]}`.
///
/// Bounded: nesting deeper than 8 becomes `"object…"` / `"array…"` (no keys
/// below the bound), objects keep their first 64 keys (sorted) plus a `"…"`
/// key counting the rest, arrays keep 16 distinct shapes plus `"…"`, keys
/// are cut at 64 bytes and a summary has at most 1024 nodes.
pub fn summarize_input(v: &Value) -> Value {
    let mut budget = MAX_NODES;
    summarize(v, 0, &mut budget)
}

fn summarize(v: &Value, depth: usize, budget: &mut usize) -> Value {
    if *budget == 0 {
        return Value::String(CUT.into());
    }
    *budget -= 1;
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Object(_) if depth >= MAX_DEPTH => format!("object{CUT}").into(),
        Value::Array(_) if depth >= MAX_DEPTH => format!("array{CUT}").into(),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys.iter().take(MAX_KEYS) {
                let key = cut_key(k);
                let child = summarize(&map[k.as_str()], depth + 1, budget);
                out.insert(key, child);
            }
            if keys.len() > MAX_KEYS {
                out.insert(
                    CUT.into(),
                    format!("{} more keys", keys.len() - MAX_KEYS).into(),
                );
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            // Deduplicate by canonical form; keep first-seen order.
            let mut seen = BTreeMap::new();
            let mut shapes = Vec::new();
            let mut cut_off = false;
            for item in items {
                let shape = summarize(item, depth + 1, budget);
                let key = canonical_json(&shape);
                if seen.contains_key(&key) {
                    continue;
                }
                if shapes.len() == MAX_SHAPES {
                    cut_off = true;
                    break;
                }
                seen.insert(key, ());
                shapes.push(shape);
            }
            if cut_off {
                shapes.push(CUT.into());
            }
            Value::Array(shapes)
        }
    }
}

fn cut_key(k: &str) -> String {
    if k.len() <= MAX_KEY_LEN {
        return k.to_owned();
    }
    let mut end = MAX_KEY_LEN;
    while !k.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &k[..end])
}

/// True if `v` could have come from [`summarize_input`]: every leaf is a
/// type name or a cut marker, within the bounds.
pub(crate) fn is_summary(v: &Value, depth: usize) -> bool {
    match v {
        Value::Null => depth == 0,
        Value::String(s) => {
            matches!(
                s.as_str(),
                "null" | "boolean" | "number" | "string" | CUT | "object…" | "array…"
            ) || (depth == 0 && s == "invalid_json")
                || (s.ends_with(" more keys")
                    && s.trim_end_matches(" more keys")
                        .bytes()
                        .all(|b| b.is_ascii_digit()))
        }
        Value::Object(m) => {
            depth < MAX_DEPTH
                && m.len() <= MAX_KEYS + 1
                && m.iter()
                    .all(|(k, v)| k.len() <= MAX_KEY_LEN + CUT.len() && is_summary(v, depth + 1))
        }
        Value::Array(a) => {
            depth < MAX_DEPTH
                && a.len() <= MAX_SHAPES + 1
                && a.iter().all(|v| is_summary(v, depth + 1))
        }
        Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn summary_keeps_names_and_types_only() {
        let v = json!({"a": 1, "b": {"c": "x"}, "d": [1, 2]});
        assert_eq!(
            summarize_input(&v),
            json!({"a": "number", "b": {"c": "string"}, "d": ["number"]})
        );
        let v = json!([1, "s", null, true, 2, {"k": [1.5]}, {"k": [3]}]);
        assert_eq!(
            summarize_input(&v),
            json!(["number", "string", "null", "boolean", {"k": ["number"]}])
        );
        assert_eq!(summarize_input(&json!("secret")), json!("string"));
    }

    #[test]
    fn summary_is_bounded_in_depth_and_width() {
        let mut deep = json!({"leaf": "secret"});
        for _ in 0..20 {
            deep = json!({ "n": deep });
        }
        let s = summarize_input(&deep);
        let text = s.to_string();
        assert!(
            !text.contains("leaf"),
            "keys below the bound must not appear: {text}"
        );
        assert!(text.contains("object…"));
        let mut cur = &s;
        for _ in 0..MAX_DEPTH {
            cur = &cur["n"];
        }
        assert_eq!(cur, &json!("object…"));

        let wide: Map<String, Value> = (0..100).map(|i| (format!("k{i:03}"), json!(i))).collect();
        let s = summarize_input(&Value::Object(wide));
        let obj = s.as_object().expect("object");
        assert_eq!(obj.len(), MAX_KEYS + 1);
        assert_eq!(obj["…"], json!("36 more keys"));
        assert!(obj.contains_key("k063") && !obj.contains_key("k064"));

        let many: Vec<Value> = (0..40).map(|i| json!({ format!("f{i}"): i })).collect();
        let s = summarize_input(&Value::Array(many));
        assert_eq!(s.as_array().expect("array").len(), MAX_SHAPES + 1);
        assert_eq!(s[MAX_SHAPES], json!("…"));
    }

    #[test]
    fn summaries_are_recognized_and_values_are_not() {
        let v = json!({"a": [1, {"b": "x"}], "c": null});
        assert!(is_summary(&summarize_input(&v), 0));
        assert!(!is_summary(&json!({"a": 1}), 0));
        assert!(!is_summary(&json!({"password": "hunter2"}), 0));
        assert!(is_summary(&Value::Null, 0));
    }
}
