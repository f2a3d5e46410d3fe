//! Reconciliation and the health watch: the record follows what the backend reports.

use std::sync::Arc;
use tracing::Instrument;

use super::RuntimeError;
use crate::capabilities::Grant;
use crate::catalog::RestartPolicy;
use crate::contract::backend::{BackendError, DeploymentStatus};
use crate::contract::types as wit;
use crate::deployment::{Deployment, State};
use crate::deployments::Runtime;
use crate::events::{BackendLost, BackendNamed, EventData, Leftovers, OomKill, ServerExit};
use crate::plugins::Plugin;
use crate::store::NewEvent;

/// Deployments the health watch checks at once.
pub(super) const WATCH_CONCURRENCY: usize = 8;
/// A deployment whose backend hears of its containers' changes from the
/// engine's events is observed when one comes, and otherwise only by every
/// this many passes of the watch (a minute, by default): a safety net.
const FULL_PASS_EVERY: u64 = 12;

impl Runtime {
    /// After a host restart: adopt what still runs, mark what vanished,
    /// remove owned objects no deployment claims.
    pub async fn reconcile(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let deployments = self.list()?;
        for d in &deployments {
            let span = tracing::info_span!("reconcile", deployment = %d.id);
            self.reconcile_one(&d.id).instrument(span).await;
        }
        // Sessions' own servers are claimed too, by the sessions holding them.
        let mut known: Vec<String> = deployments.into_iter().map(|d| d.id).collect();
        known.extend(self.session_servers.instances());
        for (name, unavailable) in self.backend_names() {
            let Some(backend) = unavailable.is_none().then(|| self.backends.get(&name).ok()).flatten() else {
                continue;
            };
            let orphans = match backend.orphans(&known).await {
                Ok(Ok(orphans)) => orphans,
                Ok(Err(e)) => {
                    tracing::warn!(backend = %name, "cannot list leftovers: {e:?}");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(backend = %name, "cannot list leftovers: {e}");
                    continue;
                }
            };
            for deployment in orphans {
                tracing::info!(deployment, backend = %name, "removing orphaned objects");
                self.remove_leftovers(&backend, &deployment).await;
                let data = EventData::DeploymentOrphanRemoved(Leftovers { backend: name.clone() });
                self.store.record(NewEvent::for_deployment(&deployment, data))?;
            }
        }
        Ok(())
    }

    /// Best effort: what a deployment without a handle may have left behind.
    pub(super) async fn remove_leftovers(&self, backend: &Plugin, deployment: &str) {
        match backend.remove_leftovers(deployment).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(deployment, "leftovers not removed: {e:?}"),
            Err(e) => tracing::warn!(deployment, "leftovers not removed: {e}"),
        }
    }

    /// Observes one deployment under its lock, from a fresh read of its record,
    /// so a stop or delete racing the watch is never mistaken for a failure.
    async fn reconcile_one(self: &Arc<Self>, id: &str) {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let Ok(d) = self.get(id) else { return };
        let d = &d;
        let Some(handle) = d.handle.clone() else {
            // A connected per-session deployment runs nothing of its own.
            let serving_sessions = d.is_per_session() && d.status == State::Connected;
            if !d.status.is_settled() && !serving_sessions {
                if let Ok(backend) = self.backend(&d.backend) {
                    self.remove_leftovers(&backend, &d.id).await;
                }
                self.fail(&d.id, "interrupted by a host restart before it was created".into());
            }
            return;
        };
        let Ok(backend) = self.backend(&d.backend) else {
            return;
        };
        match backend.status(&handle).await {
            Ok(Ok(status)) => self.observe(d, &backend, &handle, status).await,
            Ok(Err(BackendError::NotFound(m))) => self.fail(&d.id, format!("vanished from the backend: {m}")),
            Ok(Err(e)) => tracing::warn!(deployment = %d.id, "status unknown: {e:?}"),
            Err(e) => tracing::warn!(deployment = %d.id, "status unknown: {e}"),
        }
    }

    /// Brings the record in line with what the backend reports. A process
    /// that ended while it should run is a crash (an event, so an alert);
    /// the backend restarts it up to `max_restarts`, the host restarts a clean
    /// exit under `always`; past that it is left in `error`.
    async fn observe(self: &Arc<Self>, d: &Deployment, backend: &Arc<Plugin>, handle: &str, status: DeploymentStatus) {
        let id = d.id.as_str();
        match status.state {
            wit::DeploymentState::Running
                if d.status != State::Connected && d.status != State::Unhealthy
                    || d.restart_count != status.restart_count =>
            {
                if status.restart_count > d.restart_count {
                    self.crashed(id, &status);
                }
                if let Err(e) = self.await_connected(id, backend, handle).await {
                    self.fail(id, e.to_string());
                }
            }
            wit::DeploymentState::Stopped | wit::DeploymentState::Error
                if d.status != State::Stopped || d.desired_running =>
            {
                let message = status.message.clone().unwrap_or_else(|| "stopped".into());
                let state = if d.desired_running { State::Error } else { State::Stopped };
                let first_seen = d.status != State::Error;
                if d.desired_running && first_seen {
                    self.crashed(id, &status);
                    if let Some(why) = self.host_restarts_after_exit(d, &status) {
                        self.restart_server(d, handle, why).await;
                        return;
                    }
                    let entry = d.request.as_ref().map(|r| &r.entry);
                    let restarts = status.restart_count + d.host_restarts;
                    if entry.is_some_and(|e| e.restart_policy != RestartPolicy::Never && restarts >= e.max_restarts) {
                        self.restart_limit_reached(id, restarts, &message);
                        return;
                    }
                }
                if d.status != state || d.status_message.as_deref() != Some(message.as_str()) {
                    let _ = self.transition(id, state, Some(message), |r| r.restart_count = status.restart_count);
                }
            }
            _ => {}
        }
    }

    /// The events of a process that ended: a crash, and an OOM kill if it was one.
    fn crashed(&self, id: &str, status: &DeploymentStatus) {
        let data = EventData::DeploymentCrashed(ServerExit {
            exit_code: status.exit_code,
            oom_killed: status.oom_killed,
            restart_count: status.restart_count,
            message: status.message.clone(),
        });
        let _ = self.store.record(NewEvent::for_deployment(id, data));
        if status.oom_killed {
            let data = EventData::DeploymentOomKilled(OomKill { message: status.message.clone() });
            let _ = self.store.record(NewEvent::for_deployment(id, data));
        }
    }

    /// Why the host restarts a process that ended and that the backend left
    /// ended, within `max_restarts`: a clean exit under `always`, and any
    /// other exit under a policy that restarts — the backend restarts those
    /// itself unless it was told to stop the process, and an engine never
    /// restarts a container that `docker kill` or `docker stop` ended, so
    /// one stopped behind the host's back would otherwise stay down.
    fn host_restarts_after_exit(&self, d: &Deployment, status: &DeploymentStatus) -> Option<&'static str> {
        let entry = d.request.as_ref().map(|r| &r.entry)?;
        if entry.restart_policy == RestartPolicy::Never || status.restart_count + d.host_restarts >= entry.max_restarts
        {
            return None;
        }
        match status.exit_code {
            Some(0) if entry.restart_policy == RestartPolicy::Always => Some("exited under restart_policy: always"),
            Some(0) | None => None,
            Some(_) => Some("ended by a stop or kill the host did not ask for"),
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
        for (name, why) in &refreshed.lost {
            let data = EventData::BackendUnavailable(BackendLost { backend: name.clone(), error: why.clone() });
            let _ = self.store.record(NewEvent::new(format!("backend/{name}"), data));
        }
        for name in &refreshed.recovered {
            let data = EventData::BackendRecovered(BackendNamed { backend: name.clone() });
            let _ = self.store.record(NewEvent::new(format!("backend/{name}"), data));
        }
        if !refreshed.recovered.is_empty() {
            if let Err(e) = self.reconcile().await {
                tracing::warn!("reconciliation after the backend came back incomplete: {e}");
            }
        }
        self.record_unrecorded();
        self.bridge.expire_idle_sessions();
        self.check_session_servers().await;
        let Ok(deployments) = self.glance_all() else { return };
        let full = self.watch_passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(FULL_PASS_EVERY);
        let watched: Vec<String> = deployments
            .iter()
            .filter(|d| d.status.is_watched() && d.handle.is_some())
            .filter(|d| full || !self.hears_engine_changes(&d.backend))
            .map(|d| d.id.clone())
            .collect();
        let checks = watched.into_iter().map(|id| {
            let runtime = self.clone();
            async move { runtime.reconcile_one(&id).await }
        });
        futures_util::stream::iter(checks).buffer_unordered(WATCH_CONCURRENCY).collect::<()>().await;
    }

    /// Whether `backend` is heard from when its deployments change: it runs
    /// them on the container engine alone (granted it, and no remote API)
    /// and the engine's events are followed now.
    fn hears_engine_changes(&self, backend: &str) -> bool {
        let engine_alone = |p: Arc<Plugin>| {
            let grants = &p.manifest.grants;
            grants.contains(&Grant::ContainerEngine) && !grants.contains(&Grant::OutgoingHttp)
        };
        self.backends.engine().is_some_and(|e| e.hears_changes()) && self.backend(backend).is_ok_and(engine_alone)
    }

    /// Observes each deployment whose containers the engine says changed,
    /// as it happens: a crash is seen at once, not at the next pass.
    pub async fn follow_engine_changes(self: Arc<Self>) {
        let Some(mut changes) = self.backends.engine().map(|e| e.changed_deployments()) else { return };
        loop {
            let id = match changes.recv().await {
                Ok(id) => id,
                // Missed some: the next full pass observes everything.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let watched = self
                .glance_all()
                .is_ok_and(|all| all.iter().any(|d| d.id == id && d.status.is_watched() && d.handle.is_some()));
            if watched {
                let runtime = self.clone();
                self.tasks.spawn("engine change", async move { runtime.reconcile_one(&id).await });
            }
        }
    }
}
