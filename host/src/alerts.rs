//! Alerts: the events an operator must hear about, sent to the alert webhook
//! (`runtime.alerts.webhook_url`), signed and retried like approval notices.
//! Each delivery's outcome is an event too (`alert.sent`, `alert.failed`).

use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::config::AlertsConfig;
use crate::events::{AlertDelivery, AlertFailure, Event, EventData, EventKind};
use crate::store::{NewEvent, Store};
use crate::webhook;

/// Whether an event is one an operator must hear about.
pub fn is_alert(event: &EventData) -> bool {
    matches!(
        event,
        EventData::DeploymentCrashed(_)
            | EventData::DeploymentOomKilled(_)
            | EventData::DeploymentRestartLimit(_)
            | EventData::HealthFailing(_)
            | EventData::HealthRecovered(_)
            | EventData::BackendUnavailable(_)
            | EventData::BackendRecovered(_)
    )
}

/// What the alert webhook receives: the event, named as an alert.
#[derive(Serialize)]
struct Alert<'a> {
    alert: EventKind,
    subject: &'a str,
    deployment: Option<&'a str>,
    at: chrono::DateTime<chrono::Utc>,
    event_seq: u64,
    /// `type` (the alert again) and `data`.
    #[serde(flatten)]
    event: &'a EventData,
}

pub struct Alerts {
    pub config: AlertsConfig,
    pub http: reqwest::Client,
    pub store: Arc<Store>,
    pub tasks: crate::tasks::Supervisor,
}

impl Alerts {
    /// Runs until stopped; each alert is delivered in the background, so a
    /// slow receiver holds up no other alert.
    pub async fn run(self: Arc<Self>, mut events: crate::events::Subscription, stopping: CancellationToken) {
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
                Ok(event) if is_alert(&event.data) => self.send(&url, Event::clone(&event)),
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "alerts fell behind the event stream"),
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn send(&self, url: &str, event: Event) {
        let alert = Alert {
            alert: event.kind(),
            subject: &event.subject,
            deployment: event.deployment.as_deref(),
            at: event.at,
            event_seq: event.seq,
            event: &event.data,
        };
        let payload = serde_json::to_string(&alert).expect("an alert serializes");
        let (http, store, url) = (self.http.clone(), self.store.clone(), url.to_string());
        let secret = self.config.webhook_secret.clone();
        self.tasks.spawn_to_completion("alert", async move {
            let (alert, event_seq) = (event.kind(), event.seq);
            let data = match webhook::deliver(&http, &url, alert.as_str(), &payload, secret.as_deref()).await {
                Ok(()) => EventData::AlertSent(AlertDelivery { alert, event_seq }),
                Err(error) => {
                    EventData::AlertFailed(AlertFailure { alert, event_seq, error, attempts: webhook::ATTEMPTS })
                }
            };
            let recorded = NewEvent { subject: event.subject, deployment: event.deployment, actor: None, data };
            let _ = store.record(recorded);
        });
    }
}
