//! Reviewing a version: the tenant's pending queue, a version's page
//! (manifest, schemas, limits, inspection report, source, manifest tests,
//! diffs, decisions), the decision forms, and test runs.

use aifn_service::{
    DiffReport, InvokeOutcome, Principal, ServiceError, TestRunRequest, VersionInfo,
};
use aifn_types::{OutcomeKind, Role, Source, VersionState};
use axum::extract::State;
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::html::{self, badge, json, numbered, page, time, version_href};
use super::session::Viewer;
use super::{ConsoleError, FormBody, PagePath, run};
use crate::AppState;
use crate::extract::version as parse_version;

pub(crate) async fn pending(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, ConsoleError> {
    let (s, who) = (state.service, viewer.who().clone());
    let mut versions = run(move || s.list_pending(&who)).await?;
    versions.sort_by(|a, b| {
        b.uploaded_at
            .cmp(&a.uploaded_at)
            .then(b.version.cmp(&a.version))
    });
    Ok(page(
        "Pending versions",
        &viewer,
        html! {
            @if versions.is_empty() {
                p { "Nothing is waiting for a decision." }
            } @else {
                table {
                    thead { tr { th { "Function" } th { "Version" } th { "State" } th { "Author" } th { "Uploaded" } th { "Tests" } } }
                    tbody {
                        @for v in &versions {
                            tr {
                                td { a href=(version_href(v.name.as_str(), v.version)) { (v.name.as_str()) } }
                                td { (v.version) }
                                td { (badge(v.state)) }
                                td { (v.author.as_str()) }
                                td { (time(&v.uploaded_at)) }
                                td { (tests_summary(v)) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn tests_summary(v: &VersionInfo) -> Markup {
    let tests = &v.report.tests;
    let failed = tests.iter().filter(|t| !t.passed).count();
    html! {
        @if tests.is_empty() { "none" }
        @else if failed == 0 { (tests.len()) " passed" }
        @else { span.fail { (failed) " of " (tests.len()) " failed" } }
    }
}

/// What a version's page shows beside the version itself.
struct Review {
    info: VersionInfo,
    source: Option<Source>,
    diff: Option<DiffReport>,
}

async fn load(
    state: &AppState,
    who: &Principal,
    name: String,
    v: u32,
) -> Result<Review, ConsoleError> {
    let (s, who) = (state.service.clone(), who.clone());
    run(move || {
        let info = s.get_version(&who, &name, v)?;
        let reads_code = matches!(who.role, Role::Author | Role::Approver | Role::Admin);
        let source = match info.source {
            Some(_) if reads_code => Some(s.source(&who, (&name, v))?),
            _ => None,
        };
        let diff = if reads_code {
            Some(s.diff(&who, (&name, v), None)?)
        } else {
            None
        };
        Ok(Review { info, source, diff })
    })
    .await
}

pub(crate) async fn version(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath((name, v)): PagePath<(String, String)>,
) -> Result<Html<String>, ConsoleError> {
    let v = parse_version(&v).map_err(|_| not_found(&name))?;
    let review = load(&state, viewer.who(), name, v).await?;
    Ok(version_page(&viewer, &review, None))
}

fn not_found(name: &str) -> ConsoleError {
    ServiceError::NotFound {
        what: format!("version of {name}"),
    }
    .into()
}

fn version_page(viewer: &Viewer, r: &Review, result: Option<Markup>) -> Html<String> {
    let info = &r.info;
    let title = format!("{} v{}", info.name.as_str(), info.version);
    page(
        &title,
        viewer,
        html! {
            p.state { (badge(info.state)) }
            dl.facts {
                dt { "sha256" } dd { code.sha { (info.sha256) } }
                dt { "Author" } dd { (info.author.as_str()) }
                dt { "Uploaded" } dd { (time(&info.uploaded_at)) }
                dt { "Description" } dd.description { (info.manifest.description) }
            }
            (decide_forms(viewer, info))
            (test_form(viewer, info))
            @if let Some(result) = result { (result) }
            section aria-labelledby="h-tests" {
                h2 id="h-tests" { "Manifest tests" }
                (manifest_tests(info))
            }
            section aria-labelledby="h-schemas" {
                h2 id="h-schemas" { "Input and output schemas" }
                h3 { "Input schema" } (json(&info.manifest.input_schema))
                h3 { "Output schema" }
                @match &info.manifest.output_schema {
                    Some(s) => (json(s)),
                    None => p { "None: any JSON output is accepted." },
                }
            }
            section aria-labelledby="h-limits" {
                h2 id="h-limits" { "Limits" }
                h3 { "Requested by the manifest" } (json(&info.manifest.limits))
                h3 { "Effective (calls run with these)" } (json(&info.report.effective_limits))
                h3 { "Capture and output guard" }
                (json(&serde_json::json!({"capture": info.manifest.capture, "output_guard": info.manifest.output_guard})))
            }
            section aria-labelledby="h-report" {
                h2 id="h-report" { "Inspection report" }
                (report(info))
            }
            section aria-labelledby="h-source" {
                h2 id="h-source" { "Source" }
                @match &r.source {
                    Some(src) => {
                        p { "Uploaded as " (src.language.as_str()) " source; the module was built from this text." }
                        (numbered(&src.text))
                        h3 { "Checklist findings" }
                        @match &info.report.module.script {
                            Some(s) => (findings(s)),
                            None => p { "aifn has no automated checklist for " (src.language.as_str()) " sources: read the imports above and the text." },
                        }
                    }
                    None => p { "Uploaded as a module (no source). Fetch the exact bytes with " code { "aifn fetch " (info.name.as_str()) "@" (info.version) " -o module.wasm" } "." },
                }
            }
            section aria-labelledby="h-diff" {
                h2 id="h-diff" { "Changes" }
                @match &r.diff {
                    Some(d) if d.diffs.is_empty() => p { "The first version: nothing to compare against." },
                    Some(d) => { @for vd in &d.diffs { (diff(vd)) } },
                    None => p { "Diffs are for authors, approvers and admins." },
                }
            }
            section aria-labelledby="h-decisions" {
                h2 id="h-decisions" { "Decisions" }
                @if info.decisions.is_empty() { p { "None yet." } } @else {
                    table {
                        thead { tr { th { "Action" } th { "By" } th { "When" } th { "Notes" } th { "sha256" } } }
                        tbody { @for d in &info.decisions { tr {
                            td { (d.action.as_str()) @if d.override_failing_tests { " (failing tests overridden)" } }
                            td { (d.actor.as_str()) }
                            td { (time(&d.at)) }
                            td.notes { (d.notes) }
                            td { code.sha { (d.sha256) } }
                        } } }
                    }
                }
            }
        },
    )
}

fn decide_forms(viewer: &Viewer, info: &VersionInfo) -> Markup {
    let who = viewer.who();
    let action = format!("{}/decide", version_href(info.name.as_str(), info.version));
    let failing = info.report.tests.iter().any(|t| !t.passed);
    html! {
        @if who.role == Role::Approver && info.state == VersionState::Pending {
            @if who.subject == info.author {
                p.notice { "You uploaded this version: another approver decides on it." }
            } @else {
                section aria-labelledby="h-decide" {
                    h2 id="h-decide" { "Decide" }
                    form method="post" action=(action) {
                        (html::csrf(viewer))
                        input type="hidden" name="sha256" value=(info.sha256);
                        p {
                            input id="confirm" type="checkbox" name="confirm" value="yes" required;
                            label for="confirm" { "I inspected the module with sha256 " code.sha { (info.sha256) } "; the decision binds to it." }
                        }
                        @if failing {
                            p.fail {
                                input id="override" type="checkbox" name="override_failing_tests" value="yes";
                                label for="override" { "Approve although a manifest test failed (say why in the notes)" }
                            }
                        }
                        label for="notes" { "Notes" }
                        textarea id="notes" name="notes" rows="3" required {}
                        button type="submit" name="action" value="approve" { "Approve" }
                        button type="submit" name="action" value="reject" { "Reject" }
                    }
                }
            }
        }
        @if who.role == Role::Approver && info.state == VersionState::Active {
            section aria-labelledby="h-revoke" {
                h2 id="h-revoke" { "Revoke" }
                form method="post" action=(action) {
                    (html::csrf(viewer))
                    label for="notes" { "Notes" }
                    textarea id="notes" name="notes" rows="2" required {}
                    button type="submit" name="action" value="revoke" { "Revoke" }
                }
            }
        }
    }
}

fn test_form(viewer: &Viewer, info: &VersionInfo) -> Markup {
    let who = viewer.who();
    // As the service rules: approvers, and authors on their own versions.
    let may =
        who.role == Role::Approver || (who.role == Role::Author && who.subject == info.author);
    let example = info
        .manifest
        .tests
        .first()
        .map(|t| serde_json::to_string(&t.input).unwrap_or_default())
        .unwrap_or_else(|| "{}".into());
    html! {
        @if may {
            section aria-labelledby="h-test" {
                h2 id="h-test" { "Test" }
                p { "A test run is recorded as a test run, never as an agent's execution." }
                form method="post" action=(format!("{}/test", version_href(info.name.as_str(), info.version))) {
                    (html::csrf(viewer))
                    label for="input" { "Test input (JSON)" }
                    textarea id="input" name="input" rows="4" required { (example) }
                    label for="user_id" { "User id (optional)" }
                    input id="user_id" name="user_id" type="text";
                    button type="submit" { "Run test" }
                }
            }
        }
    }
}

fn manifest_tests(info: &VersionInfo) -> Markup {
    html! {
        @if info.manifest.tests.is_empty() { p { "The manifest has no tests." } } @else {
            table {
                thead { tr { th { "Test" } th { "Input" } th { "Expected" } th { "Result" } th { "Outcome" } th { "Fuel" } th { "ms" } th { "Message" } } }
                tbody {
                    @for t in &info.manifest.tests {
                        @let r = info.report.tests.iter().find(|r| r.name == t.name);
                        tr {
                            td { (t.name) }
                            td { code { (serde_json::to_string(&t.input).unwrap_or_default()) } }
                            td { @if let Some(r) = r { (r.expected) } }
                            td { @match r { Some(r) if r.passed => span.pass { "passed" }, Some(_) => span.fail { "failed" }, None => "not run" } }
                            td { @if let Some(r) = r { (r.kind.as_str()) } }
                            td { @if let Some(r) = r { (r.fuel_used) } }
                            td { @if let Some(r) = r { (format!("{:.3}", r.duration_ms)) } }
                            td { @if let Some(m) = r.and_then(|r| r.message.as_deref()) { (m) } }
                        }
                    }
                }
            }
        }
    }
}

/// The checklist's warnings, each at its line of the source above.
fn findings(s: &aifn_types::ScriptReport) -> Markup {
    html! {
        @if s.findings.is_empty() { p { "None: the checklist found nothing to point out. Read the source all the same." } } @else {
            p { (s.findings.len()) " findings: warnings for you to weigh, not refusals." }
            table { thead { tr { th { "Line" } th { "Column" } th { "Item" } th { "Finding" } } }
                tbody { @for f in &s.findings { tr { td { a href={ "#L" (f.line) } { (f.line) } } td { (f.column) } td { code { (f.rule.as_str()) } } td { (f.message) } } } } }
        }
    }
}

/// A JavaScript version's engine: part of what is approved.
fn engine(s: &aifn_types::ScriptReport) -> Markup {
    let current = aifn_runtime::current_js_engine();
    html! {
        dt { "Language" } dd { "JavaScript, " (s.source_bytes) " bytes of source (sha256 " code { (s.source_sha256) } "), " (s.bytecode_bytes) " bytes of bytecode" }
        dt { "Engine" } dd {
            (s.engine.name) " " (s.engine.version) " (sha256 " code { (s.engine.sha256) } ") "
            @if s.engine == current { span.badge.badge-active { "current engine" } } @else {
                span.badge.badge-superseded { "older engine" } " It keeps running on this engine; this aifn builds new versions on " (current.name) " " (current.version) ": re-approving on it is a new version."
            }
        }
    }
}

fn report(info: &VersionInfo) -> Markup {
    let m = &info.report.module;
    html! {
        dl.facts {
            @if let Some(s) = &m.script { (engine(s)) }
            dt { "Size" } dd { (m.size_bytes) " bytes (code " (m.code_size_bytes) ", " (m.function_count) " functions, largest " (m.largest_function_bytes) ")" }
            dt { "Memory" } dd { @match &m.memory { Some(mem) => { (mem.min_pages) " pages" @if let Some(x) = mem.max_pages { ", at most " (x) } }, None => "none" } }
            dt { "Table" } dd { @match &m.table { Some(t) => { (t.min) @if let Some(x) = t.max { ", at most " (x) } }, None => "none" } }
            dt { "Features" } dd { @if m.features.is_empty() { "none beyond the core" } @else { (m.features.join(", ")) } }
            dt { "WASI" } dd { @if m.uses_wasi { "imports WASI (every capability denied)" } @else { "no" } }
            dt { "Start function" } dd { @if m.has_start { "yes: it runs at instantiation" } @else { "no" } }
        }
        h3 { "Imports (what it can ask the host for)" }
        @if m.imports.is_empty() { p { "None." } } @else {
            table { thead { tr { th { "Module" } th { "Name" } th { "Kind" } th { "Signature" } } }
                tbody { @for i in &m.imports { tr { td { (i.module) } td { (i.name) } td { (i.kind) } td { code { (i.signature) } } } } } }
        }
        h3 { "Exports" }
        table { thead { tr { th { "Name" } th { "Kind" } } }
            tbody { @for e in &m.exports { tr { td { (e.name) } td { (e.kind) } } } } }
    }
}

fn diff(d: &aifn_service::VersionDiff) -> Markup {
    let relation = match d.relation {
        aifn_service::DiffRelation::Previous => "the previous version",
        aifn_service::DiffRelation::Active => "the active version",
        aifn_service::DiffRelation::Chosen => "the chosen version",
    };
    // Every field that changed, by its name in the API's diff.
    let mut fields = Vec::new();
    if let Ok(Value::Object(map)) = serde_json::to_value(d) {
        for (k, v) in map {
            let skip = matches!(k.as_str(), "against" | "relation" | "sha256" | "source")
                || v.is_null()
                || v.as_array().is_some_and(Vec::is_empty);
            if !skip {
                fields.push((k, v));
            }
        }
    }
    html! {
        article.diff {
            h3 { "Against v" (d.against) " (" (relation) ")" }
            p { "sha256 " code.sha { (d.sha256.before) } " → " code.sha { (d.sha256.after) }
                @if d.sha256.before == d.sha256.after { " (same module)" } }
            @if fields.is_empty() && d.source.is_none() { p { "Nothing else differs." } }
            @for (k, v) in &fields { h4 { (k) } (json(v)) }
            @if let Some(s) = &d.source {
                h4 { "Source (" "+" (s.lines_added) " −" (s.lines_removed) ")" }
                pre.diff { code { (s.unified) } }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct DecideForm {
    csrf: Option<String>,
    action: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    override_failing_tests: Option<String>,
    #[serde(default)]
    notes: String,
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath((name, v)): PagePath<(String, String)>,
    FormBody(form): FormBody<DecideForm>,
) -> Result<axum::response::Response, ConsoleError> {
    viewer.check_csrf(form.csrf.as_deref())?;
    let v = parse_version(&v).map_err(|_| not_found(&name))?;
    let binds = form.action != "revoke";
    if binds && form.confirm.as_deref() != Some("yes") {
        return Err(ConsoleError::bad(
            "confirm the sha256 you inspected before deciding",
        ));
    }
    if form.notes.trim().is_empty() {
        return Err(ConsoleError::bad("notes are required for a decision"));
    }
    let (s, who) = (state.service.clone(), viewer.who().clone());
    let target = name.clone();
    run(move || {
        let sha = form.sha256.unwrap_or_default();
        let decision = match (form.action.as_str(), form.override_failing_tests.is_some()) {
            ("approve", false) => aifn_service::Decision::Approve { sha256: &sha },
            ("approve", true) => aifn_service::Decision::ApproveOverridingTests { sha256: &sha },
            ("reject", _) => aifn_service::Decision::Reject { sha256: &sha },
            ("revoke", _) => aifn_service::Decision::Revoke,
            _ => {
                return Err(ServiceError::InvalidRequest {
                    message: "the action is approve, reject or revoke".into(),
                });
            }
        };
        s.decide(&who, (&target, v), decision, &form.notes)
    })
    .await?;
    Ok(axum::response::IntoResponse::into_response(
        axum::response::Redirect::to(&version_href(&name, v)),
    ))
}

#[derive(Deserialize)]
pub(crate) struct TestForm {
    csrf: Option<String>,
    input: String,
    #[serde(default)]
    user_id: String,
}

pub(crate) async fn test_run(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath((name, v)): PagePath<(String, String)>,
    FormBody(form): FormBody<TestForm>,
) -> Result<Html<String>, ConsoleError> {
    viewer.check_csrf(form.csrf.as_deref())?;
    let v = parse_version(&v).map_err(|_| not_found(&name))?;
    let input: Value = serde_json::from_str(&form.input)
        .map_err(|e| ConsoleError::bad(format!("the test input is not JSON: {e}")))?;
    let user = form.user_id.trim().to_owned();
    crate::handlers::check_user_id(&user)
        .map_err(|_| ConsoleError::bad("the user id is too long"))?;
    let (s, who) = (state.service.clone(), viewer.who().clone());
    let target = name.clone();
    let outcome = run(move || {
        let request = TestRunRequest {
            input,
            user_id: (!user.is_empty()).then_some(user),
        };
        Ok(s.test_run(&who, (&target, v), request))
    })
    .await?;
    let review = load(&state, viewer.who(), name, v).await?;
    Ok(version_page(&viewer, &review, Some(test_result(outcome))))
}

fn test_result(outcome: Result<InvokeOutcome, aifn_service::Refused>) -> Markup {
    html! {
        section.result aria-labelledby="h-result" role="status" {
            h2 id="h-result" { "Test result" }
            @match outcome {
                Ok(o) => {
                    dl.facts {
                        dt { "Outcome" } dd { span class=(if o.kind == OutcomeKind::Ok { "pass" } else { "fail" }) { (o.kind.as_str()) } }
                        dt { "Fuel" } dd { (o.fuel_used) }
                        dt { "Duration" } dd { (format!("{:.3}", o.duration_ms)) " ms" }
                        dt { "Execution" } dd { code { (o.execution_id) } }
                        @if let Some(m) = &o.message { dt { "Message" } dd { (m) } }
                    }
                    @if let Some(out) = &o.output { h3 { "Output" } (json(out)) }
                    @if !o.logs.is_empty() { h3 { "Logs" } pre { @for l in &o.logs { (l.message) "\n" } } }
                }
                Err(r) => p.error role="alert" { "Refused: " (r.error.kind().as_str()) ": " (r.error.to_string()) },
            }
        }
    }
}
