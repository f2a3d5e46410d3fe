//! `/plugins`, `/policy-chain`, `/approval-rules`: the plugins in use,
//! uploading and upgrading rules at runtime, and the order they run in.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{parse_json, ApiError, ApiResult, AppState, Caller, JsonBody};
use crate::auth::authz::may;
use crate::deployments::{Runtime, DEFAULT_EVALUATOR};
use crate::plugins::{NewPlugin, Order, Plugin, Uploaded};

/// A component comes base64-encoded in JSON: up to 64 MiB of body (a rule
/// written in Python carries its interpreter, about 18 MB).
const MAX_UPLOAD_BODY: usize = 64 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/plugins", get(list_plugins).post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)))
        .route(
            "/plugins/{id}",
            get(get_plugin).put(upgrade).delete(delete_plugin).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)),
        )
        .route("/plugins/{id}/versions", get(versions))
        .route("/plugins/{id}/rollback", post(rollback))
        .route("/policy-chain", get(policy_chain).put(set_policy_chain))
        .route("/approval-rules", get(approval_rules).put(set_approval_rules))
}

fn view(p: &Plugin, uploaded: Option<&Uploaded>) -> Value {
    let limits = p.manifest.limits;
    json!({"id": p.manifest.id, "world": p.world(), "grants": p.manifest.grants, "sha256": p.hash,
           "limits": {"memory_mb": limits.memory_mb, "cpu_ms": limits.cpu_ms, "timeout_ms": limits.timeout_ms},
           "source": if uploaded.is_some() { "upload" } else { "config" },
           "version": uploaded.map(|u| u.active)})
}

async fn list_plugins(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Value>> {
    let uploaded = rt.uploads.list()?;
    let plugins: Vec<Value> =
        rt.plugins.all().values().map(|p| view(p, uploaded.iter().find(|u| u.id == p.manifest.id))).collect();
    Ok(Json(json!(plugins)))
}

async fn get_plugin(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let plugin = rt.plugins.get(&id).ok_or_else(|| ApiError::NotFound(format!("no plugin '{id}'")))?;
    Ok(Json(view(&plugin, rt.uploads.get(&id).ok().as_ref())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    manifest: NewPlugin,
    /// The component, base64.
    component: String,
}

impl UploadBody {
    fn component(&self) -> ApiResult<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(self.component.trim())
            .map_err(|e| ApiError::Invalid { field: "component".into(), reason: format!("not base64: {e}") })
    }
}

fn record_view(rt: &Runtime, record: &Uploaded) -> Value {
    let versions: Vec<Value> = record
        .versions
        .iter()
        .map(|v| {
            json!({"version": v.version, "sha256": v.sha256, "uploaded_at": v.uploaded_at,
                        "uploaded_by": v.uploaded_by, "active": v.version == record.active})
        })
        .collect();
    let live = rt.plugins.get(&record.id).map(|p| p.world());
    json!({"id": record.id, "world": live, "active": record.active, "versions": versions})
}

async fn upload(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    JsonBody(body): JsonBody<UploadBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let component = body.component()?;
    let record = rt.upload_plugin(body.manifest, &component, Some(&caller.user)).await?;
    Ok((StatusCode::CREATED, Json(record_view(&rt, &record))))
}

async fn upgrade(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UploadBody>,
) -> ApiResult<Json<Value>> {
    if body.manifest.id != id {
        let reason = format!("'{}' does not match the path's '{id}'", body.manifest.id);
        return Err(ApiError::Invalid { field: "manifest.id".into(), reason });
    }
    let component = body.component()?;
    let record = rt.upgrade_plugin(body.manifest, &component, Some(&caller.user)).await?;
    Ok(Json(record_view(&rt, &record)))
}

async fn versions(State(rt): State<AppState>, _: Caller<may::Read>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(record_view(&rt, &rt.uploads.get(&id)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// The version to go back to; the one before the active one when absent.
    version: Option<u32>,
}

async fn rollback(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional: none goes back one version.
    let to = match body.is_empty() {
        true => None,
        false => parse_json::<RollbackBody>(&body)?.version,
    };
    let record = rt.rollback_plugin(&id, to, Some(&caller.user)).await?;
    Ok(Json(record_view(&rt, &record)))
}

async fn delete_plugin(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    rt.delete_plugin(&id, Some(&caller.user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    plugins: Vec<String>,
}

fn chain_view(rt: &Runtime) -> Json<Value> {
    Json(json!({"first": DEFAULT_EVALUATOR, "plugins": rt.plugins.policy_chain_ids()}))
}

async fn policy_chain(State(rt): State<AppState>, _: Caller<may::Read>) -> Json<Value> {
    chain_view(&rt)
}

/// The guardrail policies after the default evaluator (which always runs first), in order.
async fn set_policy_chain(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    JsonBody(body): JsonBody<OrderBody>,
) -> ApiResult<Json<Value>> {
    if body.plugins.iter().any(|p| p == DEFAULT_EVALUATOR) {
        let reason = format!("'{DEFAULT_EVALUATOR}' always runs first: leave it out");
        return Err(ApiError::Invalid { field: "plugins".into(), reason });
    }
    rt.uploads.set_order(&rt.plugins, Order::PolicyChain, body.plugins, Some(&caller.user))?;
    Ok(chain_view(&rt))
}

async fn approval_rules(State(rt): State<AppState>, _: Caller<may::Read>) -> Json<Value> {
    Json(json!({"plugins": rt.plugins.approval_rule_ids()}))
}

async fn set_approval_rules(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    JsonBody(body): JsonBody<OrderBody>,
) -> ApiResult<Json<Value>> {
    rt.uploads.set_order(&rt.plugins, Order::ApprovalRules, body.plugins, Some(&caller.user))?;
    Ok(Json(json!({"plugins": rt.plugins.approval_rule_ids()})))
}
