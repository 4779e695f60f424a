//! The tenant's functions with their states, and one function's version
//! history.

use axum::extract::State;
use axum::response::Html;
use maud::html;

use super::html::{badge, page, seg, time, version_href};
use super::session::Viewer;
use super::{ConsoleError, PagePath, run};
use crate::AppState;

pub(crate) async fn functions(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, ConsoleError> {
    let (s, who) = (state.service, viewer.who().clone());
    let functions = run(move || s.list_functions(&who)).await?;
    Ok(page(
        "Functions",
        &viewer,
        html! {
            @if functions.is_empty() { p { "No functions yet." } } @else {
                table {
                    thead { tr { th { "Function" } th { "Description" } th { "Active" } th { "Latest" } th { "Versions" } } }
                    tbody { @for f in &functions { tr {
                        td { a href=(format!("/console/functions/{}", seg(f.name.as_str()))) { (f.name.as_str()) } }
                        td.description { @if let Some(d) = &f.description { (d) } }
                        td { @match f.active_version { Some(v) => a href=(version_href(f.name.as_str(), v)) { "v" (v) }, None => "none" } }
                        td { "v" (f.latest_version) " " (badge(f.latest_state)) }
                        td { (f.counts.pending) " pending, " (f.counts.active) " active, " (f.counts.rejected) " rejected, "
                             (f.counts.revoked) " revoked, " (f.counts.superseded) " superseded" }
                    } } }
                }
            }
        },
    ))
}

pub(crate) async fn function(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(name): PagePath<String>,
) -> Result<Html<String>, ConsoleError> {
    let (s, who) = (state.service, viewer.who().clone());
    let detail = run(move || s.get_function(&who, &name)).await?;
    let name = detail.summary.name.as_str();
    Ok(page(
        name,
        &viewer,
        html! {
            @if let Some(d) = &detail.summary.description { p.description { (d) } }
            h2 { "Versions" }
            table {
                thead { tr { th { "Version" } th { "State" } th { "sha256" } th { "Author" } th { "Uploaded" } } }
                tbody { @for v in &detail.versions { tr {
                    td { a href=(version_href(name, v.version)) { "v" (v.version) } }
                    td { (badge(v.state)) }
                    td { code.sha { (v.sha256.get(..16).unwrap_or(&v.sha256)) "…" } }
                    td { (v.author.as_str()) }
                    td { (time(&v.uploaded_at)) }
                } } }
            }
        },
    ))
}
