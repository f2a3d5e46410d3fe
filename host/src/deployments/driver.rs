//! Driving a deployment forward: pending → pulling → starting → running →
//! connected, or error. Every step is one store transaction with its event.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use super::Checked;
use super::RuntimeError;
use crate::catalog::ServerSource;
use crate::contract::backend::DeploymentStatus;
use crate::contract::{self, types as wit, GuardrailOptions};
use crate::deployment::{Deployment, State};
use crate::deployments::Runtime;
use crate::events::{DeployRequest, DeployWarnings, EventData, StateChange};
use crate::guardrails::Warning;
use crate::mcp::client::{McpError, McpSession};
use crate::mcp::link::Target;
use crate::mcp::proxy::Via;
use crate::plugins::Plugin;
use crate::store::{NewEvent, Table};

/// How long a started server may take to be running and to answer MCP.
const START_DEADLINE: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How MCP traffic reaches a deployment's server while it is up: at its
/// endpoint, or, in per-session mode, to a server started for each session
/// once the deployment has proven it speaks MCP.
pub(super) fn serving(d: &Deployment) -> Option<Via> {
    match d.status {
        State::Connected if d.is_per_session() => Some(Via::PerSession),
        State::Running | State::Connected | State::Unhealthy if !d.is_per_session() => {
            Via::endpoint(d.endpoint.as_deref()?)
        }
        _ => None,
    }
}

impl Runtime {
    /// Records a checked request as `pending` and starts driving it.
    pub fn accept(self: &Arc<Self>, checked: Checked) -> Result<Deployment, RuntimeError> {
        let deployment = Self::deployment(checked, State::Pending);
        let data = EventData::DeploymentRequested(DeployRequest {
            slug: deployment.slug.clone(),
            backend: deployment.backend.clone(),
            profile: deployment.profile.clone(),
            guardrails_applied: Box::new(deployment.guardrails_applied.clone()),
            guardrails_warnings: deployment.guardrails_warnings.clone(),
        });
        let event = NewEvent::for_deployment(&deployment.id, data).by(deployment.requested_by.as_deref());
        self.store.create(Table::Deployments, &deployment.id, &deployment, event)?;
        self.spawn_drive(&deployment.id);
        Ok(deployment)
    }

    /// The record of a checked request, in its first state.
    pub fn deployment(checked: Checked, status: State) -> Deployment {
        let now = chrono::Utc::now();
        let r = &checked.plugin_request;
        Deployment {
            id: r.deployment_id.clone(),
            slug: checked.request.entry.slug.clone(),
            backend: r.backend.clone(),
            profile: checked.guardrails.profile.clone(),
            status,
            status_message: None,
            desired_running: true,
            endpoint: None,
            image: None,
            restart_count: 0,
            host_restarts: 0,
            tools: Vec::new(),
            guardrails_applied: checked.guardrails,
            guardrails_warnings: checked.warnings,
            requested_by: r.requested_by.clone(),
            created_at: now,
            updated_at: now,
            request: Some(checked.request),
            handle: None,
            build: None,
            approved: None,
            vulnerabilities: None,
            contents: None,
        }
    }

    /// Drives a pending deployment to `connected` in the background.
    pub fn spawn_drive(self: &Arc<Self>, id: &str) {
        let runtime = self.clone();
        let id = id.to_string();
        let span = tracing::info_span!("deployment", id = %id);
        // Run to completion: at shutdown the host waits for it (within a grace);
        // a deploy cut off by exit is recorded as interrupted at the next start.
        self.tasks.spawn_to_completion("deploy", async move { runtime.drive_new(&id).await }.instrument(span));
    }

    /// Moves a deployment to `state`, recording the event.
    pub(super) fn transition(
        &self,
        id: &str,
        state: State,
        message: Option<String>,
        change: impl FnOnce(&mut Deployment),
    ) -> Result<Deployment, RuntimeError> {
        self.transition_by(id, state, message, None, change)
    }

    /// A transition someone asked for: the event names them. Refused (409,
    /// nothing written) unless the state machine allows it from the state
    /// the record is in at that moment.
    pub(crate) fn transition_by(
        &self,
        id: &str,
        state: State,
        message: Option<String>,
        actor: Option<&str>,
        change: impl FnOnce(&mut Deployment),
    ) -> Result<Deployment, RuntimeError> {
        let mut refused_from = None;
        let deployment = self.store.update(Table::Deployments, id, |d: &mut Deployment| {
            let from = d.status;
            if !from.can_go_to(state) {
                refused_from = Some(from);
                return None;
            }
            d.status = state;
            d.status_message = message.clone();
            d.updated_at = chrono::Utc::now();
            change(d);
            let data = EventData::DeploymentState(StateChange { from, to: state, message: message.clone() });
            Some(NewEvent::for_deployment(id, data).by(actor))
        })?;
        if let Some(from) = refused_from {
            return Err(RuntimeError::Conflict(format!(
                "deployment '{id}' is {}, and cannot become {}",
                from.name(),
                state.name()
            )));
        }
        self.routes.observe(id, serving(&deployment), deployment.requested_by.as_deref());
        tracing::info!(deployment = id, state = ?state, message = message.as_deref().unwrap_or(""), "state changed");
        Ok(deployment)
    }

    /// Records a failure, once: the health watch may observe the same one again.
    pub(super) fn fail(&self, id: &str, reason: String) {
        let already = self
            .get(id)
            .is_ok_and(|d| d.status == State::Error && d.status_message.as_deref() == Some(reason.as_str()));
        if already {
            return;
        }
        tracing::warn!(deployment = id, "{reason}");
        match self.transition(id, State::Error, Some(reason.clone()), |_| {}) {
            Err(e) if super::unrecorded::is_no_space(&e) => self.keep_unrecorded(id, reason),
            Err(e) => tracing::error!(deployment = id, "cannot record failure: {e}"),
            Ok(_) => {}
        }
    }

    /// pending → pulling → starting → running → connected.
    async fn drive_new(&self, id: &str) {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        match self.try_drive_new(id).await {
            Err(e) if super::unrecorded::is_no_space(&e) => {
                let reason = self.stop_unrecordable(id, &e).await;
                self.fail(id, reason);
            }
            Err(e) => self.fail(id, e.to_string()),
            Ok(()) => {}
        }
    }

    async fn try_drive_new(&self, id: &str) -> Result<(), RuntimeError> {
        let d = self.get(id)?;
        let stored = d.request.as_ref().ok_or_else(|| RuntimeError::Conflict("deployment has no request".into()))?;
        let backend = self.backend(&d.backend)?.clone();
        let runs = match self.as_pinned(&d, stored, &backend).await? {
            super::pinning::Pinned::Runs(runs) => runs,
            super::pinning::Pinned::HeldAgain => return Ok(()),
        };
        let mut request = contract::deploy_request(&d.id, &d.backend, &runs, d.requested_by.as_deref());
        super::pinning::pin_services(&mut request, &runs, &backend);
        let preparing = match stored.entry.source {
            ServerSource::Github { .. } | ServerSource::Package { .. } => State::Building,
            _ => State::Pulling,
        };
        self.transition(id, preparing, None, |_| {})?;
        let prepared = backend.prepare(&request, Some(stored.entry.source.clone())).await??;
        let examined = self.examine(&d, stored, &prepared).await?;
        if self.judge_again(&d, stored, &request, &examined.evidence, |d| examined.keep(d)).await? {
            return Ok(());
        }
        self.transition(id, State::Starting, None, |d| examined.keep(d))?;
        self.deploy_and_connect(&d, &backend, &request, &prepared.image).await
    }

    /// Creates the server from its image and waits for it to speak MCP; a
    /// per-session deployment then removes it (each session starts its own).
    pub(super) async fn deploy_and_connect(
        &self,
        d: &Deployment,
        backend: &Plugin,
        request: &wit::DeployRequest,
        image: &str,
    ) -> Result<(), RuntimeError> {
        let id = d.id.as_str();
        let guardrails = wit::EffectiveGuardrails::from(&d.guardrails_applied);
        let options = GuardrailOptions::of(&d.guardrails_applied).per_session(d.is_per_session());
        let source = d.request.as_ref().map(|r| r.entry.source.clone());
        let deployed = backend.deploy(request, &guardrails, options, image, source).await??;
        let warnings: Vec<Warning> = deployed.warnings.iter().map(Warning::from).collect();
        self.store.update(Table::Deployments, id, |d: &mut Deployment| {
            d.handle = Some(deployed.handle.clone());
            d.guardrails_warnings.extend(warnings.iter().cloned());
            Some(NewEvent::for_deployment(
                id,
                EventData::DeploymentCreated(DeployWarnings { warnings: warnings.clone() }),
            ))
        })?;
        if !d.is_per_session() {
            return self.await_connected(id, backend, &deployed.handle).await;
        }
        let tools = self.prove(id, backend, &deployed.handle).await?;
        self.remove_probe(id, backend, &deployed.handle).await?;
        self.transition(id, State::Connected, None, |d| d.tools = tools)?;
        Ok(())
    }

    /// Waits for the backend to report the server running at an endpoint.
    pub(super) async fn await_running(&self, backend: &Plugin, handle: &str) -> Result<DeploymentStatus, RuntimeError> {
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            let status = backend.status(handle).await??;
            match status.state {
                wit::DeploymentState::Running if status.endpoint.is_some() => return Ok(status),
                wit::DeploymentState::Stopped | wit::DeploymentState::Error => {
                    let why = status.message.unwrap_or_else(|| "stopped".into());
                    return Err(RuntimeError::Backend(format!("server did not stay up: {why}")));
                }
                _ if tokio::time::Instant::now() > deadline => {
                    return Err(RuntimeError::Backend(format!("not running after {}s", START_DEADLINE.as_secs())));
                }
                _ => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }

    /// Waits for running, then proves the server speaks MCP.
    pub(super) async fn await_connected(&self, id: &str, backend: &Plugin, handle: &str) -> Result<(), RuntimeError> {
        let tools = self.prove(id, backend, handle).await?;
        self.transition(id, State::Connected, None, |d| d.tools = tools)?;
        Ok(())
    }

    /// Waits for running, then for `initialize` and `tools/list` to succeed: the tools.
    async fn prove(&self, id: &str, backend: &Plugin, handle: &str) -> Result<Vec<String>, RuntimeError> {
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        let status = self.await_running(backend, handle).await?;
        let endpoint = status.endpoint.clone().unwrap_or_default();
        self.transition(id, State::Running, None, |d| {
            d.endpoint = Some(endpoint.clone());
            d.restart_count = status.restart_count;
        })?;
        let tools = loop {
            match self.handshake(id, &endpoint).await {
                Ok(tools) => break tools,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(RuntimeError::Backend(format!("MCP handshake failed: {e}")));
                }
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        };
        Ok(tools)
    }

    /// `initialize` and `tools/list` against a server; its tool names.
    /// `initialize` and `tools/list` against a deployment's server, over
    /// streamable HTTP or, for stdio and SSE servers, over the bridge's link.
    pub async fn handshake(&self, id: &str, endpoint: &str) -> Result<Vec<String>, crate::mcp::client::McpError> {
        if let Some(Via::Component(served)) = Via::endpoint(endpoint) {
            let tools = self.component_handshake(&served).await;
            return tools.map_err(|reason| McpError::Unreachable { url: endpoint.into(), reason });
        }
        if let Some(target) = Target::of(endpoint) {
            let tools = self.bridge.handshake(&self.tasks, id, &target).await;
            return tools.map_err(|e| McpError::Unreachable { url: endpoint.into(), reason: e.to_string() });
        }
        let mut session = McpSession::connect(&self.http, endpoint).await?;
        let tools = session.tool_names().await;
        session.close().await;
        tools
    }
}
