//! `POST /catalog/import`: entries from a catalog document, posted inline or
//! fetched from a host the config lists, answered entry by entry; and the
//! configured remote catalogs (`GET /catalog/sources`, `POST
//! /catalog/sources/sync` to sync them now).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::api::{ApiResult, AppState, Caller, JsonBody};
use crate::auth::authz::may;
use crate::catalog_sources::{self, ImportReport, ImportRequest};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/catalog/import", post(import_catalog))
        .route("/catalog/sources", get(list_sources))
        .route("/catalog/sources/sync", post(sync_sources))
}

async fn import_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    JsonBody(request): JsonBody<ImportRequest>,
) -> ApiResult<Json<ImportReport>> {
    Ok(Json(catalog_sources::import(&rt, request, &caller.user).await?))
}

async fn list_sources(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(catalog_sources::sources(&rt)?))
}

async fn sync_sources(State(rt): State<AppState>, _: Caller<may::WriteCatalog>) -> ApiResult<Json<Vec<Value>>> {
    catalog_sources::sync_due(&rt, true).await;
    Ok(Json(catalog_sources::sources(&rt)?))
}
