//! The service every deployment operation hangs off: the store, the plugins,
//! the backends, the MCP routes. Its operations are spread by concern over
//! this directory (and `approvals/`, which adds the approval workflow).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::RuntimeError;
use crate::backends::Backends;
use crate::capabilities::ContainerEngine;
use crate::config::RuntimeConfig;
use crate::contract::types as wit;
use crate::deployment::Deployment;
use crate::events::{BackendRecord, EventData};
use crate::mcp::bridge::Bridge;
use crate::mcp::proxy::Routes;
use crate::plugins::Plugin;
use crate::store::{NewEvent, Store, Table};

pub struct Runtime {
    pub(super) store: Arc<Store>,
    pub(super) config: RuntimeConfig,
    /// Every loaded plugin, by id, and the order rules run in.
    pub(super) plugins: Arc<crate::plugins::Registry>,
    /// Plugins uploaded through the API, and the orders set there.
    pub(super) uploads: crate::plugins::Uploads,
    /// What the drop-in directory last held (`plugin_dropin_dir`).
    pub(super) dropins: crate::plugins::DropIns,
    /// The configured backends and whether each is available now.
    pub(super) backends: Backends,
    pub(super) http: reqwest::Client,
    /// Serving deployments' endpoints, for the MCP proxy.
    pub(super) routes: Routes,
    /// Sessions with servers that speak stdio, served as streamable HTTP.
    pub(super) bridge: Bridge,
    /// Git repositories: resolving refs at deploy time, build logs, cancelling builds.
    pub(super) repositories: Arc<crate::repositories::Repositories>,
    /// Servers started for the sessions of per-session deployments.
    pub(super) session_servers: super::per_session::SessionServers,
    /// One lock per deployment: lifecycle operations on it never interleave.
    pub(super) locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Failures the store refused for want of space, to record once it can (`unrecorded`).
    pub(super) unrecorded: std::sync::Mutex<Vec<(String, String)>>,
    /// Every background task: deploys, notifications, the host's loops.
    pub(super) tasks: crate::tasks::Supervisor,
    /// What each server's health checks found lately.
    pub(super) health: super::health::HealthBook,
    /// The last CPU reading of each deployment, for its rate.
    pub(super) usage_book: super::usage::UsageBook,
    /// Passes of the health watch so far (every few is a full one).
    pub(super) watch_passes: std::sync::atomic::AtomicU64,
    /// Every deployment at a glance, as of a count of the table's changes.
    pub(super) glances: std::sync::Mutex<(u64, Arc<[crate::deployment::Glance]>)>,
    /// The catalog's entries: every write goes through it.
    pub(super) catalog: Arc<crate::catalog::Catalog>,
    /// The guardrail profiles: every write goes through it.
    pub(super) profiles: Arc<crate::profiles::Profiles>,
    /// The approval requests: the rules asked, decisions, deadlines, notices.
    pub(super) approvals: Arc<crate::approvals::Approvals>,
    /// What `GET /metrics` shows that is counted as it happens.
    pub(super) metrics: Arc<crate::metrics::Metrics>,
    /// Known vulnerabilities (the operator's OSV database) what is built is matched against.
    pub(super) advisories: crate::supply_chain::osv::Advisories,
    /// Image signatures, verified against the operator's trusted keys.
    pub(super) signatures: crate::supply_chain::signatures::Signatures,
    /// Servers shipped as WebAssembly components, served in-process.
    pub(super) components: Arc<crate::components::ServerComponents>,
    /// What approval deadlines are measured by.
    clock: Arc<dyn crate::clock::Clock>,
}

fn not_loaded(e: crate::plugins::OrderError) -> RuntimeError {
    RuntimeError::NotFound(e.to_string())
}

/// What start-up (`app::build`) assembles a runtime from: its own state,
/// and the services and shared handles it uses.
pub struct RuntimeParts {
    pub store: Arc<Store>,
    pub config: RuntimeConfig,
    pub plugins: Arc<crate::plugins::Registry>,
    pub uploads: crate::plugins::Uploads,
    /// The container engine, or why none could be set up.
    pub engine: Result<Arc<ContainerEngine>, String>,
    pub repositories: Arc<crate::repositories::Repositories>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The supervisor every background task of the host runs under.
    pub tasks: crate::tasks::Supervisor,
    pub clock: Arc<dyn crate::clock::Clock>,
    /// The host's HTTP client (TCP_NODELAY, a connect timeout).
    pub http: reqwest::Client,
    pub catalog: Arc<crate::catalog::Catalog>,
    pub profiles: Arc<crate::profiles::Profiles>,
    pub approvals: Arc<crate::approvals::Approvals>,
    pub components: Arc<crate::components::ServerComponents>,
}

impl Runtime {
    pub async fn new(parts: RuntimeParts) -> Result<Runtime, RuntimeError> {
        let RuntimeParts {
            store,
            config,
            plugins: registry,
            uploads,
            engine,
            repositories,
            metrics,
            tasks,
            clock,
            http,
            catalog,
            profiles,
            approvals,
            components,
        } = parts;
        let bridge_engine = engine.as_ref().ok().cloned();
        if registry.get(super::DEFAULT_EVALUATOR).is_none() {
            return Err(RuntimeError::NotFound(format!("policy plugin '{}'", super::DEFAULT_EVALUATOR)));
        }
        let backends = Backends::load(&config, registry.clone(), engine).await?;
        registry.set_policy_chain(config.policy_chain.clone(), "runtime.policy_chain").map_err(not_loaded)?;
        registry.set_approval_rules(config.approval.rules.clone(), "runtime.approval.rules").map_err(not_loaded)?;
        uploads.restore(&registry);
        let idle = Duration::from_secs(config.api.mcp_session_idle_seconds);
        let connector = crate::mcp::bridge::EngineConnector { engine: bridge_engine, http: http.clone() };
        let bridge = Bridge::new(Arc::new(connector), idle);
        let advisories = crate::supply_chain::osv::Advisories::load(config.supply_chain.osv_dir.clone())
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let signatures =
            config.supply_chain.signatures(http.clone()).map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let routes = Routes::default();
        for d in store.list::<Deployment>(Table::Deployments)? {
            routes.observe(&d.id, super::driver::serving(&d), d.requested_by.as_deref());
        }
        let runtime = Runtime {
            catalog,
            profiles,
            approvals,
            store,
            config,
            plugins: registry,
            uploads,
            dropins: Default::default(),
            backends,
            http,
            routes,
            bridge,
            session_servers: Default::default(),
            repositories,
            locks: Default::default(),
            unrecorded: Default::default(),
            tasks,
            metrics,
            health: Default::default(),
            usage_book: Default::default(),
            watch_passes: Default::default(),
            // No count is below zero: the first glance reads the table.
            glances: std::sync::Mutex::new((u64::MAX, Arc::new([]))),
            advisories,
            signatures,
            components,
            clock,
        };
        runtime.bind_uploaded_backends().await;
        Ok(runtime)
    }

    /// Where the bridge hands over session servers to remove (taken once, by the loop that removes them).
    pub fn retired_session_servers(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        self.bridge.retired_servers()
    }

    /// What the deployment's health checks found last, if they ran.
    pub fn last_health(&self, id: &str) -> Option<super::health::CheckResult> {
        self.health.last(id)
    }

    /// A repository build's log so far, and its lines to come while it runs.
    pub fn build_log(
        &self,
        id: &str,
    ) -> (String, Option<tokio::sync::broadcast::Receiver<crate::repositories::LogEvent>>) {
        self.repositories.logs.read(id)
    }

    /// Asks every backend whether it answers now.
    pub async fn refresh_backends(&self) {
        self.backends.refresh().await;
    }

    /// The plugins the drop-in directory holds now that it did not before.
    pub fn scan_dropins(&self, dir: &std::path::Path) -> Vec<crate::plugins::DroppedIn> {
        self.dropins.scan(dir)
    }

    /// Whether the store takes writes now, and if not why (a full data directory).
    pub fn writable(&self) -> Result<(), crate::store::StoreError> {
        self.store.writable()
    }

    /// Names of configured backends with their availability.
    pub fn backend_names(&self) -> Vec<(String, Option<String>)> {
        self.backends.names()
    }

    /// Where a deploy that names no backend goes: the default backend when the
    /// entry runs there, else the first configured backend it names (an entry
    /// that runs only on `wasm` deploys there), else the default, which the
    /// deploy then refuses with the entry's list.
    pub fn backend_for(&self, entry: &crate::catalog::CatalogEntry) -> String {
        let default = &self.config.default_backend;
        if entry.runs_on(default) {
            return default.clone();
        }
        let configured = self.backend_names();
        let named = entry.supported_backends.iter().find(|b| configured.iter().any(|(name, _)| name == *b));
        named.unwrap_or(default).clone()
    }

    /// The stored backend records (plugin, capabilities), with availability
    /// as it is now — the record follows at the watch's next pass — and when
    /// each was last checked: what `GET /backends` and the settings page show.
    pub fn backend_records(&self) -> Result<Vec<serde_json::Value>, RuntimeError> {
        let mut backends: Vec<serde_json::Value> = self.store.list(Table::Backends)?;
        let live = self.backend_names();
        for backend in &mut backends {
            let name = backend["name"].as_str().unwrap_or_default().to_string();
            if let Some((_, why)) = live.iter().find(|(n, _)| *n == name) {
                backend["available"] = serde_json::json!(why.is_none());
                backend["reason"] = serde_json::json!(why);
            }
            backend["last_check"] = serde_json::json!(self.backends.checked_at(&name));
        }
        Ok(backends)
    }

    /// Records each backend (plugin, availability, capabilities) in the store,
    /// with an event whenever that record changes, and forgets those gone.
    pub async fn register_backends(&self) -> Result<(), RuntimeError> {
        let names = self.backend_names();
        for record in self.store.list::<BackendRecord>(Table::Backends)? {
            if !names.iter().any(|(n, _)| *n == record.name) {
                let name = record.name.clone();
                let event = NewEvent::new(format!("backend/{name}"), EventData::BackendRemoved(record));
                self.store.delete(Table::Backends, &name, event)?;
            }
        }
        for (name, unavailable) in names {
            let capabilities =
                self.backends.capabilities_if_known(&name).as_ref().map(crate::contract::capabilities_view);
            let record = BackendRecord {
                name: name.clone(),
                plugin: self.backends.plugin_id(&name),
                available: unavailable.is_none(),
                reason: unavailable,
                capabilities,
            };
            if self.store.get::<BackendRecord>(Table::Backends, &name)?.as_ref() != Some(&record) {
                let event = NewEvent::new(format!("backend/{name}"), EventData::BackendRegistered(record.clone()));
                self.store.put(Table::Backends, &name, &record, event)?;
            }
        }
        Ok(())
    }

    /// What a backend can enforce (an error says why it is unavailable).
    pub fn capabilities_of(&self, name: &str) -> Result<wit::BackendCapabilities, RuntimeError> {
        Ok(self.backends.capabilities(name)?)
    }

    pub fn backend(&self, name: &str) -> Result<Arc<Plugin>, RuntimeError> {
        Ok(self.backends.get(name)?)
    }

    /// The layers of `image`'s pull in progress on the container engine, if any.
    pub fn pull_progress(&self, image: &str) -> Vec<crate::capabilities::PullLayer> {
        self.backends.engine().map(|e| e.pull_progress(image)).unwrap_or_default()
    }

    /// Where a deployment reached out through its egress proxy.
    pub fn egress_observed(&self, id: &str) -> Vec<crate::egress::Observed> {
        self.backends.engine().map(|e| e.egress().observed(id)).unwrap_or_default()
    }

    /// The current time, as the host's clock (`crate::clock`) tells it.
    pub fn now(&self) -> crate::clock::Time {
        self.clock.now()
    }

    /// The audit trail's events that `filter` keeps.
    pub fn events(&self, filter: &crate::events::EventFilter) -> Result<Vec<crate::events::Event>, RuntimeError> {
        Ok(self.store.events(filter)?)
    }

    /// Every event committed from now on, in commit order.
    pub fn subscribe(&self) -> crate::events::Subscription {
        self.store.subscribe()
    }

    pub(crate) fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().expect("lock map poisoned").entry(id.to_string()).or_default().clone()
    }
}
