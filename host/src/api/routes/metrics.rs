//! `/metrics`: the Prometheus exposition, for operators and the `metrics` role.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiResult, AppState, Caller};
use crate::auth::authz::may;
use crate::metrics::{text_format, OPENMETRICS};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(scrape))
}

#[utoipa::path(get, path = "/metrics", tag = "metrics", extensions(("x-permission" = json!("read_metrics"))),
    responses((status = 200, description = "Deployments by backend and state, approvals, MCP requests, \
                                           health checks, restarts, CPU, memory and network per deployment",
               content((String = "text/plain; version=0.0.4"),
                       (String = "application/openmetrics-text; version=1.0.0; charset=utf-8")))))]
/// OpenMetrics to a scraper that asks for it (Prometheus does); the
/// Prometheus text format to anyone else.
async fn scrape(State(rt): State<AppState>, _: Caller<may::ReadMetrics>, headers: HeaderMap) -> ApiResult<Response> {
    let text = rt.deployments.render_metrics()?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("application/openmetrics-text") {
        return Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response());
    }
    Ok(([(header::CONTENT_TYPE, text_format::CONTENT_TYPE)], text_format::from_openmetrics(&text)).into_response())
}
