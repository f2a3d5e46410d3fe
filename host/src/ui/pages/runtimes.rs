//! `/admin/runtimes`: the live list (status, uptime, restarts, health,
//! gateway, warnings) and a deployment's page (phases, MCP URL, guardrails
//! applied against the profile asked for, events). Stop, start and delete go
//! through a confirmation page, so they need no script; `/admin/stream` is
//! the live status the pages follow.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

use crate::auth::authz::{authorize, Action};
use crate::deployment::{Deployment, State as Phase};
use crate::store::EventFilter;
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new()
        .route("/admin/runtimes", get(list))
        .route("/admin/runtimes/{id}", get(detail))
        .route("/admin/runtimes/{id}/confirm", get(confirm))
        .route("/admin/runtimes/{id}/{action}", post(act))
        .route("/admin/stream", get(stream))
}

/// A deployment as the pages show it, with its CPU and memory as last
/// sampled (left out when there is no sample).
fn row(ui: &UiState, session: &Session, d: &Deployment) -> Value {
    let mut view = serde_json::to_value(d.public_view()).unwrap_or_default();
    view["usage"] = serde_json::json!(ui.services.deployments.usage(d));
    let operable = authorize(&session.principal, &Action::Operate { owner: d.requested_by.as_deref() }).is_ok();
    view["operable"] = operable.into();
    view["uptime"] = uptime(d).into();
    view["health"] = serde_json::json!(ui.services.deployments.last_health(&d.id));
    view["gateway"] = ui.services.registrations.of(&d.id).map(|r| r.public_view()).unwrap_or(Value::Null);
    view["progress"] = progress(d.status).into();
    view["posture"] = ui.services.deployments.posture(&d.id).map(|p| serde_json::json!(p)).unwrap_or(Value::Null);
    view
}

/// How far along the way to `connected` a deployment is, in percent.
fn progress(state: Phase) -> u8 {
    match state {
        Phase::AwaitingApproval => 5,
        Phase::Pending => 15,
        Phase::Pulling | Phase::Building => 40,
        Phase::Starting => 70,
        Phase::Running => 85,
        Phase::Connected | Phase::Unhealthy | Phase::Stopped | Phase::Error | Phase::Rejected => 100,
    }
}

fn uptime(d: &Deployment) -> String {
    if d.status != Phase::Connected {
        return "—".into();
    }
    let seconds = (chrono::Utc::now() - d.updated_at).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

async fn list(State(ui): State<Arc<UiState>>, session: Session) -> Result<Response, UiError> {
    let mut all = ui.services.deployments.list()?;
    all.sort_by_key(|d| std::cmp::Reverse(d.created_at));
    let rows: Vec<Value> = all.iter().map(|d| row(&ui, &session, d)).collect();
    ui.page("runtimes.html", Some(&session), minijinja::context! { rows => minijinja::Value::from_serialize(&rows) })
}

async fn detail(State(ui): State<Arc<UiState>>, session: Session, Path(id): Path<String>) -> Result<Response, UiError> {
    let d = ui.services.deployments.get(&id)?;
    let view = row(&ui, &session, &d);
    // A repository's build, as far as it has got.
    let build_log =
        matches!(d.request.as_ref().map(|r| &r.entry.source), Some(crate::catalog::ServerSource::Github { .. }))
            .then(|| ui.services.deployments.build_log(&id).0);
    let events = ui.services.deployments.events(&EventFilter {
        deployment: Some(id.clone()),
        limit: Some(50),
        ..Default::default()
    })?;
    let requested = ui.services.profiles.find(&d.profile)?;
    let mcp_url = format!("/servers/{id}/mcp");
    let context = minijinja::context! {
        d => minijinja::Value::from_serialize(&view),
        events => minijinja::Value::from_serialize(&events),
        requested => minijinja::Value::from_serialize(&requested),
        mcp_url => mcp_url,
        gateway_url => ui.services.config.gateway.as_ref().map(|g| g.url.trim_end_matches('/').to_string()),
        build_log => build_log,
        layers => minijinja::Value::from_serialize(pull_layers(&ui, &d)),
    };
    ui.page("runtime.html", Some(&session), context)
}

/// The layers of a deployment's image while it is being pulled.
fn pull_layers(ui: &UiState, d: &Deployment) -> Vec<crate::capabilities::PullLayer> {
    let image = match d.request.as_ref().map(|r| &r.entry.source) {
        Some(crate::catalog::ServerSource::Docker { image, .. }) if d.status == Phase::Pulling => image,
        _ => return Vec::new(),
    };
    ui.services.deployments.pull_progress(image)
}

#[derive(Deserialize)]
struct ConfirmQuery {
    action: String,
}

async fn confirm(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ConfirmQuery>,
) -> Result<Response, UiError> {
    let d = operable(&ui, &session, &id)?;
    if !matches!(q.action.as_str(), "stop" | "start" | "delete") {
        return Err(UiError::Invalid(format!("action: '{}' is not stop, start or delete", q.action)));
    }
    let context = minijinja::context! { action => q.action, id => d.id, slug => d.slug, status => d.status };
    ui.page("confirm.html", Some(&session), context)
}

fn operable(ui: &UiState, session: &Session, id: &str) -> Result<Deployment, UiError> {
    let d = ui.services.deployments.get(id)?;
    authorize(&session.principal, &Action::Operate { owner: d.requested_by.as_deref() })?;
    Ok(d)
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
}

async fn act(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    operable(&ui, &session, &id)?;
    let actor = Some(session.principal.user.as_str());
    match action.as_str() {
        "stop" => drop(ui.services.deployments.stop(&id, actor).await?),
        "start" => drop(ui.services.deployments.start(&id, actor).await?),
        "delete" => {
            ui.services.deployments.delete(&id, actor).await?;
            return Ok(Redirect::to("/admin/runtimes").into_response());
        }
        other => return Err(UiError::Invalid(format!("action: '{other}' is not stop, start or delete"))),
    }
    Ok(Redirect::to(&format!("/admin/runtimes/{id}")).into_response())
}

/// The live status a signed-in person may see, as `GET /runtimes/stream` has it.
async fn stream(State(ui): State<Arc<UiState>>, session: Session) -> Response {
    let events = ui.services.deployments.subscribe();
    crate::api::event_stream(crate::api::status_events(events, session.principal, None, crate::api::KEEP_ALIVE))
}
