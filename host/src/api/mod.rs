//! The HTTP API: one file per resource under `routes/`, the caller and their
//! input (`extract`), and one error type mapped to HTTP answers (`error`).
//! Every answer is JSON, errors included, whatever rejected the request.

mod error;
mod extract;
mod openapi;
mod routes;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ApiResult};
pub use extract::{parse_json, parse_query, Caller, EntryBody, JsonBody, QueryParams};
pub use openapi::to_pretty_json as openapi_json;
// The admin UI streams the same live status, to a browser's session.
pub(crate) use routes::event_stream;
pub(crate) use routes::runtime_stream::{status_events, KEEP_ALIVE};

use crate::auth::Authenticator;

pub type AppState = Arc<crate::services::Services>;

/// Largest error body a non-JSON rejection may carry into its JSON rewrite.
const REWRITTEN_ERROR_LIMIT: usize = 64 * 1024;

/// The routes that need a valid token, each with its OpenAPI description.
fn protected_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .merge(routes::service::routes())
        .merge(routes::catalog::routes())
        .merge(routes::catalog_import::routes())
        .merge(routes::catalog_registration::routes())
        .merge(routes::guardrails::routes())
        .merge(routes::runtimes::routes())
        .merge(routes::runtime_stream::routes())
        .merge(routes::runtime_logs::routes())
        .merge(routes::runtime_egress::routes())
        .merge(routes::runtime_posture::routes())
        .merge(routes::runtime_sbom::routes())
        .merge(routes::approvals::routes())
        .merge(routes::plugins::routes())
        .merge(routes::events::routes())
        .merge(routes::metrics::routes())
        .merge(routes::supply_chain::routes())
        .merge(routes::backup::routes())
}

/// Every documented route: the API, the public routes and the MCP data path.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(routes::service::public_routes())
        .merge(protected_routes())
        .merge(routes::mcp::routes())
}

pub fn router(runtime: AppState, auth: Arc<Authenticator>) -> Router {
    let max_body = runtime.config.api.max_body_bytes;
    let (protected, _) = protected_routes().split_for_parts();
    let (public, _) = routes::service::public_routes().split_for_parts();
    let api = protected
        .route_layer(axum::middleware::from_fn_with_state(auth.clone(), authenticate))
        // Health and the OpenAPI document need no token.
        .merge(public)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed("method not allowed on this route".into()) })
        .layer(axum::middleware::from_fn(errors_as_json))
        .layer(DefaultBodyLimit::max(max_body));
    // The MCP data path streams whatever the server answers, errors included.
    let (data_path, _) = routes::mcp::routes().split_for_parts();
    let data_path = data_path.route_layer(axum::middleware::from_fn_with_state(auth, authenticate));
    api.merge(data_path).layer(axum::middleware::from_fn(request_span)).with_state(runtime)
}

/// Puts the caller's `Principal` in the request, or answers 401.
async fn authenticate(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth.verify_header(header) {
        Ok(principal) => {
            tracing::Span::current().record("user", principal.user.as_str());
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => ApiError::Unauthorized(e.to_string()).into_response(),
    }
}

async fn request_span(request: Request, next: axum::middleware::Next) -> Response {
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), user = tracing::field::Empty);
    async move {
        let response = next.run(request).await;
        tracing::debug!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

/// A rejection from below the handlers (a body limit, an extractor of axum's
/// own) still answers JSON: its text becomes `{"error": …}`.
async fn errors_as_json(request: Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(response.status().is_client_error() || response.status().is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, REWRITTEN_ERROR_LIMIT).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => parts.status.canonical_reason().unwrap_or("error").to_string(),
    };
    let body = serde_json::to_vec(&serde_json::json!({"error": text})).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
