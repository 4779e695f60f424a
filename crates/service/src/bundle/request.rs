//! What a bundle is asked for, and its checks.

use aifn_types::{FunctionName, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// What to bundle: one execution, or a function (one version of it, or
/// all) in a time window. Exactly one of `execution` and `function`.
/// Deserializes from a query string too (`module=true` for
/// `include_module`); unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BundleRequest {
    /// An execution id of the caller's tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// A function name (`NAME@VERSION` names the version too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Only this version of the function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Records at or after this time (with `function`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Records before this time (with `function`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Carry each bundled version's module bytes (base64).
    #[serde(alias = "module")]
    pub include_module: bool,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One execution by id.
    Execution(String),
    /// A function's records, of one version or all, in a window.
    Function {
        name: FunctionName,
        version: Option<u32>,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    },
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidRequest {
        message: message.into(),
    }
}

impl BundleRequest {
    /// Checks the request: exactly one of execution and function; a
    /// version and a window only with a function; a window that is not
    /// empty.
    pub(crate) fn scope(&self) -> Result<Scope, ServiceError> {
        match (&self.execution, &self.function) {
            (Some(_), Some(_)) | (None, None) => Err(invalid(
                "a bundle needs exactly one of execution and function",
            )),
            (Some(id), None) => {
                if self.version.is_some() || self.since.is_some() || self.until.is_some() {
                    return Err(invalid(
                        "version, since and until go with function, not with execution",
                    ));
                }
                if id.trim().is_empty() {
                    return Err(invalid("the execution id is empty"));
                }
                Ok(Scope::Execution(id.clone()))
            }
            (None, Some(function)) => {
                let (name, version) = self.function_version(function)?;
                if let (Some(since), Some(until)) = (self.since, self.until)
                    && since >= until
                {
                    return Err(invalid("since must be before until"));
                }
                Ok(Scope::Function {
                    name,
                    version,
                    since: self.since,
                    until: self.until,
                })
            }
        }
    }

    fn function_version(
        &self,
        function: &str,
    ) -> Result<(FunctionName, Option<u32>), ServiceError> {
        let (name, named) = match function.split_once('@') {
            None => (function, None),
            Some((name, v)) => {
                let v = v
                    .parse::<u32>()
                    .map_err(|_| invalid(format!("the version in {function:?} is not a number")))?;
                (name, Some(v))
            }
        };
        let version = match (named, self.version) {
            (Some(a), Some(b)) if a != b => {
                return Err(invalid(format!(
                    "function {function:?} and version {b} name different versions"
                )));
            }
            (a, b) => a.or(b),
        };
        let name = FunctionName::new(name).map_err(|e| invalid(e.to_string()))?;
        Ok((name, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> BundleRequest {
        serde_json::from_value(json).expect("request")
    }

    fn refused(r: &BundleRequest) -> String {
        match r.scope() {
            Err(ServiceError::InvalidRequest { message }) => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exactly_one_of_execution_and_function() {
        assert_eq!(
            req(serde_json::json!({"execution": "e1"})).scope(),
            Ok(Scope::Execution("e1".into()))
        );
        let name = FunctionName::new("f").expect("name");
        assert_eq!(
            req(serde_json::json!({"function": "f@2"})).scope(),
            Ok(Scope::Function {
                name: name.clone(),
                version: Some(2),
                since: None,
                until: None
            })
        );
        assert_eq!(
            req(serde_json::json!({"function": "f", "version": 3})).scope(),
            Ok(Scope::Function {
                name,
                version: Some(3),
                since: None,
                until: None
            })
        );
        assert!(refused(&req(serde_json::json!({}))).contains("exactly one"));
        assert!(
            refused(&req(serde_json::json!({"execution": "e", "function": "f"})))
                .contains("exactly one")
        );
        assert!(refused(&req(serde_json::json!({"execution": " "}))).contains("empty"));
        assert!(
            refused(&req(serde_json::json!({"execution": "e", "version": 1})))
                .contains("go with function")
        );
        assert!(
            refused(&req(
                serde_json::json!({"execution": "e", "until": "2026-01-01T00:00:00Z"})
            ))
            .contains("go with function")
        );
        assert!(refused(&req(serde_json::json!({"function": "f@x"}))).contains("not a number"));
        assert!(
            refused(&req(serde_json::json!({"function": "f@1", "version": 2})))
                .contains("different versions")
        );
        assert_eq!(
            req(serde_json::json!({"function": "f@2", "version": 2}))
                .scope()
                .map(|s| matches!(
                    s,
                    Scope::Function {
                        version: Some(2),
                        ..
                    }
                )),
            Ok(true)
        );
        assert!(!refused(&req(serde_json::json!({"function": "no such name!"}))).is_empty());
    }

    #[test]
    fn the_window_must_not_be_empty_and_unknown_fields_are_refused() {
        let ok = req(serde_json::json!({
            "function": "f", "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"
        }));
        assert!(ok.scope().is_ok());
        let empty = req(serde_json::json!({
            "function": "f", "since": "2026-01-02T00:00:00Z", "until": "2026-01-02T00:00:00Z"
        }));
        assert!(refused(&empty).contains("before until"));
        assert!(
            serde_json::from_value::<BundleRequest>(serde_json::json!({"function": "f", "x": 1}))
                .is_err()
        );
        // `module` is the query-string name of `include_module`.
        let m = req(serde_json::json!({"function": "f", "module": true}));
        assert!(m.include_module);
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            serde_json::json!({"function": "f", "include_module": true})
        );
    }
}
