//! `GET /runtimes/{id}/posture`: what protects a running server, in one
//! document read from the store (see `deployments::posture`).

use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::deployments::Posture;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(runtime_posture))
}

#[utoipa::path(get, path = "/runtimes/{id}/posture", tag = "runtimes", params(("id" = String, Path)),
    extensions(("x-permission" = json!("read"))), responses((status = 200, body = Posture)))]
/// The guardrails applied and not, what each container runs as, the content
/// that runs, known vulnerabilities and the approval: from what is stored.
async fn runtime_posture(
    State(rt): State<AppState>,
    _: Caller<may::Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<Posture>> {
    Ok(Json(rt.deployments.posture(&id)?))
}
