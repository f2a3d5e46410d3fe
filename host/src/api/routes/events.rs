//! `/events`: the audit trail.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiResult, AppState, Caller, QueryParams};
use crate::auth::authz::may;
use crate::events::Event;
use crate::store::EventFilter;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(list_events))
}

#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter),
    extensions(("x-permission" = json!("read_audit"))), responses((status = 200, body = Vec<Event>)))]
/// The audit trail, newest first, filtered.
async fn list_events(
    State(rt): State<AppState>,
    _: Caller<may::ReadAudit>,
    QueryParams(filter): QueryParams<EventFilter>,
) -> ApiResult<Json<Vec<Event>>> {
    Ok(Json(rt.deployments.events(&filter)?))
}
