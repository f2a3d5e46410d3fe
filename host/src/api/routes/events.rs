//! `/events`: the audit trail.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api::{ApiResult, AppState, Caller, QueryParams};
use crate::auth::authz::may;
use crate::store::EventFilter;

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(list_events))
}

async fn list_events(
    State(rt): State<AppState>,
    _: Caller<may::ReadAudit>,
    QueryParams(filter): QueryParams<EventFilter>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(rt.store.events(&filter)?)))
}
