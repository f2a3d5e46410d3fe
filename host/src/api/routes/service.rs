//! The service itself: health and the configured backends.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;

pub fn routes() -> Router<AppState> {
    Router::new().route("/backends", get(list_backends))
}

/// Routes that need no token.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(rt): State<AppState>) -> Json<Value> {
    let backends: Vec<Value> = rt
        .backend_names()
        .into_iter()
        .map(|(name, why)| json!({"name": name, "available": why.is_none(), "reason": why}))
        .collect();
    Json(json!({"status": "ok", "backends": backends}))
}

async fn list_backends(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(rt.backend_records()?))
}
