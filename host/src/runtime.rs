//! Deployments: from a request to a connected MCP server and back.
//!
//! A request is checked in full before anything is stored (catalog entry,
//! backend, profile, resources, the guardrail policy chain, the backend's own
//! validation). Then the deployment is recorded as `pending` and driven in the
//! background: pending → pulling → starting → running → connected, or error.
//! Every state change is one store transaction with its event.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use crate::capabilities::ContainerEngine;
use crate::catalog::CatalogEntry;
use crate::config::RuntimeConfig;
use crate::guardrails::{self, Profile};
use crate::mcp::client::McpSession;
use crate::mcp::proxy::{Routes, Upstream};
use crate::plugins::bindings::backend::{BackendError, DeploymentStatus};
use crate::plugins::bindings::policy::PolicyInput;
use crate::plugins::bindings::types as wit;
use crate::plugins::{Plugin, PluginError};
use crate::store::{NewEvent, Store, StoreError, Table};

/// How long a started server may take to be running and to answer MCP.
const START_DEADLINE: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often the health watch looks at deployments that should be running.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("backend: {0}")]
    Backend(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::Invalid { field: field.into(), reason: reason.into() }
}

impl From<BackendError> for RuntimeError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Invalid(d) => RuntimeError::Invalid { field: d.field, reason: d.reason },
            BackendError::NotFound(m) => RuntimeError::Backend(format!("not found: {m}")),
            BackendError::Unavailable(m) => RuntimeError::Unavailable(m),
            BackendError::Failed(m) => RuntimeError::Backend(m),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Held until an approver decides.
    AwaitingApproval,
    /// An approver said no, or nobody decided in time.
    Rejected,
    Pending,
    Pulling,
    Building,
    Starting,
    Running,
    Connected,
    Stopped,
    Error,
}

/// `POST /runtimes/deploy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    pub slug: String,
    #[serde(default)]
    pub backend: Option<String>,
    /// Overrides the catalog entry's guardrails profile.
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: ResourceRequest,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequest {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub pids: Option<u32>,
    pub min_scale: Option<u32>,
    pub max_scale: Option<u32>,
    pub visibility: Option<wit::Visibility>,
}

/// A deployment as stored and as `GET /runtimes/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub slug: String,
    pub backend: String,
    pub profile: String,
    pub status: State,
    #[serde(default)]
    pub status_message: Option<String>,
    /// What the owner asked for last: the health watch restores it.
    pub desired_running: bool,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub tools: Vec<String>,
    pub guardrails_applied: wit::EffectiveGuardrails,
    pub guardrails_warnings: Vec<wit::Warning>,
    pub requested_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The request as the backend saw it (catalog entry at deploy time included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<wit::DeployRequest>,
    /// The backend's opaque reference; private to the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

impl Deployment {
    /// Where MCP traffic goes while the server is up.
    pub fn serving_endpoint(&self) -> Option<&str> {
        match self.status {
            State::Running | State::Connected => self.endpoint.as_deref(),
            _ => None,
        }
    }

    /// The API's view: environment values are secrets, only their names are shown.
    pub fn public_view(&self) -> serde_json::Value {
        let mut view = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = view.as_object_mut() {
            obj.remove("handle");
            let env: Vec<String> =
                self.request.as_ref().map(|r| r.env.iter().map(|(k, _)| k.clone()).collect()).unwrap_or_default();
            if let Some(request) = obj.get_mut("request").and_then(|r| r.as_object_mut()) {
                request.insert("env".into(), serde_json::json!(env));
            }
        }
        view
    }
}

/// The outcome of checking a request: everything needed to deploy it.
pub struct Checked {
    pub request: wit::DeployRequest,
    pub guardrails: wit::EffectiveGuardrails,
    pub warnings: Vec<wit::Warning>,
}

pub struct Runtime {
    pub store: Arc<Store>,
    pub config: RuntimeConfig,
    /// Every loaded plugin, by id.
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    /// Backend name → its plugin; absent when its engine is unreachable.
    backends: HashMap<String, Arc<Plugin>>,
    /// Why a configured backend is unavailable.
    unavailable: HashMap<String, String>,
    /// What each available backend can enforce: fixed per plugin, so asked once at start.
    capabilities: HashMap<String, wit::BackendCapabilities>,
    /// The default evaluator first, then the configured chain.
    policy_chain: Vec<Arc<Plugin>>,
    pub engine: Option<Arc<ContainerEngine>>,
    http: reqwest::Client,
    /// Serving deployments' endpoints, for the MCP proxy.
    pub routes: Routes,
    pub upstream: Upstream,
    /// One lock per deployment: lifecycle operations on it never interleave.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// `approval.rules`, in order.
    pub(crate) approval_rules: Vec<Arc<Plugin>>,
    /// Seconds added to the wall clock for approval deadlines (tests move time).
    pub(crate) clock_offset: std::sync::atomic::AtomicI64,
}

pub const DEFAULT_EVALUATOR: &str = "default-guardrails";

impl Runtime {
    pub async fn new(
        store: Arc<Store>,
        config: RuntimeConfig,
        plugins: BTreeMap<String, Arc<Plugin>>,
        engine: Option<Arc<ContainerEngine>>,
        engine_error: Option<String>,
    ) -> Result<Runtime, RuntimeError> {
        let mut backends = HashMap::new();
        let mut unavailable = HashMap::new();
        let mut capabilities = HashMap::new();
        for (name, backend) in config.backends.iter().filter(|(_, b)| b.enabled) {
            let plugin = plugins
                .get(&backend.plugin)
                .cloned()
                .ok_or_else(|| RuntimeError::NotFound(format!("plugin '{}'", backend.plugin)))?;
            let needs_engine = plugin.manifest.grants.contains(&crate::plugins::Grant::ContainerEngine);
            match (needs_engine, &engine_error) {
                (true, Some(reason)) => {
                    unavailable.insert(name.clone(), reason.clone());
                }
                _ => {
                    capabilities.insert(name.clone(), plugin.capabilities().await?);
                    backends.insert(name.clone(), plugin);
                }
            }
        }
        let mut policy_chain = Vec::new();
        for id in std::iter::once(DEFAULT_EVALUATOR).chain(config.policy_chain.iter().map(String::as_str)) {
            let plugin =
                plugins.get(id).cloned().ok_or_else(|| RuntimeError::NotFound(format!("policy plugin '{id}'")))?;
            policy_chain.push(plugin);
        }
        let approval_rules = config
            .approval
            .rules
            .iter()
            .map(|id| {
                plugins.get(id).cloned().ok_or_else(|| RuntimeError::NotFound(format!("approval rule plugin '{id}'")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let routes = Routes::default();
        for d in store.list::<Deployment>(Table::Deployments)? {
            routes.observe(&d.id, d.serving_endpoint(), d.requested_by.as_deref());
        }
        Ok(Runtime {
            store,
            config,
            plugins,
            backends,
            unavailable,
            capabilities,
            policy_chain,
            engine,
            http,
            routes,
            upstream: Upstream::default(),
            locks: Default::default(),
            approval_rules,
            clock_offset: Default::default(),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Names of configured backends with their availability.
    pub fn backend_names(&self) -> Vec<(String, Option<String>)> {
        let mut names: Vec<_> = self.backends.keys().map(|n| (n.clone(), None)).collect();
        names.extend(self.unavailable.iter().map(|(n, why)| (n.clone(), Some(why.clone()))));
        names.sort();
        names
    }

    /// Records each configured backend (plugin, availability, capabilities) in
    /// the store, with an event whenever that record changes.
    pub async fn register_backends(&self) -> Result<(), RuntimeError> {
        for (name, unavailable) in self.backend_names() {
            let capabilities = self.capabilities.get(&name);
            let plugin = self.config.backends.get(&name).map(|b| b.plugin.clone());
            let record = serde_json::json!({"name": name, "plugin": plugin, "available": unavailable.is_none(),
                                            "reason": unavailable, "capabilities": capabilities});
            if self.store.get::<serde_json::Value>(Table::Backends, &name)?.as_ref() != Some(&record) {
                let event = NewEvent::new("backend.registered", format!("backend/{name}"), record.clone());
                self.store.put(Table::Backends, &name, &record, event)?;
            }
        }
        Ok(())
    }

    /// What a backend can enforce (an error says why it is unavailable).
    pub fn capabilities_of(&self, name: &str) -> Result<wit::BackendCapabilities, RuntimeError> {
        self.backend(name)?;
        self.capabilities.get(name).copied().ok_or_else(|| RuntimeError::NotFound(format!("backend '{name}'")))
    }

    pub fn backend(&self, name: &str) -> Result<&Arc<Plugin>, RuntimeError> {
        if let Some(plugin) = self.backends.get(name) {
            return Ok(plugin);
        }
        match self.unavailable.get(name) {
            Some(why) => Err(RuntimeError::Unavailable(format!("backend '{name}' is unavailable: {why}"))),
            None => Err(invalid("backend", format!("no enabled backend named '{name}'"))),
        }
    }

    pub fn profile(&self, name: &str) -> Result<Option<Profile>, RuntimeError> {
        Ok(self.store.get(Table::Guardrails, name)?)
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().expect("lock map poisoned").entry(id.to_string()).or_default().clone()
    }

    /// Runs the policy chain over a request: effective guardrails and warnings, or a denial.
    pub async fn evaluate_policies(
        &self,
        request: &wit::DeployRequest,
        profile: &Profile,
        capabilities: &wit::BackendCapabilities,
    ) -> Result<(wit::EffectiveGuardrails, Vec<wit::Warning>), RuntimeError> {
        self.evaluate_chain(&self.policy_chain, request, profile, capabilities).await
    }

    async fn evaluate_chain(
        &self,
        chain: &[Arc<Plugin>],
        request: &wit::DeployRequest,
        profile: &Profile,
        capabilities: &wit::BackendCapabilities,
    ) -> Result<(wit::EffectiveGuardrails, Vec<wit::Warning>), RuntimeError> {
        let mut input = PolicyInput {
            request: request.clone(),
            profile: profile.to_wit(),
            capabilities: *capabilities,
            effective: profile.initial_guardrails(),
            warnings: Vec::new(),
        };
        for policy in chain {
            match policy.evaluate(&input).await? {
                Ok(out) => {
                    input.effective = out.effective;
                    input.warnings = out.warnings;
                }
                Err(denial) => return Err(RuntimeError::Invalid { field: denial.field, reason: denial.reason }),
            }
        }
        Ok((input.effective, input.warnings))
    }

    /// Checks a deploy request in full; nothing is stored or created.
    pub async fn check(&self, body: &DeployBody, id: &str, actor: Option<&str>) -> Result<Checked, RuntimeError> {
        let entry: CatalogEntry = self
            .store
            .get(Table::Catalog, &body.slug)?
            .ok_or_else(|| invalid("slug", format!("no catalog entry '{}'", body.slug)))?;
        let backend_name = body.backend.clone().unwrap_or_else(|| self.config.default_backend.clone());
        if !entry.supported_backends.contains(&backend_name) {
            return Err(invalid(
                "backend",
                format!("'{}' supports {:?}, not '{backend_name}'", entry.slug, entry.supported_backends),
            ));
        }
        let backend = self.backend(&backend_name)?;
        let profile_name = body.profile.clone().unwrap_or_else(|| entry.guardrails_profile.clone());
        let profile = self
            .profile(&profile_name)?
            .ok_or_else(|| invalid("profile", format!("no guardrails profile '{profile_name}'")))?;
        for key in body.env.keys() {
            if !is_env_name(key) {
                return Err(invalid(&format!("env.{key}"), "not a valid environment variable name"));
            }
        }
        let resources = self.resources(&body.resources, &backend_name, &profile)?;
        let mut env: BTreeMap<String, String> = entry.environment.clone();
        env.extend(body.env.clone());
        let request = wit::DeployRequest {
            deployment_id: id.to_string(),
            backend: backend_name,
            entry: entry.to_wit(),
            env: env.into_iter().collect(),
            resources,
            requested_by: actor.map(String::from),
        };
        let capabilities = self.capabilities_of(&request.backend)?;
        let (guardrails, mut warnings) = self.evaluate_policies(&request, &profile, &capabilities).await?;
        warnings.extend(backend.validate(&request, &guardrails).await??);
        Ok(Checked { request, guardrails, warnings })
    }

    /// Requested resources in host units; unset ones take the backend's
    /// defaults where those are within the profile's maxima.
    fn resources(
        &self,
        asked: &ResourceRequest,
        backend: &str,
        profile: &Profile,
    ) -> Result<wit::RequestedResources, RuntimeError> {
        let cpu = asked
            .cpu
            .as_deref()
            .map(|c| {
                guardrails::parse_cpu(c)
                    .ok_or_else(|| invalid("resources.cpu", format!("'{c}' is not a CPU quantity such as \"0.5\"")))
            })
            .transpose()?;
        let memory = asked
            .memory
            .as_deref()
            .map(|m| {
                guardrails::parse_memory(m).ok_or_else(|| {
                    invalid("resources.memory", format!("'{m}' is not a memory quantity such as \"256m\""))
                })
            })
            .transpose()?;
        if asked.pids == Some(0) {
            return Err(invalid("resources.pids", "must be at least 1"));
        }
        if let (Some(min), Some(max)) = (asked.min_scale, asked.max_scale) {
            if min > max {
                return Err(invalid("resources.min_scale", "must not exceed max_scale"));
            }
        }
        let defaults = self.config.backends.get(backend).map(|b| b.default_limits.clone()).unwrap_or_default();
        let limits = profile.to_wit().resources;
        Ok(wit::RequestedResources {
            cpu_millis: cpu
                .or_else(|| within(defaults.cpu.as_deref().and_then(guardrails::parse_cpu), limits.max_cpu_millis)),
            memory_bytes: memory.or_else(|| {
                within(defaults.memory.as_deref().and_then(guardrails::parse_memory), limits.max_memory_bytes)
            }),
            pids: asked.pids.or_else(|| within(defaults.pids, limits.max_pids)),
            min_scale: asked.min_scale,
            max_scale: asked.max_scale,
            visibility: asked.visibility,
        })
    }

    /// Records a checked request as `pending` and starts driving it.
    pub fn accept(self: &Arc<Self>, checked: Checked) -> Result<Deployment, RuntimeError> {
        let deployment = Self::deployment(checked, State::Pending);
        let mut event = NewEvent::for_deployment(
            "deployment.requested",
            &deployment.id,
            serde_json::json!({"slug": deployment.slug, "backend": deployment.backend, "profile": deployment.profile,
                               "guardrails_applied": deployment.guardrails_applied, "guardrails_warnings": deployment.guardrails_warnings}),
        );
        event.actor = deployment.requested_by.clone();
        self.store.create(Table::Deployments, &deployment.id, &deployment, event)?;
        self.spawn_drive(&deployment.id);
        Ok(deployment)
    }

    /// The record of a checked request, in its first state.
    pub fn deployment(checked: Checked, status: State) -> Deployment {
        let now = chrono::Utc::now();
        let r = &checked.request;
        Deployment {
            id: r.deployment_id.clone(),
            slug: r.entry.slug.clone(),
            backend: r.backend.clone(),
            profile: checked.guardrails.profile.clone(),
            status,
            status_message: None,
            desired_running: true,
            endpoint: None,
            image: None,
            restart_count: 0,
            tools: Vec::new(),
            guardrails_applied: checked.guardrails,
            guardrails_warnings: checked.warnings,
            requested_by: r.requested_by.clone(),
            created_at: now,
            updated_at: now,
            request: Some(checked.request),
            handle: None,
        }
    }

    /// Drives a pending deployment to `connected` in the background.
    pub fn spawn_drive(self: &Arc<Self>, id: &str) {
        let runtime = self.clone();
        let id = id.to_string();
        let span = tracing::info_span!("deployment", id = %id);
        tokio::spawn(async move { runtime.drive_new(&id).await }.instrument(span));
    }

    pub fn get(&self, id: &str) -> Result<Deployment, RuntimeError> {
        self.store.get(Table::Deployments, id)?.ok_or_else(|| RuntimeError::NotFound(format!("deployment '{id}'")))
    }

    pub fn list(&self) -> Result<Vec<Deployment>, RuntimeError> {
        Ok(self.store.list(Table::Deployments)?)
    }

    /// Moves a deployment to `state`, recording the event.
    fn transition(
        &self,
        id: &str,
        state: State,
        message: Option<String>,
        change: impl FnOnce(&mut Deployment),
    ) -> Result<Deployment, RuntimeError> {
        self.transition_by(id, state, message, None, change)
    }

    /// A transition someone asked for: the event names them.
    fn transition_by(
        &self,
        id: &str,
        state: State,
        message: Option<String>,
        actor: Option<&str>,
        change: impl FnOnce(&mut Deployment),
    ) -> Result<Deployment, RuntimeError> {
        let deployment = self.store.update(Table::Deployments, id, |d: &mut Deployment| {
            let from = d.status;
            d.status = state;
            d.status_message = message.clone();
            d.updated_at = chrono::Utc::now();
            change(d);
            let data = serde_json::json!({"from": from, "to": state, "message": message});
            let mut event = NewEvent::for_deployment("deployment.state", id, data);
            event.actor = actor.map(String::from);
            Some(event)
        })?;
        self.routes.observe(id, deployment.serving_endpoint(), deployment.requested_by.as_deref());
        tracing::info!(deployment = id, state = ?state, message = message.as_deref().unwrap_or(""), "state changed");
        Ok(deployment)
    }

    /// Records a failure, once: the health watch may observe the same one again.
    fn fail(&self, id: &str, reason: String) {
        let already = self
            .get(id)
            .is_ok_and(|d| d.status == State::Error && d.status_message.as_deref() == Some(reason.as_str()));
        if already {
            return;
        }
        tracing::warn!(deployment = id, "{reason}");
        if let Err(e) = self.transition(id, State::Error, Some(reason), |_| {}) {
            tracing::error!(deployment = id, "cannot record failure: {e}");
        }
    }

    /// pending → pulling → starting → running → connected.
    async fn drive_new(&self, id: &str) {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        if let Err(e) = self.try_drive_new(id).await {
            self.fail(id, e.to_string());
        }
    }

    async fn try_drive_new(&self, id: &str) -> Result<(), RuntimeError> {
        let d = self.get(id)?;
        let request = d.request.clone().ok_or_else(|| RuntimeError::Conflict("deployment has no request".into()))?;
        let backend = self.backend(&d.backend)?.clone();
        let preparing = match request.entry.source {
            wit::Source::Github(_) => State::Building,
            _ => State::Pulling,
        };
        self.transition(id, preparing, None, |_| {})?;
        let prepared = backend.prepare(&request).await??;
        self.transition(id, State::Starting, None, |d| {
            d.image = Some(prepared.image.clone());
            d.guardrails_warnings.extend(prepared.warnings.clone());
        })?;
        let deployed = backend.deploy(&request, &d.guardrails_applied, &prepared.image).await??;
        self.store.update(Table::Deployments, id, |d: &mut Deployment| {
            d.handle = Some(deployed.handle.clone());
            d.guardrails_warnings.extend(deployed.warnings.clone());
            Some(NewEvent::for_deployment("deployment.created", id, serde_json::json!({"warnings": deployed.warnings})))
        })?;
        self.await_connected(id, &backend, &deployed.handle).await
    }

    /// Waits for running, then proves the server speaks MCP.
    async fn await_connected(&self, id: &str, backend: &Plugin, handle: &str) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        let status = loop {
            let status = backend.status(handle).await??;
            match status.state {
                wit::DeploymentState::Running if status.endpoint.is_some() => break status,
                wit::DeploymentState::Stopped | wit::DeploymentState::Error => {
                    let why = status.message.unwrap_or_else(|| "stopped".into());
                    return Err(RuntimeError::Backend(format!("server did not stay up: {why}")));
                }
                _ if tokio::time::Instant::now() > deadline => {
                    return Err(RuntimeError::Backend(format!("not running after {}s", START_DEADLINE.as_secs())));
                }
                _ => tokio::time::sleep(POLL_INTERVAL).await,
            }
        };
        let endpoint = status.endpoint.clone().unwrap_or_default();
        self.transition(id, State::Running, None, |d| {
            d.endpoint = Some(endpoint.clone());
            d.restart_count = status.restart_count;
        })?;
        let tools = loop {
            match self.handshake(&endpoint).await {
                Ok(tools) => break tools,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(RuntimeError::Backend(format!("MCP handshake failed: {e}")));
                }
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        };
        self.transition(id, State::Connected, None, |d| d.tools = tools)?;
        Ok(())
    }

    /// `initialize` and `tools/list` against a server; its tool names.
    pub async fn handshake(&self, endpoint: &str) -> Result<Vec<String>, crate::mcp::client::McpError> {
        let mut session = McpSession::connect(&self.http, endpoint).await?;
        let tools = session.tool_names().await;
        session.close().await;
        tools
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
        let handle = self.handle_of(&d)?;
        self.backend(&d.backend)?.stop(&handle).await??;
        self.record_request(id, "deployment.stop", actor)?;
        self.transition_by(id, State::Stopped, Some("stopped on request".into()), actor, |d| d.desired_running = false)
    }

    pub async fn start(&self, id: &str, actor: Option<&str>) -> Result<Deployment, RuntimeError> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let d = self.get(id)?;
        let handle = self.handle_of(&d)?;
        let backend = self.backend(&d.backend)?.clone();
        backend.start(&handle).await??;
        self.record_request(id, "deployment.start", actor)?;
        self.transition_by(id, State::Starting, None, actor, |d| d.desired_running = true)?;
        if let Err(e) = self.await_connected(id, &backend, &handle).await {
            self.fail(id, e.to_string());
        }
        self.get(id)
    }

    /// Removes everything the deployment created, then its record.
    pub async fn delete(&self, id: &str, actor: Option<&str>) -> Result<(), RuntimeError> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let d = self.get(id)?;
        if let Some(handle) = &d.handle {
            self.backend(&d.backend)?.remove(handle).await??;
        } else if let Some(engine) = &self.engine {
            // Never deployed, or interrupted mid-way: sweep anything labelled with it.
            remove_leftovers(engine, id).await;
        }
        let mut event = NewEvent::for_deployment("deployment.deleted", id, serde_json::json!({"slug": d.slug}));
        event.actor = actor.map(String::from);
        self.store.delete(Table::Deployments, id, event)?;
        self.routes.forget(id);
        self.locks.lock().expect("lock map poisoned").remove(id);
        Ok(())
    }

    pub async fn logs(&self, id: &str, tail: u32) -> Result<String, RuntimeError> {
        let d = self.get(id)?;
        let handle = self.handle_of(&d)?;
        Ok(self.backend(&d.backend)?.logs(&handle, tail).await??)
    }

    fn record_request(&self, id: &str, kind: &str, actor: Option<&str>) -> Result<(), RuntimeError> {
        let mut event = NewEvent::for_deployment(kind, id, serde_json::json!({}));
        event.actor = actor.map(String::from);
        Ok(self.store.record(event)?)
    }

    /// After a host restart: adopt what still runs, mark what vanished,
    /// remove owned objects no deployment claims.
    pub async fn reconcile(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let deployments = self.list()?;
        for d in &deployments {
            let span = tracing::info_span!("reconcile", deployment = %d.id);
            self.reconcile_one(&d.id).instrument(span).await;
        }
        if let Some(engine) = &self.engine {
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
                    "deployment.orphan_removed",
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
            if !matches!(d.status, State::Error | State::Stopped | State::AwaitingApproval | State::Rejected) {
                if let Some(engine) = &self.engine {
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

    /// The health watch: one pass over deployments that should be up.
    pub async fn watch_once(self: &Arc<Self>) {
        let Ok(deployments) = self.list() else { return };
        let watched = deployments
            .iter()
            .filter(|d| matches!(d.status, State::Running | State::Connected | State::Error) && d.handle.is_some());
        for d in watched {
            self.reconcile_one(&d.id).await;
        }
    }
}

async fn remove_leftovers(engine: &ContainerEngine, deployment: &str) {
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

/// A backend default applies only within the profile's maximum.
fn within<T: PartialOrd>(default: Option<T>, max: Option<T>) -> Option<T> {
    default.filter(|d| max.as_ref().is_none_or(|m| d <= m))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Per field of a profile: enforced on a backend, or ignored and why.
/// Derived by running the default evaluator and the backend's validation on a
/// sample request, so it says exactly what a deployment would get.
pub async fn compatibility(
    runtime: &Runtime,
    profile: &Profile,
    backend_name: &str,
) -> Result<serde_json::Value, RuntimeError> {
    let backend = runtime.backend(backend_name)?;
    let capabilities = runtime.capabilities_of(backend_name)?;
    let sample = CatalogEntry {
        name: "compatibility check".into(),
        slug: "compatibility-check".into(),
        description: String::new(),
        icon: None,
        category: None,
        tags: Vec::new(),
        source: crate::catalog::Source::Docker { image: "compatibility-check:0".into(), registry_secret: None },
        supported_backends: vec![backend_name.into()],
        guardrails_profile: profile.name.clone(),
        requires_approval: false,
        documentation_url: None,
        version: None,
        featured: false,
        deprecated: false,
        port: 8080,
        mcp_path: "/mcp".into(),
        environment: BTreeMap::new(),
    };
    let request = wit::DeployRequest {
        deployment_id: "compatibility-check".into(),
        backend: backend_name.into(),
        entry: sample.to_wit(),
        env: Vec::new(),
        resources: wit::RequestedResources {
            cpu_millis: None,
            memory_bytes: None,
            pids: None,
            min_scale: None,
            max_scale: None,
            visibility: None,
        },
        requested_by: None,
    };
    let default_only = &runtime.policy_chain[..1];
    let (effective, mut warnings) = runtime.evaluate_chain(default_only, &request, profile, &capabilities).await?;
    // The sample image may not pass a registry allowlist; only warnings matter here.
    if let Ok(Ok(more)) = backend.validate(&request, &effective).await {
        warnings.extend(more);
    }
    let fields: serde_json::Map<String, serde_json::Value> = profile
        .reported_fields()
        .into_iter()
        .map(|(field, set)| {
            let warning = warnings.iter().find(|w| w.field == field);
            let verdict = match (set, warning) {
                (_, Some(w)) => serde_json::json!({"status": "ignored", "reason": w.message}),
                (false, None) => serde_json::json!({"status": "not_set"}),
                (true, None) => serde_json::json!({"status": "enforced"}),
            };
            (field.to_string(), verdict)
        })
        .collect();
    let other: Vec<&wit::Warning> = warnings.iter().filter(|w| !fields.contains_key(&w.field)).collect();
    Ok(serde_json::json!({"profile": profile.name, "backend": backend_name, "fields": fields, "notes": other}))
}
