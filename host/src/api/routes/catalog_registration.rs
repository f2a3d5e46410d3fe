//! `/catalog/{slug}/registration`: a remote entry in the gateway. Marking it
//! (`PUT`) or unmarking it (`DELETE`) is a change to the entry, kept in its
//! history like any other; the gateway sync does the registering.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::catalog::CatalogEntry;
use crate::gateway::remote;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(show, register, withdraw))
}

/// A remote entry's registration with the gateway.
#[derive(ToSchema)]
#[allow(dead_code)] // The shape `view` answers, for the document.
pub struct Registration {
    slug: String,
    /// Whether an admin asked for it to be registered.
    register_with_gateway: bool,
    /// As the gateway sync left it (`status`, the gateway's ids, `error`); null before the first sync.
    #[schema(value_type = Option<Object>)]
    registration: Option<Value>,
}

fn entry(rt: &AppState, slug: &str) -> ApiResult<CatalogEntry> {
    Ok(rt.catalog.get(slug)?)
}

/// Whether the entry is marked, and its registration as the sync left it.
fn view(rt: &AppState, entry: &CatalogEntry) -> Value {
    let registration = rt.registrations.of(&remote::key(&entry.slug));
    json!({
        "slug": entry.slug,
        "register_with_gateway": entry.register_with_gateway,
        "registration": registration.map(|r| r.public_view()),
    })
}

#[utoipa::path(get, path = "/catalog/{slug}/registration", tag = "catalog", params(("slug" = String, Path)),
    extensions(("x-permission" = json!("read"))), responses((status = 200, body = Registration)))]
/// Whether the entry is registered with the gateway.
async fn show(State(rt): State<AppState>, _: Caller<may::Read>, Path(slug): Path<String>) -> ApiResult<Json<Value>> {
    let entry = entry(&rt, &slug)?;
    Ok(Json(view(&rt, &entry)))
}

#[utoipa::path(put, path = "/catalog/{slug}/registration", tag = "catalog", params(("slug" = String, Path)),
    extensions(("x-permission" = json!("write_catalog"))),
    responses((status = 200, body = Registration, description = "Already marked"),
              (status = 202, body = Registration, description = "Marked; the gateway sync registers it"),
              (status = 409, body = ErrorBody, description = "No gateway is configured"),
              (status = 422, body = ErrorBody, description = "Not a remote entry, or one that needs credentials")))]
/// Registers a remote entry with the gateway, at its own URL.
async fn register(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if rt.config.gateway.is_none() {
        return Err(ApiError::Conflict("no gateway is configured (runtime.gateway) to register with".into()));
    }
    mark(rt, caller, slug, true).await
}

#[utoipa::path(delete, path = "/catalog/{slug}/registration", tag = "catalog", params(("slug" = String, Path)),
    extensions(("x-permission" = json!("write_catalog"))),
    responses((status = 200, body = Registration, description = "Was not marked"),
              (status = 202, body = Registration, description = "Unmarked; the gateway sync deregisters it")))]
/// Withdraws a remote entry from the gateway.
async fn withdraw(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    mark(rt, caller, slug, false).await
}

/// Sets the entry's mark; 202 when it changed (the sync follows), 200 when it already was.
async fn mark(
    rt: AppState,
    caller: crate::auth::Principal,
    slug: String,
    register: bool,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut entry = entry(&rt, &slug)?;
    if entry.register_with_gateway == register {
        return Ok((StatusCode::OK, Json(view(&rt, &entry))));
    }
    entry.register_with_gateway = register;
    let entry = rt.catalog.replace(entry, &caller.user).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&rt, &entry))))
}
