//! `GET /runtimes/{id}/sbom`: the deployment's software bill of materials,
//! as CycloneDX 1.5 JSON (see `supply_chain::sbom`).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;

const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json; version=1.5";

/// An SBOM as the API answers it.
pub fn cyclonedx(sbom: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, CYCLONEDX_JSON)], sbom.to_string()).into_response()
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(runtime_sbom))
}

#[utoipa::path(get, path = "/runtimes/{id}/sbom", tag = "runtimes", params(("id" = String, Path)),
    extensions(("x-permission" = json!("read"))),
    responses((status = 200, description = "CycloneDX 1.5: every package the image installs, with its purl and published hash",
               content((Object = "application/vnd.cyclonedx+json; version=1.5"))),
              (status = 404, body = ErrorBody, description = "No such deployment, or none made for it (said why)")))]
/// The packages its image installs, as CycloneDX JSON.
async fn runtime_sbom(State(rt): State<AppState>, _: Caller<may::Read>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(cyclonedx(rt.deployments.sbom(&id)?))
}
