//! The runtime backends (the host config's, and backend plugins uploaded at
//! runtime, each under its own id): their plugins, what each can enforce, and
//! whether each is available now. A backend whose plugin is granted the
//! container engine is available while that engine answers; any other while
//! its plugin's `check` succeeds. Checked at start, by every pass of the health
//! watch (and, for the engine, before every deploy), so availability follows
//! reality and comes back by itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::capabilities::ContainerEngine;
use crate::config::RuntimeConfig;
use crate::contract::types as wit;
use crate::plugins::{Grant, Plugin, PluginError, Registry};

#[derive(Debug, thiserror::Error)]
pub enum BackendsError {
    /// Named in a request but not configured (or disabled) nor uploaded.
    #[error("no enabled backend named '{0}'")]
    Unknown(String),
    #[error("backend '{name}' is unavailable: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("backend '{backend}' names plugin '{plugin}', which is not loaded")]
    MissingPlugin { backend: String, plugin: String },
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

pub struct Backends {
    registry: Arc<Registry>,
    /// Backend name -> the id of the plugin implementing it: the host
    /// config's backends, and uploaded backend plugins under their own id.
    bound: RwLock<BTreeMap<String, String>>,
    /// What each backend can enforce, asked of the version bound last.
    capabilities: RwLock<HashMap<String, wit::BackendCapabilities>>,
    /// Why a backend is unavailable now; absent while it is available.
    unavailable: RwLock<HashMap<String, String>>,
    /// The engine, or why none could be set up at all.
    engine: Result<Arc<ContainerEngine>, String>,
    checked_at: RwLock<HashMap<String, chrono::DateTime<chrono::Utc>>>,
    /// Changes of availability not yet handed to the watch.
    flips: std::sync::Mutex<Refreshed>,
}

impl Backends {
    /// Every enabled backend of `config`; availability is known after `refresh`.
    pub async fn load(
        config: &RuntimeConfig,
        registry: Arc<Registry>,
        engine: Result<Arc<ContainerEngine>, String>,
    ) -> Result<Backends, BackendsError> {
        let backends = Backends {
            registry,
            bound: Default::default(),
            capabilities: Default::default(),
            unavailable: Default::default(),
            engine,
            checked_at: Default::default(),
            flips: Default::default(),
        };
        for (name, backend) in config.backends.iter().filter(|(_, b)| b.enabled) {
            backends.bind(name, &backend.plugin).await?;
        }
        Ok(backends)
    }

    /// Makes `name` a backend implemented by plugin `plugin_id` (again, after
    /// an upgrade or a rollback: capabilities are asked of the new version).
    pub async fn bind(&self, name: &str, plugin_id: &str) -> Result<(), BackendsError> {
        let plugin = self
            .registry
            .get(plugin_id)
            .ok_or_else(|| BackendsError::MissingPlugin { backend: name.into(), plugin: plugin_id.into() })?;
        let capabilities = plugin.capabilities().await?;
        self.capabilities.write().expect("backends lock poisoned").insert(name.into(), capabilities);
        self.bound.write().expect("backends lock poisoned").insert(name.into(), plugin_id.into());
        Ok(())
    }

    /// Stops offering backend `name`.
    pub fn unbind(&self, name: &str) {
        self.bound.write().expect("backends lock poisoned").remove(name);
        self.capabilities.write().expect("backends lock poisoned").remove(name);
        self.unavailable.write().expect("availability lock poisoned").remove(name);
    }

    /// The backend a plugin implements, if any.
    pub fn bound_to(&self, plugin_id: &str) -> Option<String> {
        let bound = self.bound.read().expect("backends lock poisoned");
        bound.iter().find(|(_, id)| *id == plugin_id).map(|(name, _)| name.clone())
    }

    /// The version of the backend's plugin new calls get.
    fn plugin(&self, name: &str) -> Result<Arc<Plugin>, BackendsError> {
        let bound = self.bound.read().expect("backends lock poisoned");
        let id = bound.get(name).ok_or_else(|| BackendsError::Unknown(name.into()))?;
        self.registry.get(id).ok_or_else(|| BackendsError::MissingPlugin { backend: name.into(), plugin: id.clone() })
    }

    /// Backends offered now, sorted, each with why it is unavailable (if it is).
    pub fn names(&self) -> Vec<(String, Option<String>)> {
        let unavailable = self.unavailable.read().expect("availability lock poisoned");
        let bound = self.bound.read().expect("backends lock poisoned");
        bound.keys().map(|n| (n.clone(), unavailable.get(n).cloned())).collect()
    }

    /// The id of the plugin implementing backend `name`.
    pub fn plugin_id(&self, name: &str) -> Option<String> {
        self.bound.read().expect("backends lock poisoned").get(name).cloned()
    }

    /// The backend's plugin, if it is available.
    pub fn get(&self, name: &str) -> Result<Arc<Plugin>, BackendsError> {
        let plugin = self.plugin(name)?;
        match self.unavailable.read().expect("availability lock poisoned").get(name) {
            Some(reason) => Err(BackendsError::Unavailable { name: name.into(), reason: reason.clone() }),
            None => Ok(plugin),
        }
    }

    /// Like `get`, asking the engine first: a deploy learns of an engine that
    /// just went away at once, not at the next health pass.
    pub async fn get_checked(&self, name: &str) -> Result<Arc<Plugin>, BackendsError> {
        let plugin = self.plugin(name)?;
        if needs_engine(&plugin) {
            let reason = self.engine_problem().await;
            self.set(name, reason);
        }
        self.get(name)
    }

    /// What a backend can enforce (an error says why it is unavailable).
    pub fn capabilities(&self, name: &str) -> Result<wit::BackendCapabilities, BackendsError> {
        self.get(name)?;
        self.capabilities_if_known(name).ok_or_else(|| BackendsError::Unknown(name.into()))
    }

    pub fn capabilities_if_known(&self, name: &str) -> Option<wit::BackendCapabilities> {
        self.capabilities.read().expect("backends lock poisoned").get(name).copied()
    }

    /// Checks every backend; which ones went away and which came back since
    /// the last refresh (here, or at a deploy's check).
    pub async fn refresh(&self) -> Refreshed {
        let plugins: Vec<(String, Arc<Plugin>)> =
            self.names().into_iter().filter_map(|(name, _)| Some((name.clone(), self.plugin(&name).ok()?))).collect();
        let engine_problem = match plugins.iter().any(|(_, p)| needs_engine(p)) {
            true => self.engine_problem().await,
            false => None,
        };
        for (name, plugin) in plugins {
            let reason = match needs_engine(&plugin) {
                true => engine_problem.clone(),
                false => plugin_problem(&plugin).await,
            };
            self.checked_at.write().expect("availability lock poisoned").insert(name.clone(), chrono::Utc::now());
            self.set(&name, reason);
        }
        std::mem::take(&mut *self.flips.lock().expect("availability lock poisoned"))
    }

    /// The container engine, when one could be set up.
    pub fn engine(&self) -> Option<&Arc<ContainerEngine>> {
        self.engine.as_ref().ok()
    }

    /// When the backend was last checked.
    pub fn checked_at(&self, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.checked_at.read().expect("availability lock poisoned").get(name).copied()
    }

    async fn engine_problem(&self) -> Option<String> {
        match &self.engine {
            Err(why) => Some(why.clone()),
            Ok(engine) => engine.check().await.err().map(|e| e.to_string()),
        }
    }

    /// Records availability, and each change for the next `refresh` to
    /// hand on, whoever saw it first (a deploy's check may).
    fn set(&self, name: &str, unavailable: Option<String>) {
        let mut map = self.unavailable.write().expect("availability lock poisoned");
        let was_available = !map.contains_key(name);
        let changed = match &unavailable {
            Some(reason) => map.insert(name.to_string(), reason.clone()).as_ref() != Some(reason),
            None => map.remove(name).is_some(),
        };
        if !changed {
            return;
        }
        let mut flips = self.flips.lock().expect("availability lock poisoned");
        flips.changed = true;
        match unavailable {
            None => {
                tracing::info!(backend = %name, "backend available again");
                flips.recovered.push(name.to_string());
            }
            Some(why) if was_available => {
                tracing::warn!(backend = %name, "backend unavailable: {why}");
                flips.lost.push((name.to_string(), why));
            }
            Some(_) => {}
        }
    }
}

#[derive(Debug, Default)]
pub struct Refreshed {
    /// Any backend's availability changed (or its reason did).
    pub changed: bool,
    /// Backends that became available: what they run should be reconciled.
    pub recovered: Vec<String>,
    /// Backends that became unavailable, each with why.
    pub lost: Vec<(String, String)>,
}

/// Why the plugin says its backend cannot be used now, if it does.
async fn plugin_problem(plugin: &Plugin) -> Option<String> {
    use crate::contract::backend::BackendError;
    match plugin.check().await {
        Ok(Ok(())) => None,
        Ok(Err(BackendError::Invalid(denial))) => Some(format!("{}: {}", denial.field, denial.reason)),
        Ok(Err(BackendError::NotFound(why) | BackendError::Unavailable(why) | BackendError::Failed(why))) => Some(why),
        Err(e) => Some(e.to_string()),
    }
}

fn needs_engine(plugin: &Plugin) -> bool {
    plugin.manifest.grants.contains(&Grant::ContainerEngine)
}
