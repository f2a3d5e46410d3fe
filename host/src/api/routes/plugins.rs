//! `/plugins`, `/policy-chain`, `/approval-rules`: the plugins in use,
//! uploading and upgrading rules at runtime, and the order they run in.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{parse_json, ApiError, ApiResult, AppState, Caller, JsonBody};
use crate::auth::authz::may;
use crate::capabilities::Grant;
use crate::deployments::{Runtime, DEFAULT_EVALUATOR};
use crate::plugins::{NewPlugin, Order, Plugin, PluginLimits, Uploaded};

/// A component comes base64-encoded in JSON: up to 64 MiB of body (a rule
/// written in Python carries its interpreter, about 18 MB).
const MAX_UPLOAD_BODY: usize = 64 << 20;

pub fn routes() -> OpenApiRouter<AppState> {
    let (schemas, paths, method_router) = routes!(list_plugins, upload);
    let plugins = (schemas, paths, method_router.layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)));
    let (schemas, paths, method_router) = routes!(get_plugin, upgrade, delete_plugin);
    let plugin = (schemas, paths, method_router.layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)));
    OpenApiRouter::default()
        .routes(plugins)
        .routes(plugin)
        .routes(routes!(versions))
        .routes(routes!(rollback))
        .routes(routes!(policy_chain, set_policy_chain))
        .routes(routes!(approval_rules, set_approval_rules))
}

/// A plugin in use.
#[derive(Serialize, ToSchema)]
pub struct PluginView {
    id: String,
    /// `runtime-backend`, `guardrail-policy` or `approval-rule`.
    world: &'static str,
    /// The host capabilities it was granted.
    grants: Vec<Grant>,
    sha256: String,
    limits: PluginLimits,
    /// `config` (from the host's configuration) or `upload`.
    source: &'static str,
    /// The active uploaded version; null for a configured plugin.
    version: Option<u32>,
}

fn view(p: &Plugin, uploaded: Option<&Uploaded>) -> PluginView {
    PluginView {
        id: p.manifest.id.clone(),
        world: p.world(),
        grants: p.manifest.grants.clone(),
        sha256: p.hash.clone(),
        limits: p.manifest.limits,
        source: if uploaded.is_some() { "upload" } else { "config" },
        version: uploaded.map(|u| u.active),
    }
}

#[utoipa::path(get, path = "/plugins", tag = "plugins", extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = Vec<PluginView>)))]
/// Every plugin in use: backends, policies and approval rules.
async fn list_plugins(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<PluginView>>> {
    let uploaded = rt.deployments.uploaded_plugins()?;
    let plugins = rt
        .deployments
        .loaded_plugins()
        .values()
        .map(|p| view(p, uploaded.iter().find(|u| u.id == p.manifest.id)))
        .collect();
    Ok(Json(plugins))
}

#[utoipa::path(get, path = "/plugins/{id}", tag = "plugins", params(("id" = String, Path)),
    extensions(("x-permission" = json!("read"))), responses((status = 200, body = PluginView)))]
/// One plugin.
async fn get_plugin(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginView>> {
    let plugin = rt.deployments.plugin(&id).ok_or_else(|| ApiError::NotFound(format!("no plugin '{id}'")))?;
    Ok(Json(view(&plugin, rt.deployments.uploaded_plugin(&id).ok().as_ref())))
}

/// A component and its manifest.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    manifest: NewPlugin,
    /// The component (a WebAssembly component for its world), base64.
    component: String,
}

impl UploadBody {
    fn component(&self) -> ApiResult<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(self.component.trim())
            .map_err(|e| ApiError::Invalid { field: "component".into(), reason: format!("not base64: {e}") })
    }
}

/// An uploaded plugin's versions.
#[derive(Serialize, ToSchema)]
pub struct PluginVersions {
    id: String,
    /// Its world while loaded; null when it is not.
    world: Option<&'static str>,
    active: u32,
    versions: Vec<PluginVersion>,
}

#[derive(Serialize, ToSchema)]
pub struct PluginVersion {
    version: u32,
    sha256: String,
    uploaded_at: chrono::DateTime<chrono::Utc>,
    uploaded_by: Option<String>,
    active: bool,
}

fn record_view(rt: &Runtime, record: &Uploaded) -> PluginVersions {
    let versions = record
        .versions
        .iter()
        .map(|v| PluginVersion {
            version: v.version,
            sha256: v.sha256.clone(),
            uploaded_at: v.uploaded_at,
            uploaded_by: v.uploaded_by.clone(),
            active: v.version == record.active,
        })
        .collect();
    PluginVersions {
        id: record.id.clone(),
        world: rt.plugin(&record.id).map(|p| p.world()),
        active: record.active,
        versions,
    }
}

#[utoipa::path(post, path = "/plugins", tag = "plugins", request_body = UploadBody,
    extensions(("x-permission" = json!("manage_plugins"))),
    responses((status = 201, body = PluginVersions),
              (status = 409, body = ErrorBody, description = "A plugin by that id exists")))]
/// Uploads a plugin: checked, tried on its own test cases, then used.
async fn upload(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    JsonBody(body): JsonBody<UploadBody>,
) -> ApiResult<(StatusCode, Json<PluginVersions>)> {
    let component = body.component()?;
    let record = rt.deployments.upload_plugin(body.manifest, &component, Some(&caller.user)).await?;
    Ok((StatusCode::CREATED, Json(record_view(&rt.deployments, &record))))
}

#[utoipa::path(put, path = "/plugins/{id}", tag = "plugins", params(("id" = String, Path)), request_body = UploadBody,
    extensions(("x-permission" = json!("manage_plugins"))), responses((status = 200, body = PluginVersions)))]
/// Upgrades a plugin to a new version; `manifest.id` must match the path.
async fn upgrade(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UploadBody>,
) -> ApiResult<Json<PluginVersions>> {
    if body.manifest.id != id {
        let reason = format!("'{}' does not match the path's '{id}'", body.manifest.id);
        return Err(ApiError::Invalid { field: "manifest.id".into(), reason });
    }
    let component = body.component()?;
    let record = rt.deployments.upgrade_plugin(body.manifest, &component, Some(&caller.user)).await?;
    Ok(Json(record_view(&rt.deployments, &record)))
}

#[utoipa::path(get, path = "/plugins/{id}/versions", tag = "plugins", params(("id" = String, Path)),
    extensions(("x-permission" = json!("read"))), responses((status = 200, body = PluginVersions)))]
/// An uploaded plugin's versions.
async fn versions(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginVersions>> {
    Ok(Json(record_view(&rt.deployments, &rt.deployments.uploaded_plugin(&id)?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// The version to go back to; the one before the active one when absent.
    version: Option<u32>,
}

#[utoipa::path(post, path = "/plugins/{id}/rollback", tag = "plugins", params(("id" = String, Path)),
    request_body(content = Option<RollbackBody>, description = "Optional; none goes back one version"),
    extensions(("x-permission" = json!("manage_plugins"))),
    responses((status = 200, body = PluginVersions),
              (status = 409, body = ErrorBody, description = "No earlier version")))]
/// Goes back to an earlier version of an uploaded plugin.
async fn rollback(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<PluginVersions>> {
    // The body is optional: none goes back one version.
    let to = match body.is_empty() {
        true => None,
        false => parse_json::<RollbackBody>(&body)?.version,
    };
    let record = rt.deployments.rollback_plugin(&id, to, Some(&caller.user)).await?;
    Ok(Json(record_view(&rt.deployments, &record)))
}

#[utoipa::path(delete, path = "/plugins/{id}", tag = "plugins", params(("id" = String, Path)),
    extensions(("x-permission" = json!("manage_plugins"))),
    responses((status = 204, description = "Removed"),
              (status = 409, body = ErrorBody, description = "Deployments or a configured plugin still need it")))]
/// Removes an uploaded plugin.
async fn delete_plugin(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    rt.deployments.delete_plugin(&id, Some(&caller.user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Plugins in the order they run.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    plugins: Vec<String>,
}

/// The guardrail policies in the order they run.
#[derive(Serialize, ToSchema)]
pub struct PolicyChain {
    /// The default evaluator, which always runs first.
    first: &'static str,
    /// The rest, in order.
    plugins: Vec<String>,
}

/// The approval rules in the order they run.
#[derive(Serialize, ToSchema)]
pub struct ApprovalRules {
    plugins: Vec<String>,
}

fn chain_view(rt: &Runtime) -> Json<PolicyChain> {
    Json(PolicyChain { first: DEFAULT_EVALUATOR, plugins: rt.policy_chain_ids() })
}

#[utoipa::path(get, path = "/policy-chain", tag = "plugins", extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = PolicyChain)))]
/// The guardrail policies, in the order they run.
async fn policy_chain(State(rt): State<AppState>, _: Caller<may::Read>) -> Json<PolicyChain> {
    chain_view(&rt.deployments)
}

#[utoipa::path(put, path = "/policy-chain", tag = "plugins", request_body = OrderBody,
    extensions(("x-permission" = json!("manage_plugins"))), responses((status = 200, body = PolicyChain)))]
/// The guardrail policies after the default evaluator (which always runs first), in order.
async fn set_policy_chain(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    JsonBody(body): JsonBody<OrderBody>,
) -> ApiResult<Json<PolicyChain>> {
    if body.plugins.iter().any(|p| p == DEFAULT_EVALUATOR) {
        let reason = format!("'{DEFAULT_EVALUATOR}' always runs first: leave it out");
        return Err(ApiError::Invalid { field: "plugins".into(), reason });
    }
    rt.deployments.set_plugin_order(Order::PolicyChain, body.plugins, Some(&caller.user))?;
    Ok(chain_view(&rt.deployments))
}

#[utoipa::path(get, path = "/approval-rules", tag = "plugins", extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = ApprovalRules)))]
/// The approval rules, in the order they run.
async fn approval_rules(State(rt): State<AppState>, _: Caller<may::Read>) -> Json<ApprovalRules> {
    Json(ApprovalRules { plugins: rt.deployments.approval_rule_ids() })
}

#[utoipa::path(put, path = "/approval-rules", tag = "plugins", request_body = OrderBody,
    extensions(("x-permission" = json!("manage_plugins"))), responses((status = 200, body = ApprovalRules)))]
/// Orders the approval rules.
async fn set_approval_rules(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::ManagePlugins>,
    JsonBody(body): JsonBody<OrderBody>,
) -> ApiResult<Json<ApprovalRules>> {
    rt.deployments.set_plugin_order(Order::ApprovalRules, body.plugins, Some(&caller.user))?;
    Ok(Json(ApprovalRules { plugins: rt.deployments.approval_rule_ids() }))
}
