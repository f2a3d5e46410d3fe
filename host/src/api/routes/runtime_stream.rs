//! `GET /runtimes/stream`: live status as server-sent events — every state
//! change, health result, alert and backend change the caller may see, as
//! it is committed.
//!
//! A client that reads slower than events come falls behind the host's event
//! bus; it then gets one `dropped` event and the stream ends, so a slow
//! reader costs the host nothing but its place in the bus.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{parse_query, ApiResult, AppState, Caller};
use crate::auth::authz::{authorize, may, Action};
use crate::auth::Principal;
use crate::events::{Event, Published, Subscription};

/// A comment this often keeps proxies from closing a quiet stream.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(stream))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Only this deployment's events.
    deployment: Option<String>,
}

#[utoipa::path(get, path = "/runtimes/stream", tag = "runtimes", params(StreamQuery),
    extensions(("x-permission" = json!("read"))),
    responses((status = 200, description = "Server-sent events, one per committed event the caller may see \
                                           (`event:` its kind, `data:` the event as `/events` shows it)",
               content_type = "text/event-stream", body = super::ServerSentEvent)))]
/// Live status: every state change, health result, alert and backend change, as it is committed.
async fn stream(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Read>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let q: StreamQuery = parse_query(query.as_deref().unwrap_or(""))?;
    let events = rt.deployments.subscribe();
    Ok(super::event_stream(status_events(events, caller, q.deployment, KEEP_ALIVE)))
}

/// Whether the stream carries `event` to `caller`: runtime events to anyone
/// who may read runtimes, approval events to those who may read the audit
/// trail; catalog, guardrail and gateway bookkeeping is for `/events`.
fn visible(caller: &Principal, event: &Event) -> bool {
    let family = event.kind().as_str().split('.').next().unwrap_or_default();
    match family {
        "deployment" | "session_server" | "health" | "alert" | "backend" => authorize(caller, &Action::Read).is_ok(),
        "approval" => authorize(caller, &Action::ReadAudit).is_ok(),
        _ => false,
    }
}

fn frame(event: &Published) -> String {
    format!("id: {}\nevent: {}\ndata: {}\n\n", event.seq, event.kind().as_str(), event.json())
}

/// The caller's events as SSE frames, until the client goes or falls behind.
pub(crate) fn status_events(
    events: Subscription,
    caller: Principal,
    deployment: Option<String>,
    keep_alive: Duration,
) -> impl Stream<Item = Result<String, Infallible>> {
    futures_util::stream::unfold(Some(events), move |events| {
        let (caller, deployment) = (caller.clone(), deployment.clone());
        async move {
            let mut events = events?;
            loop {
                let next = tokio::time::timeout(keep_alive, events.recv()).await;
                let frame = match next {
                    Err(_) => ": keep-alive\n\n".to_string(),
                    Ok(Ok(event)) => {
                        let wanted = deployment.as_ref().is_none_or(|d| event.deployment.as_ref() == Some(d));
                        if !wanted || !visible(&caller, &event) {
                            continue;
                        }
                        frame(&event)
                    }
                    Ok(Err(RecvError::Lagged(missed))) => {
                        let data =
                            serde_json::json!({"reason": "the client fell behind the host's events", "missed": missed});
                        return Some((Ok(format!("event: dropped\ndata: {data}\n\n")), None));
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                };
                return Some((Ok(frame), Some(events)));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::events::{ApprovalNamed, EntrySnapshot, EventData, NoDetail};
    use futures_util::StreamExt;
    use std::sync::Arc;

    fn event(seq: u64, data: EventData) -> Event {
        Event {
            seq,
            at: chrono::Utc::now(),
            subject: "deployment/d1".into(),
            deployment: Some("d1".into()),
            actor: None,
            data,
        }
    }

    fn started() -> EventData {
        EventData::DeploymentStart(NoDetail {})
    }

    fn caller(role: Role) -> Principal {
        Principal { user: "u".into(), roles: [role].into(), groups: Vec::new() }
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_gets_one_dropped_event_and_the_end() {
        let (bus, events) = tokio::sync::broadcast::channel(4);
        for seq in 0..10 {
            bus.send(Published::new(event(seq, started()))).unwrap();
        }
        let frames: Vec<String> =
            status_events(events, caller(Role::Viewer), None, KEEP_ALIVE).map(Result::unwrap).collect().await;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert!(frames[0].starts_with("event: dropped\n") && frames[0].contains("\"missed\":6"), "{frames:?}");
    }

    #[tokio::test]
    async fn each_caller_sees_what_they_may_and_asked_for() {
        let (bus, _) = tokio::sync::broadcast::channel::<Arc<Published>>(16);
        let read = |role, deployment: Option<&'static str>| {
            let events = bus.subscribe();
            status_events(events, caller(role), deployment.map(String::from), KEEP_ALIVE).map(Result::unwrap)
        };
        let (viewer, auditor, one) =
            (read(Role::Viewer, None), read(Role::Operator, None), read(Role::Viewer, Some("d1")));
        let mut other = event(2, started());
        other.deployment = Some("d2".into());
        for e in [
            event(0, EventData::ApprovalExpired(ApprovalNamed { approval: "a1".into() })),
            event(1, EventData::CatalogCreated(EntrySnapshot(serde_json::json!({})))),
            other,
            event(3, started()),
        ] {
            bus.send(Published::new(e)).unwrap();
        }
        drop(bus);
        let ids = |frames: Vec<String>| -> Vec<String> {
            frames.iter().map(|f| f.lines().next().unwrap().to_string()).collect()
        };
        assert_eq!(ids(viewer.collect().await), ["id: 2", "id: 3"]);
        assert_eq!(ids(auditor.collect().await), ["id: 0", "id: 2", "id: 3"]);
        assert_eq!(ids(one.collect().await), ["id: 3"]);
    }
}
