//! The console's page shell and the pieces every page uses. maud escapes
//! every interpolated value: nothing an author, an agent or a guest wrote
//! can become markup here.

use aifn_service::Principal;
use aifn_types::{Timestamp, VersionState};
use axum::http::StatusCode;
use axum::response::Html;
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;

use super::session::Viewer;

/// A path segment, percent-encoded (names are checked, subjects are
/// freer; nothing is trusted to be URL-safe).
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The link to one version's page.
pub(crate) fn version_href(name: &str, version: u32) -> String {
    format!("/console/functions/{}/versions/{version}", seg(name))
}

fn shell(title: &str, viewer: Option<&Viewer>, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · aifn console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "aifn console" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            a href="/console/pending" { "Pending" }
                            a href="/console/functions" { "Functions" }
                            @if matches!(v.who().role, aifn_types::Role::Approver | aifn_types::Role::Admin) {
                                a href="/console/audit" { "Audit" }
                            }
                            a href="/console/agents" { "Agents" }
                        }
                        (who(v.who()))
                        form.inline method="post" action="/console/sign-out" {
                            (csrf(v))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string())
}

fn who(p: &Principal) -> Markup {
    html! {
        span.who { (p.subject.as_str()) " · " (p.role.as_str()) " · tenant " (p.tenant.as_str()) }
    }
}

/// A page for a signed-in viewer.
pub(crate) fn page(title: &str, viewer: &Viewer, body: Markup) -> Html<String> {
    shell(title, Some(viewer), body)
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf(v: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf()); }
}

/// A version state as a badge.
pub(crate) fn badge(state: VersionState) -> Markup {
    let s = state.as_str();
    html! { span class=(format!("badge badge-{s}")) { (s) } }
}

/// A time: UTC in the markup and on hover, the viewer's zone once the
/// script has run.
pub(crate) fn time(t: &Timestamp) -> Markup {
    let s = t.to_string();
    html! { time datetime=(s) title=(format!("{s} (UTC)")) { (s) } }
}

/// A value as indented JSON in a `pre`.
pub(crate) fn json<T: Serialize>(v: &T) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { code { (text) } } }
}

/// Text with line numbers, for reading source.
pub(crate) fn numbered(text: &str) -> Markup {
    html! {
        table.source {
            tbody {
                @for (i, line) in text.lines().enumerate() {
                    tr id={ "L" (i + 1) } { td.ln { (i + 1) } td { code { (line) } } }
                }
            }
        }
    }
}

pub(crate) fn sign_in(token: &str, error: Option<&str>) -> Html<String> {
    shell(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            p { "Sign in with your API key. The key is exchanged for a session and is not kept in the browser." }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(token);
                label for="api_key" { "API key" }
                input id="api_key" name="api_key" type="password" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Html<String> {
    let title = status.canonical_reason().unwrap_or("Error");
    shell(
        title,
        None,
        html! {
            p.error role="alert" { (message) }
            p { a href="/console/" { "Back to the console" } }
        },
    )
}
