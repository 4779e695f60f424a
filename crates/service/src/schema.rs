//! JSON Schemas of functions: compiled once, checked on every call, and
//! the rules a tool definition needs (an object schema at the root, which
//! every model API's function calling requires).

use serde_json::Value;

use crate::{ServiceError, Violation};

/// Most schema violations listed in one answer.
const MAX_VIOLATIONS: usize = 20;

pub(crate) fn compile_schema(
    what: &str,
    schema: &Value,
) -> Result<jsonschema::Validator, ServiceError> {
    jsonschema::validator_for(schema).map_err(|e| ServiceError::InvalidRequest {
        message: format!("{what} is not a valid JSON Schema: {}", e.masked()),
    })
}

/// Why `schema` cannot be a tool's parameters, if it cannot: model APIs
/// take an object schema only (`"type": "object"` at the root).
pub(crate) fn not_an_object_schema(schema: &Value) -> Option<String> {
    let found = match schema.get("type") {
        Some(Value::String(t)) if t == "object" => return None,
        Some(t) => format!("its root has \"type\": {t}"),
        None if schema.is_object() => "its root has no \"type\"".to_owned(),
        None => format!("it is {}, not a JSON object", kind_of(schema)),
    };
    Some(format!(
        "input_schema must be an object schema, with \"type\": \"object\" at its root \
         (agents call functions with named arguments, and model APIs refuse other tool \
         schemas); {found}"
    ))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn violations(v: &jsonschema::Validator, instance: &Value) -> Vec<Violation> {
    v.iter_errors(instance)
        .take(MAX_VIOLATIONS)
        .map(|e| Violation {
            path: e.instance_path().to_string(),
            message: e.masked().to_string(),
        })
        .collect()
}

/// `1 violation`, `3 violations`.
pub(crate) fn count(n: usize) -> String {
    if n == 1 {
        "1 violation".to_owned()
    } else {
        format!("{n} violations")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_object_schemas_are_tool_parameters() {
        assert_eq!(not_an_object_schema(&json!({"type": "object"})), None);
        for bad in [
            json!({}),
            json!({"type": "string"}),
            json!({"type": ["object", "null"]}),
            json!(true),
        ] {
            let why = not_an_object_schema(&bad).expect("refused");
            assert!(why.contains("\"type\": \"object\""), "{why}");
        }
        assert!(
            not_an_object_schema(&json!({}))
                .expect("refused")
                .ends_with("its root has no \"type\"")
        );
        for (bad, says) in [
            (json!(true), "it is a boolean, not a JSON object"),
            (
                json!([{"type": "object"}]),
                "it is an array, not a JSON object",
            ),
            (json!("object"), "it is a string, not a JSON object"),
            (json!(null), "it is null, not a JSON object"),
            (json!(1), "it is a number, not a JSON object"),
        ] {
            let why = not_an_object_schema(&bad).expect("refused");
            assert!(why.ends_with(says), "{why}");
        }
    }

    #[test]
    fn counts_read_as_english() {
        assert_eq!(count(1), "1 violation");
        assert_eq!(count(0), "0 violations");
        assert_eq!(count(2), "2 violations");
    }
}
