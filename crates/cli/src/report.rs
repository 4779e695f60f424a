//! A version as a reader sees it: the inspection report, the input schema
//! and the limits it runs with. Plain words only: no `null`, no Rust names.

use aifn_service::VersionInfo;
use aifn_types::{InspectionReport, Limits, LimitsRequest, ScriptReport, TestResult};

use crate::output::out;

/// Prints what approvers inspect in a report.
pub(crate) fn print_report(r: &InspectionReport) {
    let m = &r.module;
    out!(
        "  size {} bytes, {} functions, code {} bytes",
        m.size_bytes,
        m.function_count,
        m.code_size_bytes
    );
    let imports: Vec<String> = m.imports.iter().map(|i| i.qualified()).collect();
    out!("  imports: {}", list_or_none(&imports));
    out!(
        "  uses WASI (zero capabilities): {}",
        if m.uses_wasi { "yes" } else { "no" }
    );
    if !m.features.is_empty() {
        out!("  features: {}", m.features.join(", "));
    }
    if let Some(mem) = &m.memory {
        let max = mem
            .max_pages
            .map_or("none declared".to_owned(), |p| p.to_string());
        out!("  memory: {} pages initial, max {max}", mem.min_pages);
    }
    if let Some(s) = &m.script {
        print_script(s);
    }
    print_limits(&r.requested_limits, &r.effective_limits);
    if let Some(d) = &r.diff {
        out!(
            "  since v{}: imports +{} -{}, size {:+} bytes",
            d.previous_version,
            list_or_none(&d.imports_added),
            list_or_none(&d.imports_removed),
            d.size_change_bytes
        );
    }
    print_tests(&r.tests);
}

/// A JavaScript version: its source, its engine and the checklist.
fn print_script(s: &ScriptReport) {
    out!(
        "  javascript: source {} bytes, sha256 {}; bytecode {} bytes",
        s.source_bytes,
        s.source_sha256,
        s.bytecode_bytes
    );
    let current = aifn_runtime::current_js_engine();
    let which = if s.engine == current {
        "the engine this aifn builds new versions with".to_owned()
    } else {
        format!(
            "an older engine than this aifn's {} {}: it keeps running on it; re-approving on the new one is a new version",
            current.name, current.version
        )
    };
    out!(
        "  engine: {} {}, sha256 {} ({which})",
        s.engine.name,
        s.engine.version,
        s.engine.sha256
    );
    if s.findings.is_empty() {
        out!("  checklist: no findings");
        return;
    }
    out!(
        "  checklist: {} findings (warnings, not refusals)",
        s.findings.len()
    );
    for f in &s.findings {
        out!(
            "    line {}:{}  {}  {}",
            f.line,
            f.column,
            f.rule.as_str(),
            f.message
        );
    }
}

/// Prints a source with line numbers, as approvers read it.
pub(crate) fn print_numbered(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let width = lines.len().to_string().len();
    for (i, line) in lines.iter().enumerate() {
        out!("  {:>width$} | {line}", i + 1);
    }
}

/// One test's result in one line: name, verdict, expectation, outcome.
pub(crate) fn test_line(t: &TestResult) -> String {
    let verdict = if t.passed { "passed" } else { "FAILED" };
    let mut line = format!(
        "{} {verdict}: expected {}, got {}, fuel {}, {:.3} ms",
        t.name, t.expected, t.kind, t.fuel_used, t.duration_ms
    );
    if let Some(h) = &t.output_sha256 {
        line.push_str(&format!(", output sha256 {h}"));
    }
    if let Some(m) = &t.message {
        line.push_str(&format!(" ({m})"));
    }
    line
}

/// The manifest tests as run at upload.
fn print_tests(tests: &[TestResult]) {
    if tests.is_empty() {
        return;
    }
    let failed = tests.iter().filter(|t| !t.passed).count();
    out!("  tests: {} passed, {failed} failed", tests.len() - failed);
    for t in tests {
        out!("    {}", test_line(t));
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// The limits a call runs with, and which of them the manifest lowered.
fn print_limits(requested: &LimitsRequest, l: &Limits) {
    out!(
        "  runs with: fuel {}, timeout {} ms, memory {} bytes, input {} bytes, output {} bytes, log {} bytes",
        l.fuel,
        l.timeout_ms,
        l.memory_bytes,
        l.input_bytes,
        l.output_bytes,
        l.log_bytes
    );
    let asked: Vec<String> = [
        ("fuel", requested.fuel),
        ("timeout_ms", requested.timeout_ms),
        ("memory_bytes", requested.memory_bytes),
        ("table_elements", requested.table_elements),
        ("input_bytes", requested.input_bytes),
        ("output_bytes", requested.output_bytes),
        ("log_bytes", requested.log_bytes),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
    .collect();
    if !asked.is_empty() {
        out!("  the manifest asks for: {}", asked.join(", "));
    }
}

/// Prints one version: who, when, state, hash, description, input schema,
/// report and decisions.
pub(crate) fn print_version(v: &VersionInfo) {
    out!(
        "{}@{}  {}  by {}  at {}",
        v.name,
        v.version,
        v.state,
        v.author,
        v.uploaded_at
    );
    out!("  sha256 {}", v.sha256);
    if let Some(src) = &v.source {
        out!(
            "  source: {}, {} bytes, sha256 {} (built by the server: `aifn fetch --source` reads it)",
            src.language,
            src.size_bytes,
            src.sha256
        );
    }
    out!("  {}", v.manifest.description);
    let schema = serde_json::to_string(&v.manifest.input_schema).unwrap_or_default();
    out!("  input schema: {schema}");
    if let Some(o) = &v.manifest.output_schema {
        out!(
            "  output schema: {}",
            serde_json::to_string(o).unwrap_or_default()
        );
    }
    print_report(&v.report);
    for d in &v.decisions {
        let overridden = if d.override_failing_tests {
            " (overriding failing tests)"
        } else {
            ""
        };
        out!(
            "  {} by {} at {}{overridden}: {}",
            d.action,
            d.actor,
            d.at,
            d.notes
        );
    }
}
