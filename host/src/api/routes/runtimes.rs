//! `/runtimes`: deployments, from the request to stop, start, logs and delete.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::operable;
use crate::api::{parse_query, ApiError, ApiResult, AppState, Caller, JsonBody};
use crate::auth::authz::may;
use crate::deployments::Runtime;
use crate::deployments::{DeployBody, Deployment, State as DeployState};
use crate::gateway::GatewaySync;
use crate::sources::LogEvent;
use crate::store::EventFilter;

/// Most log lines one request may ask for.
const MAX_TAIL: u32 = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runtimes", get(list_runtimes))
        .route("/runtimes/deploy", post(deploy))
        .route("/runtimes/{id}", get(get_runtime).delete(delete_runtime))
        .route("/runtimes/{id}/stop", post(stop_runtime))
        .route("/runtimes/{id}/start", post(start_runtime))
        .route("/runtimes/{id}/logs", get(runtime_logs))
        .route("/runtimes/{id}/build-logs", get(build_logs))
}

async fn deploy(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Deploy>,
    JsonBody(body): JsonBody<DeployBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let actor = Some(caller.user.clone());
    let checked = rt.check(&body, &id, actor.as_deref()).await?;
    if let Some(decision) = rt.needs_approval(&checked.plugin_request, &checked.guardrails).await? {
        let d = Runtime::deployment(checked, DeployState::AwaitingApproval);
        let approval = rt.hold_for_approval(&d, decision)?;
        let answer = json!({"id": d.id, "status": d.status, "approval_id": approval.id, "reasons": approval.reasons,
                            "commit": approval.commit,
                            "approvers": approval.approvers, "expires_at": approval.expires_at,
                            "guardrails_applied": d.guardrails_applied, "guardrails_warnings": d.guardrails_warnings});
        return Ok((StatusCode::ACCEPTED, Json(answer)));
    }
    let d = rt.accept(checked)?;
    let commit = d.request.as_ref().and_then(|r| r.commit.clone());
    let answer = json!({"id": d.id, "status": d.status, "commit": commit, "guardrails_applied": d.guardrails_applied,
                        "guardrails_warnings": d.guardrails_warnings});
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

async fn list_runtimes(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Value>> {
    let all: Vec<Value> = rt.list()?.iter().map(Deployment::public_view).collect();
    Ok(Json(json!(all)))
}

async fn get_runtime(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = rt.get(&id)?;
    let mut view = d.public_view();
    // Its registration with the gateway: none when no gateway is configured.
    view["gateway"] = match (&rt.config.gateway, GatewaySync::registration(&rt.store, &id)) {
        (None, _) => Value::Null,
        (Some(_), Some(registration)) => registration.public_view(),
        (Some(_), None) => json!({"status": "unregistered"}),
    };
    let events = rt.store.events(&EventFilter { deployment: Some(id), limit: Some(20), ..Default::default() })?;
    view["recent_events"] = json!(events);
    Ok(Json(view))
}

async fn stop_runtime(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    operable(&rt, &caller, &id)?;
    Ok(Json(rt.stop(&id, Some(caller.user.as_str())).await?.public_view()))
}

async fn start_runtime(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    operable(&rt, &caller, &id)?;
    Ok(Json(rt.start(&id, Some(caller.user.as_str())).await?.public_view()))
}

async fn delete_runtime(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    operable(&rt, &caller, &id)?;
    rt.delete(&id, Some(caller.user.as_str())).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    tail: Option<u32>,
    /// One service of a compose stack.
    service: Option<String>,
}

/// Plain text; `tail` lines (100 unless given, at most `MAX_TAIL`).
async fn runtime_logs(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    // Who may read these logs depends on the deployment's owner: check before reading the query.
    operable(&rt, &caller, &id)?;
    let q: LogsQuery = parse_query(query.as_deref().unwrap_or(""))?;
    let text = rt.logs(&id, q.tail.unwrap_or(100).min(MAX_TAIL)).await?;
    // A stack's logs are its services', each line `<service> | …`: one service's, when asked.
    let text = match &q.service {
        None => text,
        Some(service) => {
            let d = rt.get(&id)?;
            let services = match d.request.as_ref().map(|r| &r.entry.source) {
                Some(crate::catalog::Source::Compose { compose_file, main_service }) => {
                    crate::compose::Stack::parse(compose_file, main_service).map(|s| s.services).unwrap_or_default()
                }
                _ => {
                    return Err(ApiError::Invalid {
                        field: "service".into(),
                        reason: "only a compose stack has services".into(),
                    })
                }
            };
            if !services.iter().any(|s| s.name == *service) {
                return Err(ApiError::Invalid {
                    field: "service".into(),
                    reason: format!("no service '{service}' in the stack"),
                });
            }
            let prefix = format!("{service} | ");
            text.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).map(|l| format!("{l}\n")).collect()
        }
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildLogsQuery {
    #[serde(default)]
    follow: bool,
}

/// The build's log: as text, or with `follow=true` as server-sent events,
/// the lines so far and then each as it comes until the build ends.
async fn build_logs(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    operable(&rt, &caller, &id)?;
    let q: BuildLogsQuery = parse_query(query.as_deref().unwrap_or(""))?;
    let (so_far, live) = rt.sources.logs.read(&id);
    if !q.follow {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], so_far).into_response());
    }
    let event = |line: &str| Ok::<_, std::convert::Infallible>(format!("event: line\ndata: {line}\n\n"));
    let done = || Ok::<_, std::convert::Infallible>("event: done\ndata: {}\n\n".to_string());
    let past = futures_util::stream::iter(so_far.lines().map(event).collect::<Vec<_>>());
    // `None` once done; `Some(None)` when the build is over already: only `done` is left to say.
    let rest = futures_util::stream::unfold(Some(live), move |state| async move {
        let Some(mut live) = state? else { return Some((done(), None)) };
        loop {
            match live.recv().await {
                Ok(LogEvent::Line(line)) => return Some((event(&line), Some(Some(live)))),
                Ok(LogEvent::Done) | Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Some((done(), None))
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            }
        }
    });
    let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(past, rest));
    Ok(([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response())
}
