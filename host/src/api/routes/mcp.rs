//! `/servers/{id}/mcp`: the MCP data path to a deployed server; and for a
//! bridged server (stdio, HTTP+SSE), `/servers/{id}/sse` with
//! `/servers/{id}/messages` for clients that speak only the HTTP+SSE transport.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{operable, ServerSentEvent};
use crate::api::error::ErrorBody;
use crate::api::{ApiError, ApiResult, AppState, Caller};
use crate::auth::authz::{authorize, may, Action};
use crate::auth::Principal;
use crate::deployments::Runtime;
use crate::mcp::bridge::Servers;
use crate::mcp::generation;
use crate::mcp::proxy::{self, Route, Via};
use crate::mcp::upstream::ClientConnection;
use crate::metrics;

/// Largest message a client may POST through the proxy.
const MAX_MESSAGE: usize = 16 << 20;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(proxy_mcp)).routes(routes!(open_event_stream)).routes(routes!(post_message))
}

/// A JSON-RPC 2.0 message as MCP defines it: a request, notification or
/// response (a POST may carry a batch of them).
#[derive(utoipa::ToSchema)]
#[schema(as = JsonRpcMessage)]
#[allow(dead_code)] // Forwarded as bytes; here for the document.
struct JsonRpc {
    jsonrpc: String,
    id: Option<serde_json::Value>,
    method: Option<String>,
    params: Option<serde_json::Value>,
    result: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
}

/// The serving deployment's route, if the caller may use it.
fn route(rt: &Runtime, caller: &Principal, id: &str) -> ApiResult<Arc<Route>> {
    let Some(route) = rt.route(id) else {
        let d = operable(rt, caller, id)?;
        return Err(ApiError::Unavailable(format!("deployment '{id}' is {:?}, not serving", d.status)));
    };
    authorize(caller, &Action::UseMcp { deployment: id, owner: route.owner.as_deref() })?;
    Ok(route)
}

/// How a deployment's server is reached.
enum Reach<'a> {
    /// Bridged (stdio, HTTP+SSE): its servers, shared or one per session.
    Bridged(Servers<'a>),
    /// A streamable-HTTP server, at the endpoint it is proxied to.
    Proxied(&'a Uri),
    /// A server component, answered in-process.
    InProcess,
}

fn reach<'a>(rt: &'a Runtime, route: &'a Route) -> Reach<'a> {
    match &route.via {
        Via::Proxy(endpoint) => Reach::Proxied(endpoint),
        Via::Link(target) => Reach::Bridged(Servers::Shared(target)),
        Via::PerSession => Reach::Bridged(Servers::PerSession(rt)),
        Via::Component(_) => Reach::InProcess,
    }
}

/// The HTTP+SSE transport is served for bridged servers only.
fn linked<'a>(rt: &'a Runtime, route: &'a Route, id: &str) -> ApiResult<Servers<'a>> {
    match reach(rt, route) {
        Reach::Bridged(servers) => Ok(servers),
        _ => Err(ApiError::NotFound(format!("deployment '{id}' speaks streamable HTTP: use /servers/{id}/mcp"))),
    }
}

#[utoipa::path(method(post, get, delete), path = "/servers/{id}/mcp", tag = "mcp",
    params(("id" = String, Path),
           ("Mcp-Session-Id" = Option<String>, Header, description = "The session `initialize` opened (2025-11-25)"),
           ("MCP-Protocol-Version" = Option<String>, Header, description = "The protocol version the client speaks"),
           ("Mcp-Method" = Option<String>, Header, description = "Stateless (2026-07-28): the body's `method`"),
           ("Mcp-Name" = Option<String>, Header, description = "Stateless: the tool, prompt or resource the body names")),
    request_body(content = JsonRpc, description = "POST: a JSON-RPC message or batch"),
    extensions(("x-permission" = json!("use_mcp"))),
    responses((status = 200, description = "The server's answer: JSON, or server-sent events (the GET stream too)",
               headers(("Mcp-Session-Id" = String, description = "On `initialize`: the session to name from then on")),
               content((JsonRpc = "application/json"), (ServerSentEvent = "text/event-stream"))),
              (status = 202, description = "A notification or response, accepted"),
              (status = 400, description = "Stateless request whose `Mcp-Method`/`Mcp-Name` headers contradict \
                                            its body (a JSON-RPC error)", body = JsonRpc),
              (status = 502, body = ErrorBody, description = "The server did not answer"),
              (status = 503, body = ErrorBody, description = "The deployment is not serving")))]
/// MCP streamable HTTP to the deployment's server, whatever transport it speaks
/// (stdio and HTTP+SSE servers are bridged): POST messages, GET the server's
/// stream, DELETE to end a session. Either protocol generation: sessions
/// (`Mcp-Session-Id`) or stateless requests.
///
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
    let route = route(&rt.deployments, &caller, &id)?;
    let (method, answer) = match read_message(request).await {
        Ok((method, request)) => (method, forward(&rt.deployments, &route, &id, request).await),
        Err(e) => ("other", Err(e)),
    };
    let answer = answer.unwrap_or_else(IntoResponse::into_response);
    rt.deployments.count_mcp_request(&id, method, answer.status().as_u16(), started.elapsed());
    Ok(answer)
}

async fn forward(rt: &Runtime, route: &Route, id: &str, request: Request) -> ApiResult<Response> {
    let endpoint = match reach(rt, route) {
        Reach::Bridged(servers) => return Ok(rt.serve_bridged(id, servers, request).await),
        Reach::InProcess => return Ok(rt.serve_component(id, request).await),
        Reach::Proxied(endpoint) => endpoint,
    };
    // Over the client connection's own connection to the server (one made for
    // this request alone when the router is served without `PerClientConnection`).
    let connection = request.extensions().get::<ClientConnection>().cloned();
    let answer = connection.unwrap_or_default().forward(endpoint, proxy::upstream_request(request)).await;
    answer.map(proxy::client_response).map_err(|e| ApiError::Upstream { error: e.to_string(), plugin: None })
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

#[utoipa::path(get, path = "/servers/{id}/sse", tag = "mcp", params(("id" = String, Path)),
    extensions(("x-permission" = json!("use_mcp"))),
    responses((status = 200, description = "The HTTP+SSE transport's stream: an `endpoint` event naming where \
                                           to POST, then the server's messages", content_type = "text/event-stream",
               body = ServerSentEvent),
              (status = 503, body = ErrorBody, description = "The deployment is not serving")))]
/// The 2024-11-05 HTTP+SSE transport, for clients that speak only it (bridged servers only).
async fn open_event_stream(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let deployments = &rt.deployments;
    let route = route(deployments, &caller, &id)?;
    let servers = linked(deployments, &route, &id)?;
    Ok(deployments.open_event_stream(&id, servers, &format!("/servers/{id}/messages")).await)
}

/// The session an HTTP+SSE stream named in its `endpoint` event.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read by hand from the raw query; here for the document.
struct SessionQuery {
    session: String,
}

#[utoipa::path(post, path = "/servers/{id}/messages", tag = "mcp", params(("id" = String, Path), SessionQuery),
    request_body = JsonRpc, extensions(("x-permission" = json!("use_mcp"))),
    responses((status = 202, description = "Accepted; the answer comes on the session's stream"),
              (status = 503, body = ErrorBody, description = "The deployment is not serving")))]
/// A message for an HTTP+SSE session (its answer comes on the stream).
async fn post_message(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let deployments = &rt.deployments;
    let route = route(deployments, &caller, &id)?;
    let servers = linked(deployments, &route, &id)?;
    let session = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "session")
        .map(|(_, value)| value.into_owned());
    Ok(deployments.post_to_event_stream(&id, servers, session, &body).await)
}
