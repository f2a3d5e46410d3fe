//! Alerts: the events an operator must hear about, sent to the alert webhook
//! (`runtime.alerts.webhook_url`), signed and retried like approval notices.
//! Each delivery's outcome is an event too (`alert.sent`, `alert.failed`).

use serde_json::json;
use std::sync::Arc;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio_util::sync::CancellationToken;

use crate::config::AlertsConfig;
use crate::events::{Event, EventKind};
use crate::store::{NewEvent, Store};
use crate::webhook;

/// The events that are alerts.
pub const ALERTS: &[EventKind] = &[
    EventKind::DeploymentCrashed,
    EventKind::DeploymentOomKilled,
    EventKind::DeploymentRestartLimit,
    EventKind::HealthFailing,
    EventKind::HealthRecovered,
    EventKind::BackendUnavailable,
    EventKind::BackendRecovered,
];

pub struct Alerts {
    pub config: AlertsConfig,
    pub http: reqwest::Client,
    pub store: Arc<Store>,
    pub tasks: crate::tasks::Supervisor,
}

impl Alerts {
    /// Runs until stopped; each alert is delivered in the background, so a
    /// slow receiver holds up no other alert.
    pub async fn run(self: Arc<Self>, mut events: Receiver<Event>, stopping: CancellationToken) {
        let Some(url) = self.config.webhook_url.clone().filter(|u| !u.is_empty()) else {
            tracing::info!("no alert webhook configured (runtime.alerts.webhook_url)");
            return;
        };
        loop {
            let event = tokio::select! {
                _ = stopping.cancelled() => return,
                event = events.recv() => event,
            };
            match event {
                Ok(event) if ALERTS.contains(&event.kind) => self.send(&url, event),
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "alerts fell behind the event stream"),
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn send(&self, url: &str, event: Event) {
        let payload = json!({"alert": event.kind.as_str(), "subject": event.subject, "deployment": event.deployment,
                             "at": event.at, "event_seq": event.seq, "data": event.data})
        .to_string();
        let (http, store, url) = (self.http.clone(), self.store.clone(), url.to_string());
        let secret = self.config.webhook_secret.clone();
        self.tasks.spawn_to_completion("alert", async move {
            let kind = event.kind.as_str();
            let (outcome, data) = match webhook::deliver(&http, &url, kind, &payload, secret.as_deref()).await {
                Ok(()) => (EventKind::AlertSent, json!({"alert": kind, "event_seq": event.seq})),
                Err(why) => (
                    EventKind::AlertFailed,
                    json!({"alert": kind, "event_seq": event.seq, "error": why, "attempts": webhook::ATTEMPTS}),
                ),
            };
            let recorded =
                NewEvent { kind: outcome, subject: event.subject, deployment: event.deployment, actor: None, data };
            let _ = store.record(recorded);
        });
    }
}
