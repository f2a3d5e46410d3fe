//! `/servers/{id}/mcp`: the MCP data path to a deployed server; and for a
//! bridged server (stdio, HTTP+SSE), `/servers/{id}/sse` with
//! `/servers/{id}/messages` for clients that speak only the HTTP+SSE transport.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

use super::operable;
use crate::api::{ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::{authorize, may, Action};
use crate::auth::Principal;
use crate::deployments::Runtime;
use crate::mcp::bridge::Servers;
use crate::mcp::generation;
use crate::mcp::proxy::{Route, Via};
use crate::metrics;

/// Largest message a client may POST through the proxy.
const MAX_MESSAGE: usize = 16 << 20;

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

/// Forwards to the deployment's endpoint, streaming the answer back, so no
/// host port is ever published. The hot path reads memory only (`Routes`);
/// the store is read just to explain a refusal. Each request is counted by
/// its method and outcome, and timed to the answer's headers.
async fn proxy_mcp(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let started = Instant::now();
    let route = route(&rt, &caller, &id)?;
    let (method, answer) = match read_message(request).await {
        Ok((method, request)) => (method, forward(&rt, &route, &id, request).await),
        Err(e) => ("other", Err(e)),
    };
    let answer = answer.unwrap_or_else(IntoResponse::into_response);
    rt.metrics.mcp_request(&id, method, answer.status().as_u16(), started.elapsed());
    Ok(answer)
}

async fn forward(rt: &Runtime, route: &Route, id: &str, request: Request) -> ApiResult<Response> {
    let endpoint = match bridged(rt, route) {
        Ok(servers) => return Ok(rt.bridge.serve(&rt.tasks, id, servers, request).await),
        Err(endpoint) => endpoint,
    };
    rt.upstream.forward(endpoint, request).await.map_err(|e| ApiError::Upstream { error: e.to_string(), plugin: None })
}

/// The JSON-RPC method `"method": "…"` names, without reading the rest.
#[derive(serde::Deserialize)]
struct MethodOnly<'a> {
    #[serde(borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
}

/// A POSTed message is read whole (it is one JSON-RPC message, or a batch),
/// for its method's label, and a stateless one's `Mcp-Method` / `Mcp-Name`
/// headers must agree with it (400 otherwise, before the server sees it).
/// GET (the server's event stream) and DELETE (a session's end) pass unread.
async fn read_message(request: Request) -> ApiResult<(&'static str, Request)> {
    match *request.method() {
        Method::GET => return Ok(("stream", request)),
        Method::DELETE => return Ok(("session_end", request)),
        Method::POST => {}
        _ => return Ok(("other", request)),
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_MESSAGE).await.map_err(|_| {
        ApiError::TooLarge(format!("an MCP message through the proxy is at most {} MiB", MAX_MESSAGE >> 20))
    })?;
    let method = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => "batch",
        _ => match serde_json::from_slice::<MethodOnly>(&bytes) {
            Ok(message) => metrics::mcp_method(message.method.as_deref()),
            Err(_) => "other",
        },
    };
    if generation::is_stateless(&parts.headers) {
        let message: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Err(why) = generation::check_headers(&parts.headers, &message) {
            return Err(ApiError::McpHeaders { id: message.get("id").cloned(), reason: why });
        }
    }
    Ok((method, Request::from_parts(parts, axum::body::Body::from(bytes))))
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
