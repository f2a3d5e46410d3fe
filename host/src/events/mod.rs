//! One typed event stream. Every committed change appends its event to the
//! audit trail in the same store transaction, and after the commit publishes
//! it here; anything that reacts to changes (the audit log, and next the live
//! status stream, metrics, alerts, gateway sync) subscribes instead of being
//! called from the places that change state.

mod data;
mod kind;

pub use data::*;
pub use kind::{EventData, EventKind};

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::broadcast;

/// An audit-trail entry as stored and as `GET /events` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub seq: u64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// What changed, e.g. `catalog/echo` or `deployment/<id>`.
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// `type` and `data`.
    #[serde(flatten)]
    pub data: EventData,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.data.kind()
    }
}

/// An event to append with a change.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub subject: String,
    pub deployment: Option<String>,
    pub actor: Option<String>,
    pub data: EventData,
}

impl NewEvent {
    pub fn new(subject: String, data: EventData) -> Self {
        NewEvent { subject, deployment: None, actor: None, data }
    }

    pub fn for_deployment(id: &str, data: EventData) -> Self {
        NewEvent { deployment: Some(id.into()), ..Self::new(format!("deployment/{id}"), data) }
    }

    /// The same event, naming who caused it.
    pub fn by(mut self, actor: Option<&str>) -> Self {
        self.actor = actor.map(String::from);
        self
    }
}

/// Query parameters of `GET /events`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    pub deployment: Option<String>,
    pub actor: Option<String>,
    /// An event type, or a family: `deployment` matches `deployment.state`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub limit: Option<usize>,
}

impl EventFilter {
    pub fn keeps(&self, event: &Event) -> bool {
        let kind = event.kind().as_str();
        self.deployment.as_ref().is_none_or(|d| event.deployment.as_ref() == Some(d))
            && self.actor.as_ref().is_none_or(|a| event.actor.as_ref() == Some(a))
            && self
                .kind
                .as_ref()
                .is_none_or(|k| kind == k || kind.strip_prefix(k.as_str()).is_some_and(|r| r.starts_with('.')))
    }
}

/// Events a subscriber may fall behind by before it misses some (it is told how many).
const CAPACITY: usize = 1024;

/// A committed event as the bus carries it: one shared copy for every
/// subscriber, with its JSON written once for all who pass it on (each
/// listener of the live status stream used to copy and write it anew).
#[derive(Debug)]
pub struct Published {
    event: Event,
    json: std::sync::OnceLock<String>,
}

impl Published {
    pub fn new(event: Event) -> Arc<Published> {
        Arc::new(Published { event, json: Default::default() })
    }

    /// The event as `/events` shows it.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| serde_json::to_string(&self.event).unwrap_or_default())
    }
}

impl std::ops::Deref for Published {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

/// What a subscriber to the bus holds: every event committed from then on.
pub type Subscription = broadcast::Receiver<Arc<Published>>;

/// The in-process publisher of committed events.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Published>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { sender: broadcast::channel(CAPACITY).0 }
    }
}

impl EventBus {
    /// Called by the store after a commit, never before.
    pub fn publish(&self, event: Event) {
        // No subscriber is not an error: the event is in the audit trail regardless.
        let _ = self.sender.send(Published::new(event));
    }

    /// Every event committed from now on, in commit order.
    pub fn subscribe(&self) -> Subscription {
        self.sender.subscribe()
    }
}

/// The audit log: every committed event as one structured log line.
pub async fn log_events(mut events: Subscription, stop: tokio_util::sync::CancellationToken) {
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(e) => tracing::info!(target: "audit", seq = e.seq, kind = e.kind().as_str(), subject = %e.subject,
                                    actor = e.actor.as_deref().unwrap_or("-"), "event"),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(target: "audit", missed, "audit log fell behind; the store has every event")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment_state::State;
    use serde_json::json;

    #[test]
    fn an_event_reads_as_type_and_data_beside_its_header() {
        let event = Event {
            seq: 7,
            at: "2026-01-02T03:04:05Z".parse().unwrap(),
            subject: "deployment/d1".into(),
            deployment: Some("d1".into()),
            actor: None,
            data: EventData::DeploymentState(StateChange { from: State::Pending, to: State::Pulling, message: None }),
        };
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(
            written,
            json!({"seq": 7, "at": "2026-01-02T03:04:05Z", "type": "deployment.state", "subject": "deployment/d1",
                   "deployment": "d1", "data": {"from": "pending", "to": "pulling", "message": null}})
        );
        let read: Event = serde_json::from_value(written).unwrap();
        assert_eq!(read.kind(), EventKind::DeploymentState);
    }

    #[test]
    fn a_replaced_entry_and_a_deprecation_are_told_apart() {
        let read = |data| serde_json::from_value::<CatalogChange>(data).unwrap();
        let deprecated = read(json!({"deprecated": true, "reason": "gone upstream"}));
        assert!(matches!(deprecated, CatalogChange::Deprecated(Deprecation { deprecated: true, .. })));
        let written = read(json!({"slug": "echo", "deprecated": true, "name": "Echo"}));
        assert!(matches!(written, CatalogChange::Written(_)), "{written:?}");
    }

    #[test]
    fn a_payload_of_the_wrong_kind_is_refused() {
        let wrong = json!({"seq": 1, "at": "2026-01-02T03:04:05Z", "type": "deployment.state", "subject": "x",
                           "data": {"approval": "a1"}});
        assert!(serde_json::from_value::<Event>(wrong).is_err());
    }
}
