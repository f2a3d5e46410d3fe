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

use crate::backends::{Backends, BackendsError};
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
/// Deployments the health watch checks at once.
const WATCH_CONCURRENCY: usize = 8;

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

impl From<BackendsError> for RuntimeError {
    fn from(e: BackendsError) -> Self {
        match e {
            BackendsError::Unknown(_) => invalid("backend", e.to_string()),
            BackendsError::Unavailable { .. } => RuntimeError::Unavailable(e.to_string()),
            BackendsError::MissingPlugin { .. } => RuntimeError::NotFound(e.to_string()),
            BackendsError::Plugin(e) => RuntimeError::Plugin(e),
        }
    }
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
    pub visibility: Option<Visibility>,
}

/// Who may reach a deployed server (Code Engine's app visibility), as written in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    // The aliases read records stored before the shape was designed.
    #[serde(alias = "Public")]
    Public,
    #[serde(alias = "Private")]
    Private,
    #[serde(alias = "Project")]
    Project,
}

/// Requested resources in host units, as the API shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_millis: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub pids: Option<u32>,
    pub min_scale: Option<u32>,
    pub max_scale: Option<u32>,
    pub visibility: Option<Visibility>,
}

impl Resources {
    pub fn from_wit(r: &wit::RequestedResources) -> Resources {
        Resources {
            cpu_millis: r.cpu_millis,
            memory_bytes: r.memory_bytes,
            pids: r.pids,
            min_scale: r.min_scale,
            max_scale: r.max_scale,
            visibility: r.visibility.map(Visibility::from_wit),
        }
    }
}

impl Visibility {
    fn to_wit(self) -> wit::Visibility {
        match self {
            Visibility::Public => wit::Visibility::Public,
            Visibility::Private => wit::Visibility::Private,
            Visibility::Project => wit::Visibility::Project,
        }
    }

    fn from_wit(v: wit::Visibility) -> Visibility {
        match v {
            wit::Visibility::Public => Visibility::Public,
            wit::Visibility::Private => Visibility::Private,
            wit::Visibility::Project => Visibility::Project,
        }
    }
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

    /// The API's view: the request in the catalog's shapes, environment
    /// values withheld (they may be secrets; only their names are shown), the
    /// backend's handle private to the host.
    pub fn public_view(&self) -> serde_json::Value {
        let request = self.request.as_ref().map(|r| {
            serde_json::json!({
                "source": crate::catalog::Source::from_wit(&r.entry.source),
                "env": r.env.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                "resources": Resources::from_wit(&r.resources),
                "port": r.entry.port,
                "mcp_path": r.entry.mcp_path,
            })
        });
        serde_json::json!({
            "id": self.id,
            "slug": self.slug,
            "backend": self.backend,
            "profile": self.profile,
            "status": self.status,
            "status_message": self.status_message,
            "desired_running": self.desired_running,
            "endpoint": self.endpoint,
            "image": self.image,
            "restart_count": self.restart_count,
            "tools": self.tools,
            "guardrails_applied": self.guardrails_applied,
            "guardrails_warnings": self.guardrails_warnings,
            "requested_by": self.requested_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "request": request,
        })
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
    /// The configured backends and whether each is available now.
    pub backends: Backends,
    /// The default evaluator first, then the configured chain.
    policy_chain: Vec<Arc<Plugin>>,
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
        engine: Result<Arc<ContainerEngine>, String>,
    ) -> Result<Runtime, RuntimeError> {
        let backends = Backends::load(&config, &plugins, engine).await?;
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
            policy_chain,
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
        self.backends.names()
    }

    /// Records each configured backend (plugin, availability, capabilities) in
    /// the store, with an event whenever that record changes.
    pub async fn register_backends(&self) -> Result<(), RuntimeError> {
        for (name, unavailable) in self.backend_names() {
            let capabilities = self.backends.capabilities_if_known(&name).map(capabilities_view);
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
        Ok(self.backends.capabilities(name)?)
    }

    pub fn backend(&self, name: &str) -> Result<&Arc<Plugin>, RuntimeError> {
        Ok(self.backends.get(name)?)
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
        let backend = self.backends.get_checked(&backend_name).await?;
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
            visibility: asked.visibility.map(Visibility::to_wit),
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
        } else if let Some(engine) = self.backends.engine() {
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
        let watched: Vec<String> = deployments
            .into_iter()
            .filter(|d| matches!(d.status, State::Running | State::Connected | State::Error) && d.handle.is_some())
            .map(|d| d.id)
            .collect();
        let checks = watched.into_iter().map(|id| {
            let runtime = self.clone();
            async move { runtime.reconcile_one(&id).await }
        });
        futures_util::stream::iter(checks).buffer_unordered(WATCH_CONCURRENCY).collect::<()>().await;
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

/// What a backend can enforce, as `GET /backends` shows it.
fn capabilities_view(c: &wit::BackendCapabilities) -> serde_json::Value {
    let isolation = match c.network_isolation_level {
        wit::IsolationLevel::Container => "container",
        wit::IsolationLevel::Project => "project",
    };
    let observability = match c.observability_type {
        wit::ObservabilityType::Native => "native",
        wit::ObservabilityType::IbmCloud => "ibm_cloud",
    };
    let mut view = serde_json::to_value(c).unwrap_or_default();
    view["network_isolation_level"] = isolation.into();
    view["observability_type"] = observability.into();
    view
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
