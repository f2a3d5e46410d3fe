//! What an owner does with a deployment once it exists: read, stop, start, delete, logs.

use super::RuntimeError;
use crate::deployment::State;
use crate::deployment::{Deployment, Glance};
use crate::deployments::Runtime;
use crate::events::{DeletedDeployment, EventData, NoDetail};
use crate::logs::{Line, Window};
use crate::store::{NewEvent, Table};
use std::sync::Arc;

impl Runtime {
    pub fn get(&self, id: &str) -> Result<Deployment, RuntimeError> {
        self.store.get(Table::Deployments, id)?.ok_or_else(|| RuntimeError::NotFound(format!("deployment '{id}'")))
    }

    pub fn list(&self) -> Result<Vec<Deployment>, RuntimeError> {
        Ok(self.store.list(Table::Deployments)?)
    }

    /// Every deployment at a glance: what the background loops choose by,
    /// read again only after the table changed (the health checks' tick asks
    /// every second, and an idle host changes nothing).
    pub fn glance_all(&self) -> Result<Arc<[Glance]>, RuntimeError> {
        let changes = self.store.changes(Table::Deployments);
        let kept = self.glances.lock().expect("glances poisoned").clone();
        if kept.0 == changes {
            return Ok(kept.1);
        }
        let read: Arc<[Glance]> = self.store.list::<Glance>(Table::Deployments)?.into();
        *self.glances.lock().expect("glances poisoned") = (changes, read.clone());
        Ok(read)
    }

    fn handle_of(&self, d: &Deployment) -> Result<String, RuntimeError> {
        d.handle.clone().ok_or_else(|| {
            RuntimeError::Conflict(format!("deployment '{}' is {:?} and has nothing to act on yet", d.id, d.status))
        })
    }

    pub async fn stop(&self, id: &str, actor: Option<&str>) -> Result<Deployment, RuntimeError> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let d = self.get(id)?;
        // Nothing is done that its record could not then say (a full disk).
        self.store.writable()?;
        if d.is_per_session() {
            // Its servers are its sessions': they end, and a probe left over stops.
            self.end_sessions(id, "the deployment stopped").await;
            if let Some(handle) = &d.handle {
                self.backend(&d.backend)?.stop(handle).await??;
            }
        } else {
            let handle = self.handle_of(&d)?;
            self.backend(&d.backend)?.stop(&handle).await??;
            self.bridge.forget(id);
        }
        self.record_request(id, EventData::DeploymentStop(NoDetail {}), actor)?;
        self.transition_by(id, State::Stopped, Some("stopped on request".into()), actor, |d| d.desired_running = false)
    }

    pub async fn start(&self, id: &str, actor: Option<&str>) -> Result<Deployment, RuntimeError> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let d = self.get(id)?;
        self.store.writable()?;
        let backend = self.backend(&d.backend)?.clone();
        if d.is_per_session() && d.handle.is_none() {
            // Proven again, by a new probe, before sessions start their servers.
            let image =
                d.image.clone().ok_or_else(|| RuntimeError::Conflict(format!("deployment '{id}' has no image")))?;
            let stored =
                d.request.as_ref().ok_or_else(|| RuntimeError::Conflict("deployment has no request".into()))?;
            let request = crate::contract::deploy_request(id, &d.backend, stored, d.requested_by.as_deref());
            self.record_request(id, EventData::DeploymentStart(NoDetail {}), actor)?;
            self.transition_by(id, State::Starting, None, actor, |d| d.desired_running = true)?;
            if let Err(e) = self.deploy_and_connect(&d, &backend, &request, &image).await {
                self.fail(id, e.to_string());
            }
            return self.get(id);
        }
        let handle = self.handle_of(&d)?;
        backend.start(&handle).await??;
        self.record_request(id, EventData::DeploymentStart(NoDetail {}), actor)?;
        // An owner's start gives the host's restarts a fresh budget.
        self.transition_by(id, State::Starting, None, actor, |d| {
            d.desired_running = true;
            d.host_restarts = 0;
        })?;
        if let Err(e) = self.await_connected(id, &backend, &handle).await {
            self.fail(id, e.to_string());
        }
        self.get(id)
    }

    /// Removes everything the deployment created, then its record.
    pub async fn delete(&self, id: &str, actor: Option<&str>) -> Result<(), RuntimeError> {
        self.store.writable()?;
        // A build under way holds the deployment's lock: cancel it rather than wait it out.
        if self.repositories.cancel_build(id) {
            tracing::info!(deployment = id, "build cancelled by the delete");
        }
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let deleted = self.delete_locked(id, actor).await;
        self.repositories.forget(id, deleted.is_ok());
        deleted
    }

    async fn delete_locked(&self, id: &str, actor: Option<&str>) -> Result<(), RuntimeError> {
        let d = self.get(id)?;
        self.store.writable()?;
        self.end_sessions(id, "the deployment was deleted").await;
        if let Some(handle) = &d.handle {
            self.backend(&d.backend)?.remove(handle).await??;
        } else if d.status.may_have_created_objects() {
            // Interrupted mid-way: whatever was created for it goes.
            if let Ok(backend) = self.backend(&d.backend) {
                self.remove_leftovers(&backend, id).await;
            }
        }
        let data = EventData::DeploymentDeleted(DeletedDeployment { slug: d.slug.clone() });
        let event = NewEvent::for_deployment(id, data).by(actor);
        self.store.delete(Table::Deployments, id, event)?;
        self.routes.forget(id);
        self.health.forget(id);
        self.usage_book.forget(id);
        if let Some(engine) = self.backends.engine() {
            engine.egress().forget(id);
        }
        self.locks.lock().expect("lock map poisoned").remove(id);
        Ok(())
    }

    /// The server's log lines in `window`, as the backend reports them.
    pub async fn logs(&self, id: &str, window: Window) -> Result<Vec<Line>, RuntimeError> {
        let d = self.get(id)?;
        if d.is_per_session() && d.handle.is_none() {
            return self.session_server_logs(&d, window).await;
        }
        let handle = self.handle_of(&d)?;
        let lines = self.backend(&d.backend)?.logs(&handle, window.into()).await??;
        Ok(lines.into_iter().map(Line::from).collect())
    }

    fn record_request(&self, id: &str, request: EventData, actor: Option<&str>) -> Result<(), RuntimeError> {
        Ok(self.store.record(NewEvent::for_deployment(id, request).by(actor))?)
    }
}
