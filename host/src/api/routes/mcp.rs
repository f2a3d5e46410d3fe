//! `/servers/{id}/mcp`: the MCP data path to a deployed server.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;

use super::operable;
use crate::api::{ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::{authorize, may, Action};

pub fn routes() -> Router<AppState> {
    Router::new().route("/servers/{id}/mcp", any(proxy_mcp))
}

/// Forwards to the deployment's endpoint, streaming both ways, so no host
/// port is ever published. The hot path reads memory only (`Routes`); the
/// store is read just to explain a refusal.
async fn proxy_mcp(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let Some(route) = rt.routes.lookup(&id) else {
        let d = operable(&rt, &caller, &id)?;
        return Err(ApiError::Unavailable(format!("deployment '{id}' is {:?}, not serving", d.status)));
    };
    authorize(&caller, &Action::Operate { owner: route.owner.as_deref() })?;
    if let Some(target) = route.link.as_ref() {
        return Ok(rt.bridge.serve(&rt.tasks, &id, target, request).await);
    }
    rt.upstream.forward(&route, request).await.map_err(|e| ApiError::Upstream { error: e.to_string(), plugin: None })
}
