//! Reconciliation and the health watch: the record follows what the backend reports.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use super::model::{Deployment, State};
use super::RuntimeError;
use crate::capabilities::ContainerEngine;
use crate::contract::backend::{BackendError, DeploymentStatus};
use crate::contract::types as wit;
use crate::deployments::Runtime;
use crate::events::EventKind;
use crate::plugins::Plugin;
use crate::store::NewEvent;

/// How often the health watch looks at deployments that should be running.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// Deployments the health watch checks at once.
const WATCH_CONCURRENCY: usize = 8;

impl Runtime {
    /// After a host restart: adopt what still runs, mark what vanished,
    /// remove owned objects no deployment claims.
    pub async fn reconcile(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let deployments = self.list()?;
        for d in &deployments {
            let span = tracing::info_span!("reconcile", deployment = %d.id);
            self.reconcile_one(&d.id).instrument(span).await;
        }
        if let Some(engine) = self.backends.engine() {
            let known: std::collections::HashSet<&str> = deployments.iter().map(|d| d.id.as_str()).collect();
            let orphans = |objects: Vec<crate::capabilities::OwnedObject>| -> Vec<String> {
                objects
                    .into_iter()
                    .filter(|o| !o.deployment.as_deref().is_some_and(|d| known.contains(d)))
                    .filter_map(|o| o.deployment)
                    .collect()
            };
            let mut orphaned =
                orphans(engine.owned_containers().await.map_err(|e| RuntimeError::Backend(format!("{e:?}")))?);
            orphaned
                .extend(orphans(engine.owned_networks().await.map_err(|e| RuntimeError::Backend(format!("{e:?}")))?));
            orphaned.sort();
            orphaned.dedup();
            for deployment in orphaned {
                tracing::info!(deployment, "removing orphaned objects");
                remove_leftovers(engine, &deployment).await;
                self.store.record(NewEvent::for_deployment(
                    EventKind::DeploymentOrphanRemoved,
                    &deployment,
                    serde_json::json!({}),
                ))?;
            }
        }
        Ok(())
    }

    /// Observes one deployment under its lock, from a fresh read of its record,
    /// so a stop or delete racing the watch is never mistaken for a failure.
    async fn reconcile_one(self: &Arc<Self>, id: &str) {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let Ok(d) = self.get(id) else { return };
        let d = &d;
        let Some(handle) = d.handle.clone() else {
            if !d.status.is_settled() {
                if let Some(engine) = self.backends.engine() {
                    remove_leftovers(engine, &d.id).await;
                }
                self.fail(&d.id, "interrupted by a host restart before it was created".into());
            }
            return;
        };
        let Ok(backend) = self.backend(&d.backend).cloned() else {
            return;
        };
        match backend.status(&handle).await {
            Ok(Ok(status)) => self.observe(d, &backend, &handle, status).await,
            Ok(Err(BackendError::NotFound(m))) => self.fail(&d.id, format!("vanished from the backend: {m}")),
            Ok(Err(e)) => tracing::warn!(deployment = %d.id, "status unknown: {e:?}"),
            Err(e) => tracing::warn!(deployment = %d.id, "status unknown: {e}"),
        }
    }

    /// Brings the record in line with what the backend reports.
    async fn observe(self: &Arc<Self>, d: &Deployment, backend: &Arc<Plugin>, handle: &str, status: DeploymentStatus) {
        let id = d.id.as_str();
        match status.state {
            wit::DeploymentState::Running
                if d.status != State::Connected || d.restart_count != status.restart_count =>
            {
                if let Err(e) = self.await_connected(id, backend, handle).await {
                    self.fail(id, e.to_string());
                }
            }
            wit::DeploymentState::Stopped | wit::DeploymentState::Error
                if d.status != State::Stopped || d.desired_running =>
            {
                let message = status.message.unwrap_or_else(|| "stopped".into());
                let state = if d.desired_running { State::Error } else { State::Stopped };
                if d.status != state || d.status_message.as_deref() != Some(message.as_str()) {
                    let _ = self.transition(id, state, Some(message), |r| r.restart_count = status.restart_count);
                }
            }
            _ => {}
        }
    }

    /// The health watch: one pass over deployments that should be up, a few
    /// at a time, so one server that hangs delays nobody else's check.
    pub async fn watch_once(self: &Arc<Self>) {
        use futures_util::StreamExt;
        let refreshed = self.backends.refresh().await;
        if refreshed.changed {
            if let Err(e) = self.register_backends().await {
                tracing::warn!("cannot record backend availability: {e}");
            }
        }
        if !refreshed.recovered.is_empty() {
            if let Err(e) = self.reconcile().await {
                tracing::warn!("reconciliation after the backend came back incomplete: {e}");
            }
        }
        let Ok(deployments) = self.list() else { return };
        let watched: Vec<String> =
            deployments.into_iter().filter(|d| d.status.is_watched() && d.handle.is_some()).map(|d| d.id).collect();
        let checks = watched.into_iter().map(|id| {
            let runtime = self.clone();
            async move { runtime.reconcile_one(&id).await }
        });
        futures_util::stream::iter(checks).buffer_unordered(WATCH_CONCURRENCY).collect::<()>().await;
    }
}

pub(super) async fn remove_leftovers(engine: &ContainerEngine, deployment: &str) {
    let mine = |o: &crate::capabilities::OwnedObject| o.deployment.as_deref() == Some(deployment);
    if let Ok(containers) = engine.owned_containers().await {
        for c in containers.iter().filter(|c| mine(c)) {
            let _ = engine.remove_container(&c.id).await;
        }
    }
    if let Ok(networks) = engine.owned_networks().await {
        for n in networks.iter().filter(|n| mine(n)) {
            let _ = engine.remove_network(&n.id).await;
        }
    }
}
