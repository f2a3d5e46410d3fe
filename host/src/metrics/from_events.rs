//! Figures the event stream tells: how long each deploy phase took (from one
//! state change to the next), and OOM kills.

use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::deployment_state::State;
use crate::events::{Event, EventData, StateChange};

/// A phase is timed when a deployment leaves its state for the next one
/// forward; a failure or a stop part-way is not a phase's duration.
fn phase(from: State, to: State) -> Option<&'static str> {
    match (from, to) {
        (State::Pulling, State::Starting) => Some("pull"),
        (State::Building, State::Starting) => Some("build"),
        (State::Starting, State::Running) => Some("start"),
        (State::Running, State::Connected) => Some("connect"),
        _ => None,
    }
}

/// Since when each deployment has been in its present state.
#[derive(Default)]
pub(super) struct Phases {
    entered: HashMap<String, chrono::DateTime<chrono::Utc>>,
}

impl Phases {
    pub(super) fn observe(&mut self, metrics: &Metrics, event: &Event) {
        let Some(deployment) = event.deployment.as_deref() else { return };
        match &event.data {
            EventData::DeploymentState(StateChange { from, to, .. }) => {
                let since = self.entered.insert(deployment.to_string(), event.at);
                if let (Some(since), Some(phase)) = (since, phase(*from, *to)) {
                    let seconds = (event.at - since).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
                    metrics.deploy_phase(phase, seconds);
                }
            }
            EventData::DeploymentOomKilled(_) => metrics.oom_killed(deployment),
            EventData::DeploymentDeleted(_) => {
                self.entered.remove(deployment);
                metrics.forget_deployment(deployment);
            }
            _ => {}
        }
    }
}

/// Runs until stopped, keeping the event-derived figures.
pub async fn follow_events(
    metrics: Arc<Metrics>,
    mut events: crate::events::Subscription,
    stopping: CancellationToken,
) {
    let mut phases = Phases::default();
    loop {
        let event = tokio::select! {
            _ = stopping.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) => phases.observe(&metrics, &event),
            // Missed events only blur a few durations.
            Err(RecvError::Lagged(missed)) => tracing::debug!(missed, "metrics fell behind the event stream"),
            Err(RecvError::Closed) => return,
        }
    }
}
