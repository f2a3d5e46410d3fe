//! MCP servers shipped as WebAssembly components, run inside the host (the
//! `wasm` backend drives this through the `server-components` capability).
//!
//! A `wasm` entry's component is fetched (`fetch`), refused unless its bytes
//! have the entry's digest, kept by digest under the data directory and
//! compiled once (`compiled`). Serving it for a deployment turns the
//! deployment's guardrails into a sandbox: memory and a deadline per call,
//! the mounts and variables the component's permission request asks for
//! and the profile allows (`wasm_tools::permissions`). Each tool call runs in
//! a fresh instance (`served`); the MCP data path reaches it in-process.

mod exchange;
mod fetch;
mod served;
mod settings;

pub use served::{Counters, Served, Server};
pub use settings::ComponentsConfig;

/// The scheme of the endpoint a served component has: the host's MCP data
/// path answers it in-process.
pub const COMPONENT_SCHEME: &str = "component://";

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use wasmtime::component::Component;

use crate::catalog::ComponentSource;
use crate::egress::Allowlist;
use crate::events::{ComponentServed, EgressRefusal, EventData, NoDetail};
use crate::guardrails::{EffectiveGuardrails, Warning};
use crate::store::{NewEvent, Store, StoreError, Table};
use crate::wasm_tools::permissions::{self, PermissionFile};
use crate::wasm_tools::{CallLimits, EgressGate, HttpServer, Refused, Sandbox, ToolComponent};

/// Memory a call may use when the guardrails set none.
const DEFAULT_MEMORY: u64 = 64 << 20;
/// A call's deadline for one whole CPU; a profile's share scales it.
const DEADLINE_PER_CPU: Duration = Duration::from_secs(10);
const MIN_DEADLINE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// A prepared component.
pub struct Prepared {
    pub sha256: String,
    pub size: u64,
    pub tools: Vec<String>,
}

/// What a deployment's component is served with.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub deployment_id: String,
    pub sha256: String,
    pub permissions: Option<String>,
    pub guardrails: EffectiveGuardrails,
    pub env: Vec<(String, String)>,
}

/// A deployment's spec as the store keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Kept {
    pub spec: Spec,
    pub stopped: bool,
}

pub struct ServerComponents {
    config: ComponentsConfig,
    /// Where `path` sources are looked up.
    dir: PathBuf,
    /// Components fetched and verified, by digest.
    blobs: PathBuf,
    cache: PathBuf,
    http: reqwest::Client,
    store: Arc<Store>,
    compiled: Mutex<HashMap<String, Component>>,
    served: RwLock<HashMap<String, Arc<Served>>>,
}

impl ServerComponents {
    pub fn new(
        config: ComponentsConfig,
        dir: PathBuf,
        data_dir: &std::path::Path,
        cache: PathBuf,
        http: reqwest::Client,
        store: Arc<Store>,
    ) -> ServerComponents {
        ServerComponents {
            config,
            dir,
            blobs: data_dir.join("components"),
            cache,
            http,
            store,
            compiled: Mutex::default(),
            served: RwLock::default(),
        }
    }

    fn blob(&self, sha256: &str) -> PathBuf {
        self.blobs.join(format!("sha256-{sha256}.wasm"))
    }

    /// Fetches and verifies the component unless it is kept already, and compiles it.
    pub async fn prepare(&self, source: &ComponentSource<'_>) -> Result<Prepared, ComponentError> {
        fetch::check_origin(source, &self.config)?;
        let path = self.blob(&source.sha256);
        if !path.exists() {
            let bytes = fetch::fetch(source, &self.config, &self.dir, &self.http).await?;
            let kept = std::fs::create_dir_all(&self.blobs).and_then(|_| {
                let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
                std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, &path))
            });
            kept.map_err(|e| ComponentError::Failed(format!("keeping the component: {e}")))?;
        }
        let component = self.component(&source.sha256).await?;
        let tools = match server_of(&component, CallLimits::default())? {
            Server::Tools(tools) => tools.tools().iter().map(|t| t.name.clone()).collect(),
            // A wasi:http server lists its own tools (at the handshake).
            Server::Http(_) => Vec::new(),
        };
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default();
        Ok(Prepared { sha256: source.sha256.clone(), size, tools })
    }

    /// The compiled component of a kept digest.
    async fn component(&self, sha256: &str) -> Result<Component, ComponentError> {
        if let Some(component) = self.compiled.lock().expect("compiled poisoned").get(sha256) {
            return Ok(component.clone());
        }
        let path = self.blob(sha256);
        let bytes = std::fs::read(&path)
            .map_err(|_| ComponentError::NotFound(format!("no component sha256:{sha256} is kept: prepare it first")))?;
        let (engine, cache, hash) = (crate::wasm_tools::engine(), self.cache.clone(), sha256.to_string());
        let compiled = crate::tasks::blocking(move || crate::compiled::compile_cached(engine, &cache, &bytes, &hash));
        let component = compiled.map_err(|e| ComponentError::Invalid {
            field: "source".into(),
            reason: format!("not a WebAssembly component: {}", e.root_cause()),
        })?;
        self.compiled.lock().expect("compiled poisoned").insert(sha256.into(), component.clone());
        Ok(component)
    }

    /// Serves a prepared component for a deployment, replacing what served
    /// it before, and keeps its spec.
    pub async fn start(&self, spec: Spec) -> Result<Arc<Served>, ComponentError> {
        let served = self.serve(spec.clone()).await?;
        let (id, digest) = (spec.deployment_id.clone(), format!("sha256:{}", spec.sha256));
        let event = NewEvent::for_deployment(
            &id,
            EventData::ComponentServed(ComponentServed { digest, warnings: served.warnings.clone() }),
        );
        let kept = Kept { spec, stopped: false };
        self.store
            .put(Table::ServedComponents, &id, &kept, event)
            .map_err(|e| ComponentError::Failed(e.to_string()))?;
        Ok(served)
    }

    async fn serve(&self, spec: Spec) -> Result<Arc<Served>, ComponentError> {
        let component = self.component(&spec.sha256).await?;
        let request = match &spec.permissions {
            Some(text) => PermissionFile::parse(text)
                .map_err(|reason| ComponentError::Invalid { field: "source.permissions".into(), reason })?,
            None => PermissionFile::default(),
        };
        let declared: Vec<String> = spec.env.iter().map(|(k, _)| k.clone()).collect();
        let granted = permissions::grant(&request, &spec.guardrails, &declared);
        let environment = spec.env.iter().filter(|(k, _)| granted.environment.contains(k)).cloned().collect();
        let server = server_of(&component, limits_of(&spec.guardrails))?;
        let egress = Some(Arc::new(self.egress_gate(&spec, &granted.hosts)));
        let served = Arc::new(Served {
            deployment_id: spec.deployment_id.clone(),
            server,
            sandbox: Sandbox { mounts: granted.mounts, environment, egress },
            warnings: granted.warnings.into_iter().map(|(field, message)| Warning { field, message }).collect(),
            started_at: chrono::Utc::now().to_rfc3339(),
            store: self.store.clone(),
            counters: Mutex::default(),
            log: Mutex::default(),
        });
        self.served.write().expect("served poisoned").insert(spec.deployment_id, served.clone());
        Ok(served)
    }

    /// Where the deployment's component may connect: the hosts its
    /// permission request was granted, or, when it brings none, the
    /// profile's allowlist; nowhere when egress is off. A refusal is an
    /// `egress.refused` event, as the egress proxy's are.
    fn egress_gate(&self, spec: &Spec, granted_hosts: &[String]) -> EgressGate {
        let network = &spec.guardrails.network;
        let hosts = match spec.permissions.is_some() {
            true => granted_hosts,
            false => network.allowed_hosts.as_slice(),
        };
        let allowlist = network.egress_allowed.then(|| Allowlist::parse(hosts).unwrap_or_default());
        let (store, id) = (self.store.clone(), spec.deployment_id.clone());
        EgressGate::new(allowlist, move |refused: Refused| {
            let data = EventData::EgressRefused(EgressRefusal {
                host: refused.host,
                port: refused.port,
                reason: refused.reason,
            });
            if let Err(e) = store.record(NewEvent::for_deployment(&id, data)) {
                tracing::warn!(deployment = %id, "cannot record a refused connection: {e}");
            }
        })
    }

    /// Stops serving a deployment's component, keeping its spec.
    pub fn stop(&self, deployment_id: &str) -> Result<(), ComponentError> {
        self.served.write().expect("served poisoned").remove(deployment_id);
        let stopped = self.store.update(Table::ServedComponents, deployment_id, |kept: &mut Kept| {
            (!kept.stopped).then(|| {
                kept.stopped = true;
                NewEvent::for_deployment(deployment_id, EventData::ComponentStopped(NoDetail {}))
            })
        });
        match stopped {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(ComponentError::Failed(e.to_string())),
        }
    }

    /// Serves a stopped deployment's component again, from its spec.
    pub async fn resume(&self, deployment_id: &str) -> Result<Arc<Served>, ComponentError> {
        let kept = self.kept(deployment_id)?;
        self.start(kept.spec).await
    }

    /// Stops serving a deployment's component and forgets its spec.
    pub fn remove(&self, deployment_id: &str) -> Result<(), ComponentError> {
        self.served.write().expect("served poisoned").remove(deployment_id);
        let event = NewEvent::for_deployment(deployment_id, EventData::ComponentStopped(NoDetail {}));
        match self.store.delete(Table::ServedComponents, deployment_id, event) {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(ComponentError::Failed(e.to_string())),
        }
    }

    fn kept(&self, deployment_id: &str) -> Result<Kept, ComponentError> {
        match self.store.get::<Kept>(Table::ServedComponents, deployment_id) {
            Ok(Some(kept)) => Ok(kept),
            Ok(None) => Err(ComponentError::NotFound(format!("no component is kept for '{deployment_id}'"))),
            Err(e) => Err(ComponentError::Failed(e.to_string())),
        }
    }

    /// The deployment's component as served now; `None` once stopped. One
    /// the host kept a spec for but does not serve (the host restarted) is
    /// served again first.
    pub async fn serving(&self, deployment_id: &str) -> Result<Option<Arc<Served>>, ComponentError> {
        if let Some(served) = self.served.read().expect("served poisoned").get(deployment_id) {
            return Ok(Some(served.clone()));
        }
        let kept = self.kept(deployment_id)?;
        match kept.stopped {
            true => Ok(None),
            false => self.serve(kept.spec).await.map(Some),
        }
    }

    /// What a kept component's `producers` sections name, for its SBOM.
    pub fn producers(&self, sha256: &str) -> Result<Vec<crate::supply_chain::producers::Producer>, ComponentError> {
        let bytes = std::fs::read(self.blob(sha256))
            .map_err(|_| ComponentError::NotFound(format!("no component sha256:{sha256} is kept")))?;
        Ok(crate::supply_chain::producers::of(&bytes))
    }

    /// Every deployment a spec is kept for.
    pub fn known(&self) -> Vec<String> {
        let kept = self.store.list_keyed::<Kept>(Table::ServedComponents).unwrap_or_default();
        kept.into_iter().map(|(id, _)| id).collect()
    }
}

/// A `wasi:http` server when the component exports the incoming handler, else a tool component.
fn server_of(component: &Component, limits: CallLimits) -> Result<Server, ComponentError> {
    let invalid =
        |e: crate::wasm_tools::ToolError| ComponentError::Invalid { field: "source".into(), reason: e.to_string() };
    match HttpServer::new(component, limits).map_err(invalid)? {
        Some(http) => Ok(Server::Http(http)),
        None => ToolComponent::new(component, limits).map(Server::Tools).map_err(invalid),
    }
}

/// A call's limits from the deployment's guardrails: its memory, and a
/// deadline of `DEADLINE_PER_CPU` scaled by its CPU share (at least `MIN_DEADLINE`).
pub fn limits_of(guardrails: &EffectiveGuardrails) -> CallLimits {
    let memory_bytes = guardrails.memory_bytes.unwrap_or(DEFAULT_MEMORY) as usize;
    let deadline = match guardrails.cpu_millis {
        Some(millis) => DEADLINE_PER_CPU.mul_f64(f64::from(millis) / 1000.0).max(MIN_DEADLINE),
        None => DEADLINE_PER_CPU,
    };
    CallLimits { memory_bytes, deadline }
}
