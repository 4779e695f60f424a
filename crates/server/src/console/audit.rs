//! The tenant's audit records: filters (function, agent, user, outcome,
//! time range), pages newest first, and one record's details.

use aifn_service::{AuditEntry, AuditQuery, AuditRecord, AuditStream};
use aifn_types::{OutcomeKind, Timestamp};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;

use super::html::{json, page, time};
use super::session::Viewer;
use super::{ConsoleError, PagePath, run};
use crate::AppState;

/// The filter form's fields; empty fields filter nothing.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Filters {
    function: String,
    agent: String,
    user: String,
    outcome: String,
    since: String,
    until: String,
    before: Option<u64>,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn when(label: &str, s: &str) -> Result<Option<Timestamp>, ConsoleError> {
    opt(s)
        .map(|t| {
            Timestamp::parse(&t)
                .map_err(|e| ConsoleError::Page(StatusCode::BAD_REQUEST, format!("{label}: {e}")))
        })
        .transpose()
}

const OUTCOMES: &[OutcomeKind] = &OutcomeKind::ALL;

pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
) -> Result<Html<String>, ConsoleError> {
    let f: Filters = serde_urlencoded::from_str(uri.query().unwrap_or_default()).map_err(|e| {
        ConsoleError::Page(StatusCode::BAD_REQUEST, format!("invalid filters: {e}"))
    })?;
    let outcome = match opt(&f.outcome) {
        Some(o) => Some(
            OUTCOMES
                .iter()
                .copied()
                .find(|k| k.as_str() == o)
                .ok_or_else(|| {
                    ConsoleError::Page(StatusCode::BAD_REQUEST, format!("unknown outcome {o:?}"))
                })?,
        ),
        None => None,
    };
    let q = AuditQuery {
        stream: None,
        function: opt(&f.function),
        agent_id: opt(&f.agent),
        user_id: opt(&f.user),
        outcome,
        since: when("since", &f.since)?,
        until: when("until", &f.until)?,
        before_seq: f.before,
        limit: Some(50),
    };
    let (s, who) = (state.service, viewer.who().clone());
    let page_ = run(move || s.audit(&who, q)).await?;
    let next = page_.next_before_seq.map(|b| {
        let mut qs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("function", &f.function),
            ("agent", &f.agent),
            ("user", &f.user),
            ("outcome", &f.outcome),
            ("since", &f.since),
            ("until", &f.until),
        ] {
            if !v.trim().is_empty() {
                qs.append_pair(k, v);
            }
        }
        qs.append_pair("before", &b.to_string());
        format!("/console/audit?{}", qs.finish())
    });
    Ok(page(
        "Audit",
        &viewer,
        html! {
            form.filters method="get" action="/console/audit" {
                label for="f-function" { "Function" } input id="f-function" name="function" value=(f.function);
                label for="f-agent" { "Agent" } input id="f-agent" name="agent" value=(f.agent);
                label for="f-user" { "User" } input id="f-user" name="user" value=(f.user);
                label for="f-outcome" { "Outcome" }
                select id="f-outcome" name="outcome" {
                    option value="" { "any" }
                    @for k in OUTCOMES { option value=(k.as_str()) selected[f.outcome == k.as_str()] { (k.as_str()) } }
                }
                label for="f-since" { "Since (UTC, RFC 3339)" } input id="f-since" name="since" value=(f.since) placeholder="2026-12-01T00:00:00Z";
                label for="f-until" { "Until (UTC, RFC 3339)" } input id="f-until" name="until" value=(f.until);
                button type="submit" { "Filter" }
            }
            @if page_.entries.is_empty() { p { "No records match." } } @else {
                table {
                    thead { tr { th { "Seq" } th { "Time" } th { "Kind" } th { "Function" } th { "Agent" } th { "User" } th { "Outcome" } } }
                    tbody { @for e in &page_.entries { (row(e)) } }
                }
            }
            @if let Some(n) = next { p { a href=(n) rel="next" { "Older records" } } }
        },
    ))
}

fn row(e: &AuditEntry) -> Markup {
    let href = format!("/console/audit/{}", e.seq);
    html! {
        tr {
            td { a href=(href) { (e.seq) } }
            @match &e.record {
                AuditRecord::Execution(x) => {
                    td { (time(&x.time)) }
                    td { (x.run.as_str()) }
                    td { (x.function) @if let Some(v) = x.version { " v" (v) } }
                    td { (x.agent_id) }
                    td { (x.user_id) }
                    td { (x.outcome.as_str()) }
                }
                AuditRecord::Registry(r) => {
                    td { (time(&r.time)) }
                    td { (r.action.action.as_str()) }
                    td { (r.action.target.to_string()) }
                    td { (r.action.actor.as_str()) }
                    td {}
                    td { @if let Some(why) = &r.action.refused { "refused: " (why.kind.as_str()) } @else { "done" } }
                }
                AuditRecord::Security(x) => { td { (time(&x.time)) } td { "security" } td {} td {} td {} td {} }
                AuditRecord::System(_) => { td {} td { "system" } td {} td {} td {} td {} }
            }
        }
    }
}

pub(crate) async fn record(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(seq): PagePath<String>,
) -> Result<Html<String>, ConsoleError> {
    let missing = || {
        ConsoleError::Page(
            StatusCode::NOT_FOUND,
            "no such record in this tenant".into(),
        )
    };
    let seq: u64 = seq.parse().map_err(|_| missing())?;
    let q = AuditQuery {
        stream: None::<AuditStream>,
        before_seq: seq.checked_add(1),
        limit: Some(1),
        ..AuditQuery::default()
    };
    let (s, who) = (state.service, viewer.who().clone());
    let found = run(move || s.audit(&who, q)).await?;
    let entry = found
        .entries
        .into_iter()
        .find(|e| e.seq == seq)
        .ok_or_else(missing)?;
    Ok(page(
        &format!("Record {seq}"),
        &viewer,
        html! {
            p { a href="/console/audit" { "All records" } }
            (json(&entry))
        },
    ))
}
