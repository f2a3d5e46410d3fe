//! `/runtimes`: deployments, from the request to stop, start, logs and delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::operable;
use crate::api::error::ErrorBody;
use crate::api::{ApiResult, AppState, Caller, JsonBody};
use crate::auth::authz::may;
use crate::deployment::{DeployBody, Deployment, DeploymentView, State as Status};
use crate::deployments::Submitted;
use crate::events::Event;
use crate::guardrails::{EffectiveGuardrails, Warning};
use crate::store::EventFilter;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_runtimes))
        .routes(routes!(deploy))
        .routes(routes!(get_runtime, delete_runtime))
        .routes(routes!(stop_runtime))
        .routes(routes!(start_runtime))
}

/// A deploy as accepted: under way, or held for approval.
#[derive(Serialize, ToSchema)]
pub struct Deploying {
    id: String,
    status: Status,
    /// For a repository source: the commit that will be built.
    commit: Option<String>,
    guardrails_applied: EffectiveGuardrails,
    guardrails_warnings: Vec<Warning>,
    /// The held deployment's approval request.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_id: Option<String>,
    /// Why it needs approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<Vec<String>>,
    /// Who may decide (`user:…`, `group:…`; empty: any approver).
    #[serde(skip_serializing_if = "Option::is_none")]
    approvers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[utoipa::path(post, path = "/runtimes/deploy", tag = "runtimes", request_body = DeployBody,
    extensions(("x-permission" = json!("deploy"))),
    responses((status = 202, body = Deploying, description = "Deploying, or held for approval (`approval_id`)",
               links(("GetDeployment" = (operation_id = "get_runtime", parameters(("id" = "$response.body#/id")))),
                     ("StopDeployment" = (operation_id = "stop_runtime", parameters(("id" = "$response.body#/id")))),
                     ("DeleteDeployment" = (operation_id = "delete_runtime", parameters(("id" = "$response.body#/id")))))),
              (status = 404, body = ErrorBody, description = "No such catalog entry, revision or profile"),
              (status = 502, body = ErrorBody, description = "A policy, approval rule or the backend failed")))]
/// Deploys a catalog entry: checked against the guardrail policies, then
/// deployed in the background (follow it at `/runtimes/{id}` or `/runtimes/stream`),
/// or held for approval when the approval rules say so.
async fn deploy(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Deploy>,
    JsonBody(body): JsonBody<DeployBody>,
) -> ApiResult<(StatusCode, Json<Deploying>)> {
    let answer = match rt.deployments.submit(&body, Some(caller.user.as_str())).await? {
        Submitted::Held(d, approval) => Deploying {
            id: d.id,
            status: d.status,
            commit: approval.commit,
            guardrails_applied: d.guardrails_applied,
            guardrails_warnings: d.guardrails_warnings,
            approval_id: Some(approval.id),
            reasons: Some(approval.reasons),
            approvers: Some(approval.approvers),
            expires_at: Some(approval.expires_at),
        },
        Submitted::Accepted(d) => Deploying {
            commit: d.request.as_ref().and_then(|r| r.commit.clone()),
            id: d.id,
            status: d.status,
            guardrails_applied: d.guardrails_applied,
            guardrails_warnings: d.guardrails_warnings,
            approval_id: None,
            reasons: None,
            approvers: None,
            expires_at: None,
        },
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

#[utoipa::path(get, path = "/runtimes", tag = "runtimes", extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = Vec<DeploymentView>)))]
/// Every deployment.
async fn list_runtimes(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<DeploymentView>>> {
    Ok(Json(rt.deployments.list()?.iter().map(Deployment::public_view).collect()))
}

/// A deployment with what is known of it now.
#[derive(Serialize, ToSchema)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    deployment: DeploymentView,
    /// Its registration with the gateway (`status`, the gateway's ids,
    /// `error`); null when no gateway is configured.
    #[schema(value_type = Option<Object>)]
    gateway: Value,
    health: HealthSummary,
    /// CPU, memory and network as the backend reported them at `sampled_at`
    /// (`age_seconds` ago; sampled every `runtime.health.usage_interval_ms`);
    /// null when it is not running or not sampled yet.
    #[schema(value_type = Option<Object>)]
    usage: Value,
    /// Its latest events, newest first (at most 20).
    recent_events: Vec<Event>,
    /// For a package entry: the lock its image was built from, every
    /// package of the tree with its version and hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    bill_of_materials: Option<crate::packages::BillOfMaterials>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthSummary {
    /// The last health check: when, whether it passed, how long it took.
    #[schema(value_type = Option<Object>)]
    last_check: Value,
}

#[utoipa::path(get, path = "/runtimes/{id}", tag = "runtimes", params(("id" = String, Path)),
    extensions(("x-permission" = json!("read"))), responses((status = 200, body = DeploymentDetail)))]
/// One deployment, its gateway registration, health, usage and recent events.
async fn get_runtime(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeploymentDetail>> {
    let d = rt.deployments.get(&id)?;
    // Its registration with the gateway: none when no gateway is configured.
    let gateway = match (&rt.config.gateway, rt.registrations.of(&id)) {
        (None, _) => Value::Null,
        (Some(_), Some(registration)) => registration.public_view(),
        (Some(_), None) => serde_json::json!({"status": "unregistered"}),
    };
    let health = HealthSummary { last_check: serde_json::json!(rt.deployments.last_health(&id)) };
    // As last sampled: the engine is never waited on here.
    let usage = serde_json::json!(rt.deployments.usage(&d));
    let filter = EventFilter { deployment: Some(id), limit: Some(20), ..Default::default() };
    let recent_events = rt.deployments.events(&filter)?;
    let lock = d.build.as_ref().and_then(|b| b.lock.as_deref());
    let bill_of_materials = lock.map(|digest| rt.catalog.bill_of_materials(digest)).transpose()?.flatten();
    let deployment = d.public_view();
    Ok(Json(DeploymentDetail { deployment, gateway, health, usage, recent_events, bill_of_materials }))
}

#[utoipa::path(post, path = "/runtimes/{id}/stop", tag = "runtimes", params(("id" = String, Path)),
    extensions(("x-permission" = json!("operate"))),
    responses((status = 200, body = DeploymentView), (status = 409, body = ErrorBody, description = "Not running")))]
/// Stops a deployment; it keeps its configuration and can be started again.
async fn stop_runtime(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeploymentView>> {
    operable(&rt.deployments, &caller, &id)?;
    Ok(Json(rt.deployments.stop(&id, Some(caller.user.as_str())).await?.public_view()))
}

#[utoipa::path(post, path = "/runtimes/{id}/start", tag = "runtimes", params(("id" = String, Path)),
    extensions(("x-permission" = json!("operate"))),
    responses((status = 200, body = DeploymentView), (status = 409, body = ErrorBody, description = "Not stopped")))]
/// Starts a stopped deployment.
async fn start_runtime(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeploymentView>> {
    operable(&rt.deployments, &caller, &id)?;
    Ok(Json(rt.deployments.start(&id, Some(caller.user.as_str())).await?.public_view()))
}

#[utoipa::path(delete, path = "/runtimes/{id}", tag = "runtimes", params(("id" = String, Path)),
    extensions(("x-permission" = json!("operate"))), responses((status = 204, description = "Removed")))]
/// Removes a deployment: its server, network and record.
async fn delete_runtime(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    operable(&rt.deployments, &caller, &id)?;
    rt.deployments.delete(&id, Some(caller.user.as_str())).await?;
    Ok(StatusCode::NO_CONTENT)
}
