//! `/catalog`: the MCP servers that can be deployed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::audit;
use crate::api::{ApiError, ApiResult, AppState, Caller, JsonBody, QueryParams};
use crate::auth::authz::may;
use crate::catalog::{history, CatalogEntry, CatalogFilter};
use crate::deployments::Runtime;
use crate::events::EventKind;
use crate::store::{Presence, Table};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/catalog", get(list_catalog).post(create_catalog))
        .route("/catalog/{slug}", get(get_catalog).put(replace_catalog).delete(delete_catalog))
        .route("/catalog/{slug}/versions", get(catalog_versions))
}

async fn list_catalog(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    QueryParams(filter): QueryParams<CatalogFilter>,
) -> ApiResult<Json<Vec<CatalogEntry>>> {
    let entries: Vec<CatalogEntry> = rt.store.list(Table::Catalog)?;
    Ok(Json(entries.into_iter().filter(|e| e.matches(&filter)).collect()))
}

async fn get_catalog(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    let entry = rt.store.get(Table::Catalog, &slug)?;
    entry.map(Json).ok_or_else(|| ApiError::NotFound(format!("catalog entry '{slug}' not found")))
}

pub(super) fn check_entry(rt: &Runtime, entry: &CatalogEntry) -> ApiResult<()> {
    entry.validate(|p| matches!(rt.profile(p), Ok(Some(_))))?;
    Ok(())
}

async fn create_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    JsonBody(entry): JsonBody<CatalogEntry>,
) -> ApiResult<(StatusCode, Json<CatalogEntry>)> {
    if !rt.config.catalog.allow_custom_entries {
        return Err(ApiError::Conflict("custom catalog entries are disabled (catalog.allow_custom_entries)".into()));
    }
    check_entry(&rt, &entry)?;
    let event = audit(EventKind::CatalogCreated, format!("catalog/{}", entry.slug), json!(entry), &caller);
    history::write(&rt.store, &entry, Presence::New, event)?;
    Ok((StatusCode::CREATED, Json(entry)))
}

async fn replace_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
    JsonBody(entry): JsonBody<CatalogEntry>,
) -> ApiResult<Json<CatalogEntry>> {
    if entry.slug != slug {
        return Err(ApiError::Invalid { field: "slug".into(), reason: format!("must match the path ('{slug}')") });
    }
    check_entry(&rt, &entry)?;
    let event = audit(EventKind::CatalogUpdated, format!("catalog/{slug}"), json!(entry), &caller);
    history::write(&rt.store, &entry, Presence::Existing, event)?;
    Ok(Json(entry))
}

async fn delete_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    rt.store.delete(
        Table::Catalog,
        &slug,
        audit(EventKind::CatalogDeleted, format!("catalog/{slug}"), json!({}), &caller),
    )?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every revision of the entry, oldest first, each with the entry as it was.
async fn catalog_versions(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(slug): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let revisions = history::revisions(&rt.store, &slug)?;
    if revisions.is_empty() && rt.store.get::<CatalogEntry>(Table::Catalog, &slug)?.is_none() {
        return Err(ApiError::NotFound(format!("catalog entry '{slug}' not found")));
    }
    let listed: Vec<serde_json::Value> = revisions
        .iter()
        .map(|r| json!({"revision": r.revision, "at": r.at, "by": r.by, "version": r.entry.version, "entry": r.entry}))
        .collect();
    Ok(Json(json!({"slug": slug, "revisions": listed})))
}
