//! `POST /catalog/import`: entries from a catalog document, posted inline or
//! fetched from a host the config lists, answered entry by entry; and the
//! configured remote catalogs (`GET /catalog/sources`, `POST
//! /catalog/sources/sync` to sync them now).

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{ApiResult, AppState, Caller, JsonBody};
use crate::auth::authz::may;
use crate::remote_catalogs::{ImportReport, ImportRequest};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(import_catalog)).routes(routes!(list_sources)).routes(routes!(sync_sources))
}

#[utoipa::path(post, path = "/catalog/import", tag = "catalog", request_body = ImportRequest,
    extensions(("x-permission" = json!("write_catalog"))),
    responses((status = 200, body = ImportReport),
              (status = 503, body = ErrorBody, description = "The catalog's host did not answer")))]
/// Imports a catalog document (or only reports what it would do, `dry_run`), entry by entry.
async fn import_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    JsonBody(request): JsonBody<ImportRequest>,
) -> ApiResult<Json<ImportReport>> {
    Ok(Json(rt.remote_catalogs.import(request, &caller.user).await?))
}

/// A remote catalog the config lists, and how its last sync went.
#[derive(ToSchema)]
#[allow(dead_code)] // The shape `RemoteCatalogs::sources` answers, for the document.
pub struct CatalogSource {
    url: String,
    /// `mcp-registry`, `docker-mcp`, `contextforge` or `native`.
    format: String,
    sync_interval_hours: u64,
    /// The last sync: when, and what it did or why it failed.
    last: Option<Value>,
}

#[utoipa::path(get, path = "/catalog/sources", tag = "catalog", extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = Vec<CatalogSource>)))]
/// The remote catalogs the config lists.
async fn list_sources(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(rt.remote_catalogs.sources()?))
}

#[utoipa::path(post, path = "/catalog/sources/sync", tag = "catalog",
    extensions(("x-permission" = json!("write_catalog"))), responses((status = 200, body = Vec<CatalogSource>)))]
/// Syncs every remote catalog now.
async fn sync_sources(State(rt): State<AppState>, _: Caller<may::WriteCatalog>) -> ApiResult<Json<Vec<Value>>> {
    rt.remote_catalogs.sync_due(true).await;
    Ok(Json(rt.remote_catalogs.sources()?))
}
