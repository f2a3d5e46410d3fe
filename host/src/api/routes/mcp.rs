//! `/servers/{id}/mcp`: the MCP data path to a deployed server; and for a
//! bridged server (stdio, HTTP+SSE), `/servers/{id}/sse` with
//! `/servers/{id}/messages` for clients that speak only the HTTP+SSE transport.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use std::sync::Arc;

use super::operable;
use crate::api::{ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::{authorize, may, Action};
use crate::auth::Principal;
use crate::deployments::Runtime;
use crate::mcp::bridge::Servers;
use crate::mcp::generation;
use crate::mcp::proxy::{Route, Via};

/// Largest stateless message the proxy reads to check its headers.
const MAX_CHECKED_BODY: usize = 4 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/servers/{id}/mcp", any(proxy_mcp))
        .route("/servers/{id}/sse", get(open_event_stream))
        .route("/servers/{id}/messages", post(post_message))
}

/// The serving deployment's route, if the caller may use it.
fn route(rt: &Runtime, caller: &Principal, id: &str) -> ApiResult<Arc<Route>> {
    let Some(route) = rt.routes.lookup(id) else {
        let d = operable(rt, caller, id)?;
        return Err(ApiError::Unavailable(format!("deployment '{id}' is {:?}, not serving", d.status)));
    };
    authorize(caller, &Action::UseMcp { deployment: id, owner: route.owner.as_deref() })?;
    Ok(route)
}

/// The servers of a bridged deployment (stdio, HTTP+SSE), shared or one
/// per session; for a streamable-HTTP server, the endpoint it is proxied to.
fn bridged<'a>(rt: &'a Runtime, route: &'a Route) -> Result<Servers<'a>, &'a Uri> {
    match &route.via {
        Via::Proxy(endpoint) => Err(endpoint),
        Via::Link(target) => Ok(Servers::Shared(target)),
        Via::PerSession => Ok(Servers::PerSession(rt)),
    }
}

/// The HTTP+SSE transport is served for bridged servers only.
fn linked<'a>(rt: &'a Runtime, route: &'a Route, id: &str) -> ApiResult<Servers<'a>> {
    bridged(rt, route)
        .map_err(|_| ApiError::NotFound(format!("deployment '{id}' speaks streamable HTTP: use /servers/{id}/mcp")))
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
    let route = route(&rt, &caller, &id)?;
    let endpoint = match bridged(&rt, &route) {
        Ok(servers) => return Ok(rt.bridge.serve(&rt.tasks, &id, servers, request).await),
        Err(endpoint) => endpoint,
    };
    let request = if generation::is_stateless(request.headers()) { checked(request).await? } else { request };
    rt.upstream.forward(endpoint, request).await.map_err(|e| ApiError::Upstream { error: e.to_string(), plugin: None })
}

/// A stateless request whose `Mcp-Method` / `Mcp-Name` headers agree with its
/// body (read whole for that, then passed on as read); 400 otherwise, before
/// the server sees it. Session-generation requests stream through unread.
async fn checked(request: Request) -> ApiResult<Request> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_CHECKED_BODY).await.map_err(|_| {
        ApiError::TooLarge(format!("a stateless MCP message is at most {} MiB", MAX_CHECKED_BODY >> 20))
    })?;
    if parts.method == axum::http::Method::POST {
        let message: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Err(why) = generation::check_headers(&parts.headers, &message) {
            return Err(ApiError::McpHeaders { id: message.get("id").cloned(), reason: why });
        }
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

async fn open_event_stream(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let route = route(&rt, &caller, &id)?;
    let servers = linked(&rt, &route, &id)?;
    Ok(rt.bridge.open_event_stream(&rt.tasks, &id, servers, &format!("/servers/{id}/messages")).await)
}

async fn post_message(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let route = route(&rt, &caller, &id)?;
    let servers = linked(&rt, &route, &id)?;
    let session = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "session")
        .map(|(_, value)| value.into_owned());
    Ok(rt.bridge.post_to_event_stream(&rt.tasks, &id, servers, session, &body).await)
}
