//! One file per resource; each says which routes it serves and what a caller
//! needs for each (`Caller<may::…>`).

pub mod approvals;
pub mod backup;
pub mod catalog;
pub mod catalog_import;
pub mod catalog_registration;
pub mod events;
pub mod guardrails;
pub mod mcp;
pub mod metrics;
pub mod plugins;
pub mod runtime_egress;
pub mod runtime_logs;
pub mod runtime_posture;
pub mod runtime_sbom;
pub mod runtime_stream;
pub mod runtimes;
pub mod service;
pub mod supply_chain;

use super::ApiResult;
use crate::auth::authz::{authorize, Action};
use crate::auth::Principal;
use crate::deployment::Deployment;
use crate::deployments::Runtime;

/// One server-sent event, as the OpenAPI document describes a stream's items.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Written as text by `event_stream`'s callers; here for the document.
pub struct ServerSentEvent {
    /// The event's kind (`line`, `done`, `deployment.state`, `message`…).
    event: Option<String>,
    /// Its payload: JSON for most streams, a log line for a build log.
    data: String,
    id: Option<String>,
}

/// A stream of server-sent events, as every streaming route answers.
pub(crate) fn event_stream<S>(frames: S) -> axum::response::Response
where
    S: futures_util::Stream<Item = Result<String, std::convert::Infallible>> + Send + 'static,
{
    use axum::http::header;
    use axum::response::IntoResponse;
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    (headers, axum::body::Body::from_stream(frames)).into_response()
}

/// The deployment, if the caller may operate it (their own, or anyone's for operators).
fn operable(rt: &Runtime, caller: &Principal, id: &str) -> ApiResult<Deployment> {
    let d = rt.get(id)?;
    authorize(caller, &Action::Operate { owner: d.requested_by.as_deref() })?;
    Ok(d)
}
