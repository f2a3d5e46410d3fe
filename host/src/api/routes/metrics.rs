//! `/metrics`: the Prometheus exposition, for operators and the `metrics` role.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiResult, AppState, Caller};
use crate::approvals::{ApprovalFilter, ApprovalStatus};
use crate::auth::authz::may;
use crate::deployment::State as DeployState;
use crate::deployments::Runtime;
use crate::metrics::{text_format, DeploymentFigures, Snapshot, OPENMETRICS};

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
    let text = rt.deployments.metrics.render(&snapshot(&rt.deployments).await?);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("application/openmetrics-text") {
        return Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response());
    }
    Ok(([(header::CONTENT_TYPE, text_format::CONTENT_TYPE)], text_format::from_openmetrics(&text)).into_response())
}

/// Backends asked for usage at once during a scrape.
const USAGE_CONCURRENCY: usize = 8;

/// The present, as the store knows it and the backends report it now.
async fn snapshot(rt: &Runtime) -> ApiResult<Snapshot> {
    let deployments = rt.list()?;
    let backends = rt.backend_names();
    let mut snapshot = Snapshot::default();
    for (backend, unavailable) in &backends {
        snapshot.backends.push((backend.clone(), unavailable.is_none()));
        for state in DeployState::ALL {
            let n = deployments.iter().filter(|d| d.backend == *backend && d.status == state).count();
            snapshot.deployments.push((backend.clone(), state.name(), n as u64));
        }
    }
    let approvals = rt.approvals.list(&ApprovalFilter::default())?;
    for status in ApprovalStatus::ALL {
        let n = approvals.iter().filter(|a| a.status == status).count();
        snapshot.approvals.push((status.name(), n as u64));
    }
    // The backends' figures, a few deployments at a time.
    let figures = deployments.into_iter().map(|d| async move {
        let usage = rt.usage(&d).await.ok().flatten().unwrap_or_default();
        DeploymentFigures {
            restarts: (d.restart_count + d.host_restarts).into(),
            deployment: d.id,
            cpu_percent: usage.cpu_percent,
            memory_bytes: usage.memory_bytes,
            memory_limit_bytes: usage.memory_limit_bytes,
            network_rx_bytes: usage.network_rx_bytes,
            network_tx_bytes: usage.network_tx_bytes,
            instances: usage.instances,
            platform_requests: usage.requests_total,
        }
    });
    snapshot.per_deployment = futures_util::stream::iter(figures).buffered(USAGE_CONCURRENCY).collect().await;
    Ok(snapshot)
}
