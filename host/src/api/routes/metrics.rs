//! `/metrics`: the Prometheus exposition, for operators and the `metrics` role.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::{ApiResult, AppState, Caller};
use crate::approvals::{ApprovalFilter, ApprovalStatus};
use crate::auth::authz::may;
use crate::deployments::{Runtime, State as DeployState};
use crate::metrics::{text_format, DeploymentFigures, Snapshot, OPENMETRICS};

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// OpenMetrics to a scraper that asks for it (Prometheus does); the
/// Prometheus text format to anyone else.
async fn scrape(State(rt): State<AppState>, _: Caller<may::ReadMetrics>, headers: HeaderMap) -> ApiResult<Response> {
    let text = rt.metrics.render(&snapshot(&rt)?);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("application/openmetrics-text") {
        return Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response());
    }
    Ok(([(header::CONTENT_TYPE, text_format::CONTENT_TYPE)], text_format::from_openmetrics(&text)).into_response())
}

/// The present, as the store and the last health pass know it.
fn snapshot(rt: &Runtime) -> ApiResult<Snapshot> {
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
    let approvals = rt.approvals(&ApprovalFilter::default())?;
    for status in ApprovalStatus::ALL {
        let n = approvals.iter().filter(|a| a.status == status).count();
        snapshot.approvals.push((status.name(), n as u64));
    }
    snapshot.per_deployment = deployments
        .iter()
        .map(|d| DeploymentFigures { deployment: d.id.clone(), restarts: d.restart_count.into(), ..Default::default() })
        .collect();
    Ok(snapshot)
}
