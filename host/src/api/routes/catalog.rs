//! `/catalog`: the MCP servers that can be deployed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{ApiError, ApiResult, AppState, Caller, EntryBody, QueryParams};
use crate::auth::authz::may;
use crate::catalog::{CatalogEntry, CatalogFilter};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_catalog, create_catalog))
        .routes(routes!(get_catalog, replace_catalog, delete_catalog))
        .routes(routes!(catalog_versions))
}

#[utoipa::path(get, path = "/catalog", tag = "catalog", params(CatalogFilter),
    extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = Vec<CatalogEntry>)))]
/// The entries that match every filter given; deprecated ones only when asked.
async fn list_catalog(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    QueryParams(filter): QueryParams<CatalogFilter>,
) -> ApiResult<Json<Vec<CatalogEntry>>> {
    Ok(Json(rt.catalog.list(&filter)?))
}

/// An entry, with what its package was built from.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CatalogEntryDetail {
    #[serde(flatten)]
    entry: CatalogEntry,
    /// For a package entry: the lock of each build of its version (one per
    /// base image), every package of the tree with its hash. Read-only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bill_of_materials: Vec<crate::packages::BillOfMaterials>,
}

#[utoipa::path(get, path = "/catalog/{slug}", tag = "catalog", params(("slug" = String, Path)),
    extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = CatalogEntryDetail)))]
/// One entry; a package entry with the bill of materials of its builds.
async fn get_catalog(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntryDetail>> {
    let entry = rt.catalog.get(&slug)?;
    let bill_of_materials = rt.catalog.bills_of_materials(&entry)?;
    Ok(Json(CatalogEntryDetail { entry, bill_of_materials }))
}

#[utoipa::path(post, path = "/catalog", tag = "catalog", request_body = CatalogEntry,
    extensions(("x-permission" = json!("write_catalog"))),
    responses((status = 201, body = CatalogEntry,
               links(("GetEntry" = (operation_id = "get_catalog", parameters(("slug" = "$response.body#/slug")))),
                     ("DeleteEntry" = (operation_id = "delete_catalog", parameters(("slug" = "$response.body#/slug")))))),
              (status = 409, body = ErrorBody, description = "The slug is taken, or custom entries are disabled"),
              (status = 502, body = ErrorBody, description = "A package entry's index cannot be reached (`field` names what needed it)")))]
/// Adds an entry. A package entry's version is resolved against its index
/// (a range or a tag to an exact version, kept with `requested_version`)
/// and its executable chosen.
async fn create_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    EntryBody(entry): EntryBody,
) -> ApiResult<(StatusCode, Json<CatalogEntry>)> {
    let written = rt.catalog.create(entry, &caller.user).await?;
    Ok((StatusCode::CREATED, Json(written)))
}

#[utoipa::path(put, path = "/catalog/{slug}", tag = "catalog", params(("slug" = String, Path)),
    request_body = CatalogEntry, extensions(("x-permission" = json!("write_catalog"))),
    responses((status = 200, body = CatalogEntry),
              (status = 502, body = ErrorBody, description = "A package entry's index cannot be reached (`field` names what needed it)")))]
/// Replaces an entry (a new revision in its history); `slug` must match the path.
async fn replace_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
    EntryBody(entry): EntryBody,
) -> ApiResult<Json<CatalogEntry>> {
    if entry.slug != slug {
        return Err(ApiError::Invalid { field: "slug".into(), reason: format!("must match the path ('{slug}')") });
    }
    Ok(Json(rt.catalog.replace(entry, &caller.user).await?))
}

#[utoipa::path(delete, path = "/catalog/{slug}", tag = "catalog", params(("slug" = String, Path)),
    extensions(("x-permission" = json!("write_catalog"))),
    responses((status = 204, description = "Deleted")))]
/// Deletes an entry; its deployments go on.
async fn delete_catalog(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::WriteCatalog>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    rt.catalog.delete(&slug, &caller.user)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct CatalogVersions {
    slug: String,
    /// Oldest first.
    revisions: Vec<CatalogRevision>,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogRevision {
    revision: u32,
    at: chrono::DateTime<chrono::Utc>,
    /// Who made the change.
    by: Option<String>,
    /// The entry's own `version`.
    version: Option<String>,
    /// The entry as it was.
    entry: CatalogEntry,
}

#[utoipa::path(get, path = "/catalog/{slug}/versions", tag = "catalog", params(("slug" = String, Path)),
    extensions(("x-permission" = json!("read"))),
    responses((status = 200, body = CatalogVersions)))]
/// Every revision of the entry, oldest first, each with the entry as it was.
async fn catalog_versions(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogVersions>> {
    let revisions = rt
        .catalog
        .revisions(&slug)?
        .into_iter()
        .map(|r| CatalogRevision {
            revision: r.revision,
            at: r.at,
            by: r.by,
            version: r.entry.version.clone(),
            entry: r.entry,
        })
        .collect();
    Ok(Json(CatalogVersions { slug, revisions }))
}
