//! How the manifest's tests and their upload results changed: tests are
//! matched by name.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aifn_types::{ManifestTest, TestResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::{JsonChange, optional_diff};

/// What happened to one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestChangeKind {
    /// A test only the after version has.
    Added,
    /// A test only the before version has.
    Removed,
    /// The same name with another input or expectation.
    DefinitionChanged,
    /// The same definition with another result: passed or failed, the
    /// outcome kind, or the output's hash (fuel and duration are not
    /// compared: any change of code moves them).
    ResultChanged,
}

/// One test that differs between the two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestChange {
    /// The test's name.
    pub name: String,
    /// What happened.
    pub change: TestChangeKind,
    /// The definition's changes (input, expectation) as a structural diff:
    /// for an added or removed test, the whole definition at `""`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub definition: Vec<JsonChange>,
    /// Its result at upload in the before version, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<TestResult>,
    /// Its result at upload in the after version, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<TestResult>,
}

/// A test's definition without its name, for the structural diff.
fn definition(t: &ManifestTest) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.remove("name");
    }
    v
}

/// What decides whether a result changed.
fn verdict(r: &TestResult) -> (bool, aifn_types::OutcomeKind, Option<&str>) {
    (r.passed, r.kind, r.output_sha256.as_deref())
}

/// The first of each name, by name (the registry refuses duplicates).
fn by_name<T>(items: &[T], name: impl Fn(&T) -> &str) -> BTreeMap<&str, &T> {
    let mut m = BTreeMap::new();
    for it in items {
        m.entry(name(it)).or_insert(it);
    }
    m
}

/// The changes between two versions' tests: the after manifest's order,
/// then the removed tests in the before manifest's order.
pub(crate) fn test_changes(
    (before_tests, before_results): (&[ManifestTest], &[TestResult]),
    (after_tests, after_results): (&[ManifestTest], &[TestResult]),
    deadline: Instant,
) -> Vec<TestChange> {
    let old = by_name(before_tests, |t| t.name.as_str());
    let new = by_name(after_tests, |t| t.name.as_str());
    let old_results = by_name(before_results, |r| r.name.as_str());
    let new_results = by_name(after_results, |r| r.name.as_str());
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let names = after_tests
        .iter()
        .chain(before_tests)
        .map(|t| t.name.as_str());
    for name in names {
        if !seen.insert(name) {
            continue;
        }
        let (b, a) = (old.get(name).copied(), new.get(name).copied());
        let (rb, ra) = (
            old_results.get(name).copied(),
            new_results.get(name).copied(),
        );
        let definition = optional_diff(
            b.map(definition).as_ref(),
            a.map(definition).as_ref(),
            deadline,
        );
        let change = match (b, a) {
            (None, _) => TestChangeKind::Added,
            (_, None) => TestChangeKind::Removed,
            _ if !definition.is_empty() => TestChangeKind::DefinitionChanged,
            _ if rb.map(verdict) != ra.map(verdict) => TestChangeKind::ResultChanged,
            _ => continue,
        };
        out.push(TestChange {
            name: name.to_owned(),
            change,
            definition,
            before: rb.cloned(),
            after: ra.cloned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aifn_types::OutcomeKind;
    use serde_json::json;

    fn soon() -> Instant {
        Instant::now() + super::super::json::JSON_DIFF_TIME
    }

    fn test(name: &str, input: Value, expect: Value) -> ManifestTest {
        ManifestTest {
            name: name.into(),
            input,
            expect_output: Some(expect),
            expect_kind: None,
            expect_output_schema: None,
        }
    }

    fn result(name: &str, passed: bool, sha: &str) -> TestResult {
        TestResult {
            name: name.into(),
            passed,
            expected: "output".into(),
            kind: OutcomeKind::Ok,
            output_sha256: Some(sha.into()),
            fuel_used: 10,
            duration_ms: 0.5,
            message: None,
        }
    }

    #[test]
    fn the_same_tests_with_the_same_results_are_no_change() {
        let t = [test("a", json!({}), json!(1))];
        let r = [result("a", true, "aa")];
        assert!(test_changes((&t, &r), (&t, &r), soon()).is_empty());
        // Fuel and duration move with any code change: not a change.
        let mut slower = r.clone();
        slower[0].fuel_used = 99;
        slower[0].duration_ms = 7.0;
        assert!(test_changes((&t, &r), (&t, &slower), soon()).is_empty());
        // Pair: a test that now fails is.
        let failing = [result("a", false, "aa")];
        let d = test_changes((&t, &r), (&t, &failing), soon());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].change, TestChangeKind::ResultChanged);
        assert!(d[0].definition.is_empty());
        assert_eq!(d[0].after.as_ref().map(|r| r.passed), Some(false));
    }

    #[test]
    fn added_removed_and_redefined_tests() {
        let before = [
            test("kept", json!({"x": 1}), json!(1)),
            test("gone", json!({}), json!(2)),
        ];
        let after = [
            test("new", json!({}), json!(3)),
            test("kept", json!({"x": 2}), json!(1)),
        ];
        let d = test_changes((&before, &[]), (&after, &[]), soon());
        let kinds: Vec<_> = d.iter().map(|c| (c.name.as_str(), c.change)).collect();
        assert_eq!(
            kinds,
            [
                ("new", TestChangeKind::Added),
                ("kept", TestChangeKind::DefinitionChanged),
                ("gone", TestChangeKind::Removed),
            ]
        );
        assert_eq!(d[0].definition[0].path, "");
        assert_eq!(d[1].definition.len(), 1);
        assert_eq!(d[1].definition[0].path, "/input/x");
        assert_eq!(
            d[2].definition[0].before,
            Some(json!({"input": {}, "expect_output": 2}))
        );
    }

    #[test]
    fn a_changed_output_hash_is_a_changed_result() {
        let t = [test("a", json!({}), json!(1))];
        let d = test_changes(
            (&t, &[result("a", true, "aa")]),
            (&t, &[result("a", true, "bb")]),
            soon(),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].change, TestChangeKind::ResultChanged);
    }
}
