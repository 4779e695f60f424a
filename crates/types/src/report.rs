use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Limits, LimitsRequest, OutcomeKind};

/// One import of a module: its only way to reach the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImportInfo {
    /// Import module (`aifn` or `wasi_snapshot_preview1`).
    pub module: String,
    /// Import name.
    pub name: String,
    /// `func`, `memory`, `table`, `global` or `tag`.
    pub kind: String,
    /// The type, e.g. `(i32, i32) -> ()`.
    pub signature: String,
}

impl ImportInfo {
    /// `module.name`, as used in errors and diffs.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// One export of a module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExportInfo {
    /// Export name.
    pub name: String,
    /// `func`, `memory`, `table`, `global` or `tag`.
    pub kind: String,
}

/// The module's linear memory, in 64 KiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    /// Initial pages.
    pub min_pages: u64,
    /// Declared maximum pages, if any (the host limit applies regardless).
    pub max_pages: Option<u64>,
}

/// The module's table, in elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Initial elements.
    pub min: u64,
    /// Declared maximum, if any (the host limit applies regardless).
    pub max: Option<u64>,
}

/// What static inspection of a module finds, before it ever runs. Produced
/// by the runtime's validator; shown to approvers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleReport {
    /// Lowercase hex sha256 of the module bytes.
    pub sha256: String,
    /// Size of the module in bytes.
    pub size_bytes: u64,
    /// Every import, in module order.
    pub imports: Vec<ImportInfo>,
    /// Every export, in module order.
    pub exports: Vec<ExportInfo>,
    /// The memory, defined or imported.
    pub memory: Option<MemoryInfo>,
    /// The table, if any.
    pub table: Option<TableInfo>,
    /// Functions defined by the module (imports not counted).
    pub function_count: u64,
    /// Bytes of function bodies.
    pub code_size_bytes: u64,
    /// The largest function body in bytes.
    pub largest_function_bytes: u64,
    /// Wasm proposals the module needs beyond the MVP, e.g. `bulk_memory`.
    pub features: Vec<String>,
    /// Whether it imports the zero-capability `wasi_snapshot_preview1`.
    pub uses_wasi: bool,
    /// Whether it has a start function (runs at instantiation).
    pub has_start: bool,
    /// For a JavaScript function: its source, engine and checklist
    /// findings (the fields above then describe the engine module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<crate::ScriptReport>,
}

/// How a version's report differs from the previous version's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDiff {
    /// The version compared against.
    pub previous_version: u32,
    /// Imports (`module.name`) the new version adds: new capabilities.
    pub imports_added: Vec<String>,
    /// Imports the new version no longer has.
    pub imports_removed: Vec<String>,
    /// Exports added.
    pub exports_added: Vec<String>,
    /// Exports removed.
    pub exports_removed: Vec<String>,
    /// Features added.
    pub features_added: Vec<String>,
    /// Features removed.
    pub features_removed: Vec<String>,
    /// New size minus old size, in bytes.
    pub size_change_bytes: i64,
    /// New code size minus old code size, in bytes.
    pub code_size_change_bytes: i64,
}

fn added_removed(old: &BTreeSet<String>, new: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    (
        new.difference(old).cloned().collect(),
        old.difference(new).cloned().collect(),
    )
}

impl ReportDiff {
    /// Compares `new` against `old`, the report of `previous_version`.
    pub fn between(previous_version: u32, old: &ModuleReport, new: &ModuleReport) -> ReportDiff {
        let imports = |r: &ModuleReport| {
            r.imports
                .iter()
                .map(ImportInfo::qualified)
                .collect::<BTreeSet<_>>()
        };
        let exports = |r: &ModuleReport| {
            r.exports
                .iter()
                .map(|e| e.name.clone())
                .collect::<BTreeSet<_>>()
        };
        let features = |r: &ModuleReport| r.features.iter().cloned().collect::<BTreeSet<_>>();
        let (imports_added, imports_removed) = added_removed(&imports(old), &imports(new));
        let (exports_added, exports_removed) = added_removed(&exports(old), &exports(new));
        let (features_added, features_removed) = added_removed(&features(old), &features(new));
        let delta = |a: u64, b: u64| {
            i64::try_from(b).unwrap_or(i64::MAX) - i64::try_from(a).unwrap_or(i64::MAX)
        };
        ReportDiff {
            previous_version,
            imports_added,
            imports_removed,
            exports_added,
            exports_removed,
            features_added,
            features_removed,
            size_change_bytes: delta(old.size_bytes, new.size_bytes),
            code_size_change_bytes: delta(old.code_size_bytes, new.code_size_bytes),
        }
    }
}

/// The inspection report stored with a version and shown to approvers:
/// the static module facts, the limits the manifest asks for and the limits
/// it will actually run with, and what changed since the previous version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionReport {
    /// Static facts about the module.
    pub module: ModuleReport,
    /// The limits the manifest asks for.
    pub requested_limits: LimitsRequest,
    /// The limits calls will run with (host maxima lowered by the request).
    pub effective_limits: Limits,
    /// Difference from the previous version, if there is one.
    pub diff: Option<ReportDiff>,
    /// The manifest's tests as run at upload, in manifest order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResult>,
}

impl InspectionReport {
    /// The names of the tests that failed at upload.
    pub fn failing_tests(&self) -> Vec<&str> {
        self.tests
            .iter()
            .filter(|t| !t.passed)
            .map(|t| t.name.as_str())
            .collect()
    }
}

/// One manifest test as run at upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// Whether the outcome met the expectation.
    pub passed: bool,
    /// What was expected, e.g. `output`, `kind fuel_exhausted`,
    /// `output_schema`.
    pub expected: String,
    /// How the run ended.
    pub kind: OutcomeKind,
    /// Lowercase hex sha256 of the output bytes, if there was output.
    pub output_sha256: Option<String>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time of the run in milliseconds.
    pub duration_ms: f64,
    /// Why it failed (or the run's error message); `None` when it passed
    /// cleanly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(imports: &[(&str, &str)], size: u64) -> ModuleReport {
        ModuleReport {
            sha256: "00".repeat(32),
            size_bytes: size,
            imports: imports
                .iter()
                .map(|(m, n)| ImportInfo {
                    module: (*m).into(),
                    name: (*n).into(),
                    kind: "func".into(),
                    signature: "() -> i32".into(),
                })
                .collect(),
            exports: vec![],
            memory: None,
            table: None,
            function_count: 1,
            code_size_bytes: size / 2,
            largest_function_bytes: 1,
            features: vec![],
            uses_wasi: false,
            has_start: false,
            script: None,
        }
    }

    #[test]
    fn diff_names_added_and_removed_imports_and_size() {
        let old = report(&[("aifn", "input_len"), ("aifn", "log")], 100);
        let new = report(
            &[
                ("aifn", "input_len"),
                ("wasi_snapshot_preview1", "fd_write"),
            ],
            150,
        );
        let d = ReportDiff::between(1, &old, &new);
        assert_eq!(d.imports_added, ["wasi_snapshot_preview1.fd_write"]);
        assert_eq!(d.imports_removed, ["aifn.log"]);
        assert_eq!(d.size_change_bytes, 50);
        assert_eq!(d.code_size_change_bytes, 25);
    }
}
