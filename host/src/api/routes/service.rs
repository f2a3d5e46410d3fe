//! The service itself: health, the configured backends, and the OpenAPI
//! document that describes every route.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(list_backends))
}

/// Routes that need no token.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(health)).routes(routes!(openapi_document))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while the data directory cannot take writes (the host still answers and reads).
    #[schema(example = "ok")]
    status: String,
    backends: Vec<BackendHealth>,
    storage: StorageHealth,
}

#[derive(Serialize, ToSchema)]
pub struct BackendHealth {
    name: String,
    available: bool,
    /// Why it is not available.
    reason: Option<String>,
}

/// Whether the store takes writes.
#[derive(Serialize, ToSchema)]
pub struct StorageHealth {
    writable: bool,
    /// Why not: the data directory is full (writes answer 507 until space is freed).
    reason: Option<String>,
}

#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = Health)))]
/// Whether the host answers, which backends it can reach, and whether it can write.
async fn health(State(rt): State<AppState>) -> Json<Health> {
    let backends = rt
        .deployments
        .backend_names()
        .into_iter()
        .map(|(name, why)| BackendHealth { name, available: why.is_none(), reason: why })
        .collect();
    let unwritable = rt.deployments.writable().err().map(|e| e.to_string());
    let status = if unwritable.is_some() { "degraded" } else { "ok" };
    let storage = StorageHealth { writable: unwritable.is_none(), reason: unwritable };
    Json(Health { status: status.into(), backends, storage })
}

/// A configured backend: its plugin, whether it answers, and what it can enforce.
#[derive(ToSchema)]
#[allow(dead_code)] // The shape `Runtime::backend_records` answers, for the document.
pub struct Backend {
    name: String,
    /// The plugin that implements it.
    plugin: Option<String>,
    available: bool,
    reason: Option<String>,
    /// What the backend can enforce, guardrail by guardrail (absent until it first answered).
    capabilities: Option<Value>,
    /// When it was last asked (RFC 3339).
    last_check: Option<String>,
}

#[utoipa::path(get, path = "/backends", tag = "service", extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = Vec<Backend>)))]
/// The configured backends.
async fn list_backends(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(rt.deployments.backend_records()?))
}

#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
/// This document.
async fn openapi_document() -> Json<Value> {
    Json(super::super::openapi::served().clone())
}
