//! The manifest's tests, run at upload against the new version in the
//! sandbox under its effective limits, with the input checks, output
//! checks and output guard of an invocation. Each run is recorded as a
//! test run (the uploader as agent and user) before the next one starts;
//! if a record cannot be written the upload fails and nothing is stored.
//! They count against the tenant's hourly test runs, as `aifn test` runs do.

use aifn_registry::Principal;
use aifn_runtime::LoadedModule;
use aifn_types::{
    Context, Expectation, FunctionName, Manifest, ManifestTest, OutcomeKind, RunKind, TestResult,
};
use serde_json::Value;

use crate::gateway::TenantView;
use crate::run::{Attempt, Finished, RunSpec, Runnable};
use crate::schema::{compile_schema, count, violations};
use crate::{Service, ServiceError, ids};

impl Service {
    /// Counts the manifest's tests against the tenant's hourly test runs,
    /// all or none: an upload whose tests do not fit is refused.
    pub(crate) fn admit_manifest_tests(
        &self,
        who: &Principal,
        manifest: &Manifest,
    ) -> Result<(), ServiceError> {
        // At most MAX_TESTS (32): checked with the manifest.
        let n = u32::try_from(manifest.tests.len()).unwrap_or(u32::MAX);
        let now = self.inner.gateway.clock.now();
        self.inner
            .test_runs
            .admit_many(&who.tenant, now, n)
            .map_err(|retry_after| ServiceError::RateLimited {
                retry_after,
                scope: "test_runs",
            })
    }

    /// Runs every test of `manifest` on `module` as `name@version` of the
    /// uploader's tenant; the results in manifest order.
    pub(crate) fn run_manifest_tests(
        &self,
        who: &Principal,
        name: &FunctionName,
        manifest: &Manifest,
        module: &LoadedModule,
        version: u32,
    ) -> Result<Vec<TestResult>, ServiceError> {
        if manifest.tests.is_empty() {
            return Ok(Vec::new());
        }
        // Limits the host cannot grant: the registry refuses the upload
        // (and records why) before it looks at any result.
        let Ok(limits) = self.inner.runtime.limits().narrowed(&manifest.limits) else {
            return Ok(Vec::new());
        };
        let input = compile_schema("input_schema", &manifest.input_schema)?;
        let output = manifest
            .output_schema
            .as_ref()
            .map(|s| compile_schema("output_schema", s))
            .transpose()?;
        let version_to_run = Runnable {
            module,
            sha256: module.sha256(),
            input: &input,
            output: output.as_ref(),
            limits,
            output_guard: manifest.output_guard,
        };
        let tenant = self.tenant_view(&who.tenant)?;
        let run = Candidate {
            who,
            name,
            version,
            runnable: &version_to_run,
            tenant: &tenant,
        };
        manifest
            .tests
            .iter()
            .map(|test| self.run_manifest_test(&run, test))
            .collect()
    }

    fn run_manifest_test(
        &self,
        run: &Candidate<'_>,
        test: &ManifestTest,
    ) -> Result<TestResult, ServiceError> {
        let expectation = test
            .expectation()
            .map_err(|message| ServiceError::InvalidRequest { message })?;
        let now = crate::run::start_time();
        let ctx = Context {
            tenant_id: run.who.tenant.to_string(),
            agent_id: run.who.subject.to_string(),
            user_id: run.who.subject.to_string(),
            function: run.name.to_string(),
            version: run.version.to_string(),
            execution_id: ids::execution_id(now),
        };
        let mut at = Attempt::new(ctx, now, RunKind::TestRun);
        at.test_name = Some(test.name.clone());
        // Serializing a `Value` cannot fail (its keys are strings).
        let input = serde_json::to_vec(&test.input).unwrap_or_default();
        let spec = RunSpec {
            version: run.runnable,
            tenant: run.tenant,
            guest: &at.ctx,
            start_time: now,
            input: &input,
        };
        let finished = self.run_recorded(&at, &spec)?;
        // No slot now: the upload is refused (429), not stored with a
        // failing test.
        if let Some(refused) = finished.no_capacity() {
            return Err(refused);
        }
        Ok(judge(&test.name, expectation, finished))
    }
}

/// The version being uploaded, as its tests run it.
struct Candidate<'a> {
    who: &'a Principal,
    name: &'a FunctionName,
    version: u32,
    runnable: &'a Runnable<'a>,
    tenant: &'a TenantView,
}

/// Whether the run met the expectation, and the result to store.
fn judge(name: &str, expectation: Expectation<'_>, finished: Finished) -> TestResult {
    let kind = finished.kind();
    let (output, run_message, fuel_used) = match &finished.outcome {
        Ok(ran) => (
            ran.checked.output.as_ref(),
            ran.checked.message.clone(),
            ran.exec.fuel_used,
        ),
        Err(e) => (None, Some(e.to_string()), 0),
    };
    let failure = failure(expectation, kind, output);
    let passed = failure.is_none();
    let message = match (failure, run_message) {
        (Some(why), Some(run)) => Some(format!("{why} ({run})")),
        (why, run) => why.or(run),
    };
    TestResult {
        name: name.to_owned(),
        passed,
        expected: match expectation {
            Expectation::Output(_) => "output".to_owned(),
            Expectation::Kind(k) => format!("kind {k}"),
            Expectation::OutputSchema(_) => "output_schema".to_owned(),
        },
        kind,
        output_sha256: finished.output_sha256,
        fuel_used,
        duration_ms: finished.duration.as_secs_f64() * 1000.0,
        message,
    }
}

/// Why the run did not meet the expectation, if it did not.
fn failure(
    expectation: Expectation<'_>,
    kind: OutcomeKind,
    output: Option<&Value>,
) -> Option<String> {
    if let Expectation::Kind(want) = expectation {
        return (kind != want).then(|| format!("expected kind {want}, the run ended in {kind}"));
    }
    if kind != OutcomeKind::Ok {
        return Some(format!("expected an output, the run ended in {kind}"));
    }
    let Some(got) = output else {
        return Some("expected an output, the run wrote none".to_owned());
    };
    match expectation {
        Expectation::Output(want) => first_difference(got, want, String::new()).map(|at| {
            let at = if at.is_empty() { "(root)" } else { &at };
            format!("the output differs from expect_output at {at}")
        }),
        Expectation::OutputSchema(schema) => schema_failure(got, schema),
        Expectation::Kind(_) => None,
    }
}

/// Why the output does not match `schema`, if it does not.
fn schema_failure(got: &Value, schema: &Value) -> Option<String> {
    // It compiled when the manifest was checked.
    let validator = match compile_schema("expect_output_schema", schema) {
        Ok(v) => v,
        Err(e) => return Some(e.to_string()),
    };
    let bad = violations(&validator, got);
    if bad.is_empty() {
        return None;
    }
    let list: Vec<_> = bad
        .iter()
        .map(|b| format!("{}: {}", b.location(), b.message))
        .collect();
    Some(format!(
        "the output does not match expect_output_schema ({}): {}",
        count(bad.len()),
        list.join("; ")
    ))
}

/// The JSON pointer of the first place `got` and `want` differ (values
/// are not shown: the report names where, not what).
fn first_difference(got: &Value, want: &Value, at: String) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let keys: std::collections::BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            keys.into_iter().find_map(|k| {
                let path = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (g.get(k), w.get(k)) {
                    (Some(a), Some(b)) => first_difference(a, b, path),
                    _ => Some(path),
                }
            })
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, format!("{at}/{i}"))),
        _ => (got != want).then_some(at),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_first_difference_is_named_by_its_pointer() {
        let d = |a: Value, b: Value| first_difference(&a, &b, String::new());
        assert_eq!(d(json!({"a": [1, 2]}), json!({"a": [1, 2]})), None);
        assert_eq!(
            d(json!({"a": [1, 2]}), json!({"a": [1, 3]})),
            Some("/a/1".into())
        );
        assert_eq!(
            d(json!({"a": 1}), json!({"a": 1, "b": 2})),
            Some("/b".into())
        );
        assert_eq!(
            d(json!({"a/b": 1}), json!({"a/b": 2})),
            Some("/a~1b".into())
        );
        assert_eq!(d(json!([1]), json!([1, 2])), Some(String::new()));
        assert_eq!(d(json!("a"), json!(1)), Some(String::new()));
    }

    #[test]
    fn each_expectation_passes_on_what_it_expects_only() {
        let kind = Expectation::Kind(OutcomeKind::FuelExhausted);
        assert_eq!(failure(kind, OutcomeKind::FuelExhausted, None), None);
        assert_eq!(
            failure(kind, OutcomeKind::Ok, Some(&json!({}))).as_deref(),
            Some("expected kind fuel_exhausted, the run ended in ok")
        );
        let want = json!({"y": 2});
        let output = Expectation::Output(&want);
        assert_eq!(
            failure(output, OutcomeKind::Ok, Some(&json!({"y": 2}))),
            None
        );
        assert_eq!(
            failure(output, OutcomeKind::Ok, Some(&json!({"y": 3}))).as_deref(),
            Some("the output differs from expect_output at /y")
        );
        assert_eq!(
            failure(output, OutcomeKind::Trap, None).as_deref(),
            Some("expected an output, the run ended in trap")
        );
        assert_eq!(
            failure(output, OutcomeKind::Ok, None).as_deref(),
            Some("expected an output, the run wrote none")
        );
        let schema = json!({"type": "object", "required": ["y"]});
        let shaped = Expectation::OutputSchema(&schema);
        assert_eq!(
            failure(shaped, OutcomeKind::Ok, Some(&json!({"y": 1}))),
            None
        );
        let why = failure(shaped, OutcomeKind::Ok, Some(&json!({"z": 1}))).expect("fails");
        assert!(
            why.starts_with("the output does not match expect_output_schema (1 violation)"),
            "{why}"
        );
    }
}
