//! Complete diffs between two versions of a function, for approvers: the
//! manifest (description, schemas as structural JSON diffs, limits,
//! capture, output guard, tests), the inspection report (imports,
//! exports, features, memory, table, sizes, effective limits, test
//! results) and, for source-uploaded functions, a line diff of the
//! source. [`VersionDiff::between`] is pure; [`Service::diff`](crate::Service::diff)
//! picks the versions to compare.

mod json;
mod lines;
mod manifest_tests;
mod report;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aifn_registry::VersionInfo;
use aifn_types::{ModuleReport, Source};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use json::{JsonChange, JsonChangeKind, json_diff};

/// The time one [`VersionDiff`] may spend aligning (source lines, schema
/// arrays) before it settles for a correct, not minimal, alignment.
const DIFF_TIME: Duration = Duration::from_secs(1);
pub use lines::{SourceDiff, line_diff};
pub use manifest_tests::{TestChange, TestChangeKind};

/// The diffs of one version against the versions it is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    /// The version the diffs are of (the "after" side of each).
    pub version: u32,
    /// One diff per version compared against: the previous one and the
    /// active one (when that is another), or the one asked for.
    pub diffs: Vec<VersionDiff>,
}

/// Why a version is compared against another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffRelation {
    /// The version before it.
    Previous,
    /// The version that runs now.
    Active,
    /// The one the caller named.
    Chosen,
}

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    /// In the version compared against.
    pub before: T,
    /// In this version.
    pub after: T,
}

impl<T: PartialEq + Clone> Change<T> {
    /// The change, if the two differ.
    fn of(before: &T, after: &T) -> Option<Change<T>> {
        (before != after).then(|| Change {
            before: before.clone(),
            after: after.clone(),
        })
    }
}

/// A numeric field that differs (a limit, a size); `None` is absent (a
/// limit the manifest does not ask for takes the host's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's name, as in the manifest or the report.
    pub field: String,
    /// Its value in the version compared against.
    pub before: Option<u64>,
    /// Its value in this version.
    pub after: Option<u64>,
}

/// Everything that differs between two versions of one function. Only
/// what changed is listed: two identical versions give an empty diff
/// ([`VersionDiff::is_empty`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDiff {
    /// The version compared against (the "before" side).
    pub against: u32,
    /// Why that one.
    pub relation: DiffRelation,
    /// The module hashes, always shown (equal when the code is the same).
    pub sha256: Change<String>,
    /// The description, if it changed.
    pub description: Option<Change<String>>,
    /// The input schema's changes.
    pub input_schema: Vec<JsonChange>,
    /// The output schema's changes (one at `""` when it appears or goes).
    pub output_schema: Vec<JsonChange>,
    /// The limits the manifest asks for.
    pub requested_limits: Vec<FieldChange>,
    /// The limits calls run with.
    pub effective_limits: Vec<FieldChange>,
    /// The capture policy (`null`: no capture), if it changed.
    pub capture: Option<Change<Value>>,
    /// The manifest's output guard mode (`null`: the tenant's), if it changed.
    pub output_guard: Option<Change<Value>>,
    /// Imports (`module.name`) added: new capabilities.
    pub imports_added: Vec<String>,
    /// Imports no longer there.
    pub imports_removed: Vec<String>,
    /// Exports added.
    pub exports_added: Vec<String>,
    /// Exports removed.
    pub exports_removed: Vec<String>,
    /// Wasm features added.
    pub features_added: Vec<String>,
    /// Wasm features removed.
    pub features_removed: Vec<String>,
    /// Whether the module has a start function (it runs at instantiation),
    /// if that changed.
    pub has_start: Option<Change<bool>>,
    /// The memory (`{min_pages, max_pages}` or `null`), if it changed.
    pub memory: Option<Change<Value>>,
    /// The table (`{min, max}` or `null`), if it changed.
    pub table: Option<Change<Value>>,
    /// `size_bytes`, `code_size_bytes`, `function_count`,
    /// `largest_function_bytes`, those that changed.
    pub sizes: Vec<FieldChange>,
    /// Tests added, removed, redefined, or whose result changed.
    pub tests: Vec<TestChange>,
    /// The source's line diff, when either version was uploaded as source
    /// and the texts differ.
    pub source: Option<SourceDiff>,
}

/// The changed fields of two JSON objects of numbers (limits).
fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (bv, av) = (
                b.get(k).and_then(Value::as_u64),
                a.get(k).and_then(Value::as_u64),
            );
            (bv != av).then(|| FieldChange {
                field: k.clone(),
                before: bv,
                after: av,
            })
        })
        .collect()
}

fn as_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn added_removed(before: Vec<String>, after: Vec<String>) -> (Vec<String>, Vec<String>) {
    let (b, a): (BTreeSet<String>, BTreeSet<String>) =
        (before.into_iter().collect(), after.into_iter().collect());
    (
        a.difference(&b).cloned().collect(),
        b.difference(&a).cloned().collect(),
    )
}

fn sizes(b: &ModuleReport, a: &ModuleReport) -> Vec<FieldChange> {
    [
        ("size_bytes", b.size_bytes, a.size_bytes),
        ("code_size_bytes", b.code_size_bytes, a.code_size_bytes),
        ("function_count", b.function_count, a.function_count),
        (
            "largest_function_bytes",
            b.largest_function_bytes,
            a.largest_function_bytes,
        ),
    ]
    .into_iter()
    .filter(|(_, b, a)| b != a)
    .map(|(field, b, a)| FieldChange {
        field: field.into(),
        before: Some(b),
        after: Some(a),
    })
    .collect()
}

/// The label of one side of a source diff.
fn label(info: &VersionInfo, source: Option<&Source>) -> String {
    match source {
        Some(_) => format!("{}@{}", info.name, info.version),
        None => format!("{}@{} (no source)", info.name, info.version),
    }
}

impl VersionDiff {
    /// Everything that differs from `before` (with its source, if it was
    /// uploaded as one) to `after`.
    pub fn between(
        relation: DiffRelation,
        (before, before_source): (&VersionInfo, Option<&Source>),
        (after, after_source): (&VersionInfo, Option<&Source>),
    ) -> VersionDiff {
        let (bm, am) = (&before.manifest, &after.manifest);
        let (br, ar) = (&before.report.module, &after.report.module);
        let imports = |r: &ModuleReport| r.imports.iter().map(|i| i.qualified()).collect();
        let exports = |r: &ModuleReport| r.exports.iter().map(|e| e.name.clone()).collect();
        let (imports_added, imports_removed) = added_removed(imports(br), imports(ar));
        let (exports_added, exports_removed) = added_removed(exports(br), exports(ar));
        let (features_added, features_removed) =
            added_removed(br.features.clone(), ar.features.clone());
        // One time budget for the whole diff: every part of it is the
        // author's to make large, the time is the host's.
        let deadline = Instant::now() + DIFF_TIME;
        let source = match (before_source, after_source) {
            (None, None) => None,
            (b, a) => lines::line_diff_until(
                b.map_or("", |s| s.text.as_str()),
                a.map_or("", |s| s.text.as_str()),
                (&label(before, b), &label(after, a)),
                deadline,
            ),
        };
        VersionDiff {
            against: before.version,
            relation,
            sha256: Change {
                before: before.sha256.clone(),
                after: after.sha256.clone(),
            },
            description: Change::of(&bm.description, &am.description),
            input_schema: json::json_diff_until(&bm.input_schema, &am.input_schema, deadline),
            output_schema: json::optional_diff(
                bm.output_schema.as_ref(),
                am.output_schema.as_ref(),
                deadline,
            ),
            requested_limits: field_changes(&as_json(&bm.limits), &as_json(&am.limits)),
            effective_limits: field_changes(
                &as_json(&before.report.effective_limits),
                &as_json(&after.report.effective_limits),
            ),
            capture: Change::of(&as_json(&bm.capture), &as_json(&am.capture)),
            output_guard: Change::of(&as_json(&bm.output_guard), &as_json(&am.output_guard)),
            imports_added,
            imports_removed,
            exports_added,
            exports_removed,
            features_added,
            features_removed,
            has_start: Change::of(&br.has_start, &ar.has_start),
            memory: Change::of(&as_json(&br.memory), &as_json(&ar.memory)),
            table: Change::of(&as_json(&br.table), &as_json(&ar.table)),
            sizes: sizes(br, ar),
            tests: manifest_tests::test_changes(
                (&bm.tests, &before.report.tests),
                (&am.tests, &after.report.tests),
                deadline,
            ),
            source,
        }
    }

    /// Whether nothing differs: the same module hash and no change listed.
    pub fn is_empty(&self) -> bool {
        self.sha256.before == self.sha256.after
            && self.description.is_none()
            && self.input_schema.is_empty()
            && self.output_schema.is_empty()
            && self.requested_limits.is_empty()
            && self.effective_limits.is_empty()
            && self.capture.is_none()
            && self.output_guard.is_none()
            && self.imports_added.is_empty()
            && self.imports_removed.is_empty()
            && self.exports_added.is_empty()
            && self.exports_removed.is_empty()
            && self.features_added.is_empty()
            && self.features_removed.is_empty()
            && self.has_start.is_none()
            && self.memory.is_none()
            && self.table.is_none()
            && self.sizes.is_empty()
            && self.tests.is_empty()
            && self.source.is_none()
    }
}
