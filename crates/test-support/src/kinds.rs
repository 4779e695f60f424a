//! Which error kinds may come with which HTTP status: the oracle the
//! server's tests and the `http_request` fuzz target check answers against.

/// The kinds a module's run can end in: `ok`, a limit, a trap, a bad
/// output or a function error (never a refusal, never `invalid_input`).
pub const RUN_KINDS: &[&str] = &[
    "ok",
    "fuel_exhausted",
    "timeout",
    "memory_limit",
    "stack_overflow",
    "trap",
    "output_too_large",
    "invalid_output",
    "function_error",
];

/// The kinds that refuse a module, at upload or load.
pub const MODULE_REFUSALS: &[&str] = &["invalid_module", "forbidden_import", "compile_timeout"];

/// The kinds that refuse an output after the run: the output guard withheld
/// it (answered 422 like a failed run).
const POST_RUN_REFUSALS: &[&str] = &["output_blocked"];

/// The kinds that may come with an error `status` (none for a status the
/// API never answers with an error body).
pub fn kinds_for(status: u16) -> Vec<&'static str> {
    let one: &[&str] = match status {
        400 => &["invalid_request", "invalid_input"],
        401 => &["unauthenticated"],
        403 => &["forbidden"],
        404 => &["not_found"],
        405 => &["invalid_request"],
        409 => &["conflict", "not_active"],
        413 => &["payload_too_large"],
        // A refused module, or a call that ran and failed or was blocked.
        422 => {
            return MODULE_REFUSALS
                .iter()
                .chain(&RUN_KINDS[1..])
                .chain(POST_RUN_REFUSALS)
                .copied()
                .collect();
        }
        429 => &["rate_limited"],
        500 => &["internal"],
        503 => &["unavailable"],
        _ => &[],
    };
    one.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_fits_422_and_a_success_fits_no_error_status() {
        let unprocessable = kinds_for(422);
        assert_eq!(unprocessable.len(), 12);
        assert!(unprocessable.contains(&"compile_timeout"));
        assert!(unprocessable.contains(&"output_blocked"));
        assert!(unprocessable.contains(&"function_error"));
        for status in [200, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503] {
            assert!(!kinds_for(status).contains(&"ok"), "{status}");
        }
        assert_eq!(kinds_for(404), ["not_found"]);
        assert!(kinds_for(418).is_empty());
    }
}
