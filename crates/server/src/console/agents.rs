//! Agents and the tenant's gateway settings: the agents with their policy
//! versions, one agent's policy (admins edit it as JSON, checked by the
//! same types as the API) and budget usage, and the tenant's mode and
//! budget.

use aifn_service::{ServiceError, TenantInfo};
use aifn_types::{AgentPolicy, Budget, Role, Subject, TenantMode};
use axum::extract::State;
use axum::response::Html;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::html::{self, json, page, seg, time};
use super::session::Viewer;
use super::{ConsoleError, FormBody, PagePath, run};
use crate::AppState;

pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, ConsoleError> {
    let (s, who) = (state.service, viewer.who().clone());
    let (agents, tenant) = run(move || Ok((s.agents(&who)?, s.tenant(&who)?))).await?;
    let admin = viewer.who().role == Role::Admin;
    Ok(page(
        "Agents",
        &viewer,
        html! {
            @if agents.is_empty() { p { "No agents yet." } } @else {
                table {
                    thead { tr { th { "Agent" } th { "Active keys" } th { "Policy" } } }
                    tbody { @for a in &agents { tr {
                        td { a href=(format!("/console/agents/{}", seg(a.subject.as_str()))) { (a.subject.as_str()) } }
                        td { (a.active_keys) }
                        td { @match a.policy_version { Some(v) => { "version " (v) }, None => "none: invokes nothing" } }
                    } } }
                }
            }
            (tenant_section(&viewer, &tenant, admin))
        },
    ))
}

fn tenant_section(viewer: &Viewer, t: &TenantInfo, admin: bool) -> Markup {
    let mode = t.settings.mode;
    html! {
        section aria-labelledby="h-tenant" {
            h2 id="h-tenant" { "Tenant " (t.tenant_id.as_str()) }
            dl.facts {
                dt { "Mode" } dd { (mode.as_str()) @if mode == TenantMode::Open { " (development only: every agent may invoke every active function)" } }
                dt { "Budget" } dd { (json(&t.settings.budget)) }
                dt { "Settings version" } dd { (t.version) @if let (Some(at), Some(by)) = (&t.updated_at, &t.updated_by) { ", changed " (time(at)) " by " (by.as_str()) } }
            }
            @if admin {
                form method="post" action="/console/tenant" {
                    (html::csrf(viewer))
                    label for="mode" { "Tenant mode" }
                    select id="mode" name="mode" {
                        option value="allowlist" selected[mode == TenantMode::Allowlist] { "allowlist" }
                        option value="open" selected[mode == TenantMode::Open] { "open" }
                    }
                    label for="budget" { "Tenant budget (JSON)" }
                    textarea id="budget" name="budget" rows="3" { (serde_json::to_string_pretty(&t.settings.budget).unwrap_or_default()) }
                    button type="submit" { "Save tenant settings" }
                }
            }
        }
    }
}

pub(crate) async fn agent(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(raw): PagePath<String>,
) -> Result<Html<String>, ConsoleError> {
    let agent = subject(&raw)?;
    let (s, who) = (state.service, viewer.who().clone());
    let admin = who.role == Role::Admin;
    let a = agent.clone();
    let (policy, usage) = run(move || {
        let policy = match s.policy(&who, &a) {
            Ok(p) => Some(p),
            Err(ServiceError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let usage = if admin {
            Some(s.usage(&who, &a)?)
        } else {
            None
        };
        Ok((policy, usage))
    })
    .await?;
    let current = policy
        .as_ref()
        .map_or_else(AgentPolicy::default, |p| p.policy.clone());
    Ok(page(
        &format!("Agent {}", agent.as_str()),
        &viewer,
        html! {
            h2 { "Policy" }
            @match &policy {
                Some(p) => p { "Version " (p.version) ", set " (time(&p.updated_at)) " by " (p.updated_by.as_str()) "." },
                None => p { "No policy: this agent invokes nothing unless the tenant is open." },
            }
            (json(&current))
            @if admin {
                form method="post" action=(format!("/console/agents/{}/policy", seg(agent.as_str()))) {
                    (html::csrf(&viewer))
                    label for="policy" { "Policy (JSON: allow, deny, limits, budget)" }
                    textarea id="policy" name="policy" rows="8" required { (serde_json::to_string_pretty(&current).unwrap_or_default()) }
                    button type="submit" { "Save policy" }
                }
            }
            @if let Some(u) = &usage {
                h2 { "Usage this window" }
                p { "From " (time(&u.window_start)) " to " (time(&u.window_end)) "." }
                h3 { "This agent" } (json(&u.agent))
                h3 { "The whole tenant" } (json(&u.tenant))
            }
        },
    ))
}

fn subject(raw: &str) -> Result<Subject, ConsoleError> {
    Subject::new(raw).map_err(|e| ConsoleError::bad(format!("agent {raw:?}: {e}")))
}

#[derive(Deserialize)]
pub(crate) struct PolicyForm {
    csrf: Option<String>,
    policy: String,
}

pub(crate) async fn set_policy(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(raw): PagePath<String>,
    FormBody(form): FormBody<PolicyForm>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(form.csrf.as_deref())?;
    let agent = subject(&raw)?;
    let policy: AgentPolicy = serde_json::from_str(&form.policy)
        .map_err(|e| ConsoleError::bad(format!("the policy is not valid: {e}")))?;
    let (s, who, a) = (state.service, viewer.who().clone(), agent.clone());
    run(move || s.set_policy(&who, &a, policy)).await?;
    Ok(Redirect::to(&format!("/console/agents/{}", seg(agent.as_str()))).into_response())
}

#[derive(Deserialize)]
pub(crate) struct TenantForm {
    csrf: Option<String>,
    mode: TenantMode,
    #[serde(default)]
    budget: String,
}

pub(crate) async fn set_tenant(
    State(state): State<AppState>,
    viewer: Viewer,
    FormBody(form): FormBody<TenantForm>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(form.csrf.as_deref())?;
    let budget: Budget = if form.budget.trim().is_empty() {
        Budget::default()
    } else {
        serde_json::from_str(&form.budget)
            .map_err(|e| ConsoleError::bad(format!("the budget is not valid: {e}")))?
    };
    let (s, who) = (state.service, viewer.who().clone());
    run(move || {
        let now = s.tenant(&who)?;
        if now.settings.mode != form.mode {
            s.set_tenant_mode(&who, form.mode)?;
        }
        if now.settings.budget != budget {
            s.set_tenant_budget(&who, budget)?;
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/console/agents").into_response())
}
