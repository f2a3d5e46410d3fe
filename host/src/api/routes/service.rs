//! The service itself: health and the configured backends.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::store::Table;

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

/// The stored records (plugin, capabilities), with availability as it is
/// now — the record follows at the watch's next pass, /health at once — and
/// when each was last checked.
async fn list_backends(State(rt): State<AppState>, _: Caller<may::Read>) -> ApiResult<Json<Vec<Value>>> {
    let mut backends: Vec<Value> = rt.store.list(Table::Backends)?;
    let live = rt.backend_names();
    for backend in &mut backends {
        let name = backend["name"].as_str().unwrap_or_default().to_string();
        if let Some((_, why)) = live.iter().find(|(n, _)| *n == name) {
            backend["available"] = json!(why.is_none());
            backend["reason"] = json!(why);
        }
        backend["last_check"] = json!(rt.backends.checked_at(&name));
    }
    Ok(Json(backends))
}
