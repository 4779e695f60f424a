//! The one error body of the API and the check every error answer of the
//! server's tests and of the `http_request` fuzz target goes through.

use std::collections::BTreeSet;

use aifn_service::ErrorKind;
use serde_json::Value;

use crate::kinds_for;

/// The kind names an error body may carry: [`ErrorKind::ALL`], the
/// product's outcome kinds that are errors and the five request-level ones.
pub fn error_kinds() -> BTreeSet<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// Words that would mean an internal detail reached a caller.
pub const LEAKS: &[&str] = &[
    "sqlite",
    "rusqlite",
    "/tmp",
    "/dev/shm",
    "::",
    ".rs:",
    "panicked",
    "backtrace",
    "struct ",
    "registryerror",
    "serviceerror",
    "auditerror",
];

/// Asserts the one error body: `{"error": {"kind", "message"}}` (plus
/// `violations` for invalid input, and the execution stats of a call),
/// with a product kind that fits `status`, a non-empty message without
/// any of [`LEAKS`] and without any of `secrets` (the data dir, API keys).
/// A leak word inside `sent` (all the client sent, lowercase) is allowed:
/// a message may quote the client's own words back.
#[track_caller]
pub fn check_error_body(status: u16, body: &Value, secrets: &[&str], sent: &str) {
    let top = body
        .as_object()
        .unwrap_or_else(|| panic!("{status}: error body is not an object: {body}"));
    for k in top.keys() {
        assert!(
            [
                "error",
                "execution_id",
                "version",
                "fuel_used",
                "duration_ms"
            ]
            .contains(&k.as_str()),
            "{status}: unexpected top-level field {k:?} in {body}"
        );
    }
    let error = top
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{status}: no error object in {body}"));
    for k in error.keys() {
        assert!(
            ["kind", "message", "violations", "reason"].contains(&k.as_str()),
            "{status}: unexpected error field {k:?} in {body}"
        );
    }
    // A gateway rejection's reason fits its status.
    if let Some(reason) = error.get("reason") {
        let fits = match status {
            403 => ["not_allowed", "denied"].contains(&reason.as_str().unwrap_or("")),
            429 => reason == "budget_exhausted",
            _ => false,
        };
        assert!(fits, "{status} does not fit reason {reason}: {body}");
    }
    let kind = error
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{status}: no kind in {body}"));
    assert!(
        error_kinds().contains(kind),
        "{status}: {kind:?} is not a product kind"
    );
    assert!(
        kinds_for(status).contains(&kind),
        "{status} does not fit kind {kind:?}: {body}"
    );
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{status}: no message in {body}"));
    assert!(
        !message.trim().is_empty(),
        "{status}: empty message in {body}"
    );
    let lower = message.to_lowercase();
    for leak in LEAKS.iter().filter(|l| !sent.contains(*l)) {
        assert!(
            !lower.contains(leak),
            "{status}: message leaks {leak:?}: {message}"
        );
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !message.contains(secret),
            "{status}: message names a secret (the data dir or a key): {message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_well_formed_error_passes_and_ok_is_not_an_error_kind() {
        let body = json!({"error": {"kind": "not_found", "message": "function x not found"}});
        check_error_body(404, &body, &["/data"], "");
        assert!(error_kinds().contains("payload_too_large"));
        assert!(error_kinds().contains("fuel_exhausted"));
        assert!(!error_kinds().contains("ok"));
    }

    #[test]
    fn wrong_kinds_shapes_leaks_and_secrets_fail() {
        let bad = [
            (
                404,
                json!({"error": {"kind": "forbidden", "message": "x"}}),
                "",
            ),
            (404, json!({"error": "not_found"}), ""),
            (404, json!({"kind": "not_found", "message": "x"}), ""),
            (400, json!({"error": {"kind": "bogus", "message": "x"}}), ""),
            (
                400,
                json!({"error": {"kind": "invalid_request", "message": " "}}),
                "",
            ),
            (
                500,
                json!({"error": {"kind": "internal", "message": "rusqlite::Error"}}),
                "",
            ),
            (
                500,
                json!({"error": {"kind": "internal", "message": "at /data/x"}}),
                "",
            ),
            // Quoting the client is fine, but not for another leak word.
            (
                400,
                json!({"error": {"kind": "invalid_request", "message": "bad a::b at x.rs:1"}}),
                "a::b",
            ),
        ];
        for (status, body, sent) in bad {
            let caught =
                std::panic::catch_unwind(|| check_error_body(status, &body, &["/data"], sent));
            assert!(caught.is_err(), "accepted {status} {body}");
        }
        let quoted = json!({"error": {"kind": "invalid_request", "message": "unknown field a::b"}});
        check_error_body(400, &quoted, &[], "a::b");
    }
}
