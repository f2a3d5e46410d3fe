//! Per-session deployments: for a server that keeps per-client state, the
//! host starts a server of the deployment's for each MCP session — the same
//! backend, image and guardrails, under an instance id of its own — and
//! removes it when the session ends (the client's DELETE, idling out, its
//! server ending, the deployment stopping or going). The deployment proves
//! once that its server speaks MCP, with a probe removed as soon as it is
//! `connected`, and then runs nothing until a client comes.
//!
//! Sessions live in the host's memory: after a host restart their servers
//! are leftovers no one claims, and are removed as such.

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedReceiver;

use super::RuntimeError;
use crate::contract::backend::BackendError;
use crate::contract::{self, types as wit};
use crate::deployment::{Deployment, State};
use crate::deployments::Runtime;
use crate::events::{EventData, NoDetail, SessionServer, SessionServerEnd};
use crate::mcp::bridge::{Launcher, OwnServer};
use crate::mcp::link::Target;
use crate::plugins::Plugin;
use crate::store::{NewEvent, Table};

/// The servers started for sessions, by instance id.
#[derive(Default)]
pub struct SessionServers(Mutex<HashMap<String, Started>>);

#[derive(Clone)]
struct Started {
    deployment: String,
    backend: String,
    /// Set once the backend has answered `deploy`.
    handle: Option<String>,
}

impl SessionServers {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Started>) -> T) -> T {
        f(&mut self.0.lock().expect("session servers poisoned"))
    }

    /// Instances that run for sessions now (none are leftovers).
    pub fn instances(&self) -> Vec<String> {
        self.with(|m| m.keys().cloned().collect())
    }

    fn of(&self, deployment: &str) -> Vec<(String, Started)> {
        self.with(|m| {
            m.iter().filter(|(_, s)| s.deployment == deployment).map(|(i, s)| (i.clone(), s.clone())).collect()
        })
    }
}

impl Launcher for Runtime {
    fn launch<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, Result<OwnServer, String>> {
        Box::pin(async move { self.launch_session_server(deployment).await.map_err(|e| e.to_string()) })
    }
}

impl Runtime {
    /// Starts a server for one session of a connected per-session deployment.
    async fn launch_session_server(&self, id: &str) -> Result<OwnServer, RuntimeError> {
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let d = {
            // Under the deployment's lock: a stop or delete under way is over
            // before this looks, and ends whatever this registers after it.
            let lock = self.lock(id);
            let _guard = lock.lock().await;
            let d = self.get(id)?;
            if d.status != State::Connected {
                return Err(RuntimeError::Conflict(format!("deployment '{id}' is {}, not serving", d.status.name())));
            }
            // Known before it exists, so a cleanup of leftovers running meanwhile leaves it be.
            let started = Started { deployment: id.into(), backend: d.backend.clone(), handle: None };
            self.session_servers.with(|m| m.insert(instance.clone(), started));
            d
        };
        match self.start_session_server(&d, &instance).await {
            Ok(target) => {
                let data = EventData::SessionServerStarted(SessionServer { instance: instance.clone() });
                self.store.record(NewEvent::for_deployment(id, data))?;
                tracing::info!(deployment = id, instance, "started a server for a new session");
                Ok(OwnServer { instance, target })
            }
            Err(e) => {
                self.retire_session_server(&instance, "it did not start").await;
                Err(e)
            }
        }
    }

    async fn start_session_server(&self, d: &Deployment, instance: &str) -> Result<Target, RuntimeError> {
        let conflict = |what: &str| RuntimeError::Conflict(format!("deployment '{}' has no {what}", d.id));
        let stored = d.request.as_ref().ok_or_else(|| conflict("request"))?;
        let image = d.image.as_deref().ok_or_else(|| conflict("image"))?;
        let request = contract::deploy_request(instance, &d.backend, stored, d.requested_by.as_deref());
        let backend = self.backend(&d.backend)?.clone();
        let guardrails = wit::EffectiveGuardrails::from(&d.guardrails_applied);
        let options = contract::GuardrailOptions::of(&d.guardrails_applied).per_session(true);
        let deployed =
            backend.deploy(&request, &guardrails, options, image, Some(stored.entry.source.clone())).await??;
        self.session_servers.with(|m| m.get_mut(instance).map(|s| s.handle = Some(deployed.handle.clone())));
        let status = self.await_running(&backend, &deployed.handle).await?;
        let endpoint = status.endpoint.unwrap_or_default();
        Target::of(&endpoint).ok_or_else(|| {
            RuntimeError::Backend(format!("the session's server answers at '{endpoint}', not over a link"))
        })
    }

    /// Removes a session's server, whose session ended (`why`).
    pub async fn retire_session_server(&self, instance: &str, why: &str) {
        let Some(started) = self.session_servers.with(|m| m.remove(instance)) else { return };
        self.bridge.drop_link(instance);
        let Ok(backend) = self.backend(&started.backend) else { return };
        match &started.handle {
            Some(handle) => match backend.remove(handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(instance, "session server not removed: {e:?}"),
                Err(e) => tracing::warn!(instance, "session server not removed: {e}"),
            },
            None => self.remove_leftovers(&backend, instance).await,
        }
        let data = EventData::SessionServerEnded(SessionServerEnd { instance: instance.into(), reason: why.into() });
        let event = NewEvent::for_deployment(&started.deployment, data);
        if let Err(e) = self.store.record(event) {
            tracing::warn!(instance, "cannot record the session server's end: {e}");
        }
    }

    /// Ends every session of a deployment and removes their servers (and
    /// any being started for a session not yet open).
    pub(super) async fn end_sessions(&self, id: &str, why: &str) {
        let mut instances = self.bridge.forget(id);
        instances.extend(self.session_servers.of(id).into_iter().map(|(instance, _)| instance));
        instances.sort();
        instances.dedup();
        for instance in instances {
            self.retire_session_server(&instance, why).await;
        }
    }

    /// Removes, one by one as their sessions end, the servers the bridge retires.
    pub async fn remove_retired_session_servers(self: Arc<Self>, mut retired: UnboundedReceiver<String>) {
        while let Some(instance) = retired.recv().await {
            self.retire_session_server(&instance, "its session ended").await;
        }
    }

    /// Part of the health watch: a session's server that is no longer
    /// running ends its session (the client initializes again and gets a new one).
    pub(super) async fn check_session_servers(&self) {
        use futures_util::StreamExt;
        let started = self.session_servers.with(|m| m.iter().map(|(i, s)| (i.clone(), s.clone())).collect::<Vec<_>>());
        // A few at a time, as the watch checks deployments: one slow answer holds up no one.
        let checks = started.into_iter().map(|(instance, started)| async move {
            let (Some(handle), Ok(backend)) = (&started.handle, self.backend(&started.backend)) else { return };
            let ended = match backend.status(handle).await {
                Ok(Ok(status)) => matches!(status.state, wit::DeploymentState::Stopped | wit::DeploymentState::Error),
                Ok(Err(BackendError::NotFound(_))) => true,
                _ => false,
            };
            if ended {
                self.bridge.server_ended(&instance);
            }
        });
        futures_util::stream::iter(checks).buffer_unordered(super::reconcile::WATCH_CONCURRENCY).collect::<()>().await;
    }

    /// The logs of a per-session deployment: its sessions' servers', each under a heading.
    /// The lines of every session's own server, each named `session <instance>`;
    /// none while no session is open.
    pub(super) async fn session_server_logs(
        &self,
        d: &Deployment,
        window: crate::logs::Window,
    ) -> Result<Vec<crate::logs::Line>, RuntimeError> {
        let backend = self.backend(&d.backend)?.clone();
        let mut logs = Vec::new();
        for (instance, started) in self.session_servers.of(&d.id) {
            let Some(handle) = started.handle else { continue };
            let service = Some(format!("session {instance}"));
            for line in backend.logs(&handle, window.into()).await?? {
                logs.push(crate::logs::Line { service: service.clone(), ..line.into() });
            }
        }
        Ok(logs)
    }

    /// A per-session deployment that has proven its server speaks MCP
    /// removes that server: sessions start their own.
    pub(super) async fn remove_probe(&self, id: &str, backend: &Plugin, handle: &str) -> Result<(), RuntimeError> {
        backend.remove(handle).await??;
        self.bridge.drop_link(id);
        self.store.update(Table::Deployments, id, |d: &mut Deployment| {
            d.handle = None;
            d.endpoint = None;
            Some(NewEvent::for_deployment(id, EventData::DeploymentProbeRemoved(NoDetail {})))
        })?;
        Ok(())
    }
}
