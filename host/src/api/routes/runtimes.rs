//! `/runtimes`: deployments, from the request to stop, start, logs and delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::operable;
use crate::api::{ApiResult, AppState, Caller, JsonBody};
use crate::approvals::Submitted;
use crate::auth::authz::may;
use crate::deployments::{DeployBody, Deployment};
use crate::gateway::GatewaySync;
use crate::store::EventFilter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runtimes", get(list_runtimes))
        .route("/runtimes/deploy", post(deploy))
        .route("/runtimes/{id}", get(get_runtime).delete(delete_runtime))
        .route("/runtimes/{id}/stop", post(stop_runtime))
        .route("/runtimes/{id}/start", post(start_runtime))
}

async fn deploy(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Deploy>,
    JsonBody(body): JsonBody<DeployBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let answer = match rt.submit(&body, Some(caller.user.as_str())).await? {
        Submitted::Held(d, approval) => json!({"id": d.id, "status": d.status, "approval_id": approval.id,
                                               "reasons": approval.reasons, "commit": approval.commit,
                                               "approvers": approval.approvers, "expires_at": approval.expires_at,
                                               "guardrails_applied": d.guardrails_applied,
                                               "guardrails_warnings": d.guardrails_warnings}),
        Submitted::Accepted(d) => {
            let commit = d.request.as_ref().and_then(|r| r.commit.clone());
            json!({"id": d.id, "status": d.status, "commit": commit, "guardrails_applied": d.guardrails_applied,
                   "guardrails_warnings": d.guardrails_warnings})
        }
    };
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
    view["health"] = json!({"last_check": rt.health.last(&id)});
    // Read from the backend now; a backend that cannot answer leaves the figures out.
    view["usage"] = match rt.usage(&d).await {
        Ok(usage) => json!(usage),
        Err(e) => {
            tracing::debug!(deployment = %id, "usage unknown: {e}");
            Value::Null
        }
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
