//! `/supply-chain`: the evidence the host gathers before anything runs. The
//! OSV database (`runtime.supply_chain.osv_dir`) is read at start; an admin
//! has it read again after updating the directory.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::supply_chain::osv::DatabaseState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(reload_osv))
}

#[utoipa::path(post, path = "/supply-chain/osv/reload", tag = "supply-chain",
    extensions(("x-permission" = json!("write_guardrails"))),
    responses((status = 200, body = DatabaseState, description = "The records now read"),
              (status = 409, body = ErrorBody, description = "No OSV directory is configured"),
              (status = 503, body = ErrorBody, description = "The directory cannot be read")))]
/// Reads the OSV directory again; builds from now on are judged by these records.
async fn reload_osv(State(rt): State<AppState>, _: Caller<may::WriteGuardrails>) -> ApiResult<Json<DatabaseState>> {
    match rt.deployments.reload_advisories()? {
        Some(state) => Ok(Json(state)),
        None => Err(ApiError::Conflict(
            "runtime.supply_chain.osv_dir is not configured: there is no OSV database to read".into(),
        )),
    }
}
