//! The WebAssembly plugin host. One engine; each component compiled once and
//! cached as a precompiled artifact keyed by its content hash; every call in a
//! fresh store with a memory limit, a fuel (CPU) budget and a wall-clock
//! timeout, so a plugin that traps, loops or hoards memory fails that one call.

mod cases;
mod compat;
mod dropin;
mod imports;
mod manifest;
mod registry;
mod scaffold;
mod uploads;

pub use crate::capabilities::{Grant, PluginContext};
pub use cases::{run as run_cases, CaseFile, CaseResult};
pub use dropin::{DropIns, DroppedIn, DROPIN_ACTOR};
pub use manifest::{PluginKind, PluginLimits, PluginManifest};
pub use registry::{OrderError, Registry};
pub use scaffold::{create as scaffold, Lang, ProjectKind, ScaffoldError};
pub use uploads::{NewPlugin, Order, Staged, UploadError, Uploaded, Uploads, Version};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::capabilities::{self, CallAbout, CallState, ContainerEngine};
use crate::contract::backend_world::RuntimeBackendPre;
use crate::contract::policy_world::GuardrailPolicyPre;
use crate::metrics::PluginCalls;
use imports::{check_grants, imports_function, SOURCE_INTERFACE};

/// Fuel units per millisecond of guest CPU: roughly one per wasm instruction.
const FUEL_PER_MS: u64 = 1_000_000;
/// How often a running guest yields to the async runtime, so timeouts fire.
const FUEL_YIELD_INTERVAL: u64 = 100_000;
/// Concurrent plugin instances the pooling allocator holds slots for.
const POOL_INSTANCES: u32 = 128;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin '{plugin}' could not be loaded: {reason}")]
    Load { plugin: String, reason: String },
    #[error("plugin '{plugin}' imports '{interface}', which its manifest does not grant")]
    NotGranted { plugin: String, interface: String },
    #[error("plugin '{plugin}' exceeded its memory limit of {limit_mb} MB")]
    MemoryExhausted { plugin: String, limit_mb: u32 },
    #[error("plugin '{plugin}' exceeded its CPU budget of {cpu_ms} ms")]
    CpuBudget { plugin: String, cpu_ms: u64 },
    #[error("plugin '{plugin}' timed out after {timeout_ms} ms")]
    Timeout { plugin: String, timeout_ms: u64 },
    #[error("plugin '{plugin}' trapped: {reason}")]
    Trapped { plugin: String, reason: String },
    #[error("no {kind} plugin named '{plugin}'")]
    Missing { plugin: String, kind: &'static str },
}

/// The store data of one plugin call: the granted capabilities' state and
/// the memory limiter. Lives exactly as long as that call's store.
pub struct PluginState {
    granted: CallState,
    limiter: MemoryLimiter,
}

impl capabilities::HasCallState for PluginState {
    fn call_state(&mut self) -> &mut CallState {
        &mut self.granted
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.granted.wasi_view()
    }
}

impl wasmtime_wasi_http::WasiHttpView for PluginState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.granted.http_view()
    }
}

/// Refuses growth past the plugin's limit and remembers that it did, so the
/// failure is reported as what it is rather than as the guest's abort.
struct MemoryLimiter {
    max_bytes: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

pub struct PluginHost {
    engine: Engine,
    cache_dir: PathBuf,
    store: Arc<crate::store::Store>,
    container_engine: Option<Arc<ContainerEngine>>,
    repositories: Option<Arc<crate::repositories::Repositories>>,
    /// Where plugins granted `server-components` serve components.
    components: Option<Arc<crate::components::ServerComponents>>,
    /// Where loaded plugins record their calls, when metrics are kept.
    calls: Option<PluginCalls>,
}

/// A loaded plugin, ready to instantiate cheaply for each call.
pub struct Plugin {
    pub manifest: PluginManifest,
    /// Hex SHA-256 of the component file.
    pub hash: String,
    engine: Engine,
    ctx: Arc<PluginContext>,
    pre: WorldPre,
    calls: Option<PluginCalls>,
    /// The component can turn a stdio server's image into an HTTP one
    /// (it imports `source.bridge-stdio`, 1.5), so a backend that runs
    /// only HTTP servers can still run stdio ones.
    pub bridges_stdio: bool,
    /// The component builds Git repositories through the host (it imports `source.build`).
    pub builds_repositories: bool,
}

enum WorldPre {
    Backend(RuntimeBackendPre<PluginState>),
    Policy(GuardrailPolicyPre<PluginState>),
    Approval(crate::contract::approval_world::ApprovalRulePre<PluginState>),
}

impl PluginHost {
    pub fn new(
        cache_dir: PathBuf,
        store: Arc<crate::store::Store>,
        container_engine: Option<Arc<ContainerEngine>>,
        repositories: Option<Arc<crate::repositories::Repositories>>,
    ) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 2)
            .max_memory_size(manifest::MAX_PLUGIN_MEMORY_MB as usize * (1 << 20));
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .memory_reservation(1 << 30)
            .memory_guard_size(32 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("creating the wasm engine: {e:#}"))?;
        std::fs::create_dir_all(&cache_dir)?;
        Ok(PluginHost { engine, cache_dir, store, container_engine, repositories, components: None, calls: None })
    }

    /// Plugins granted `server-components` and loaded from now on serve components there.
    pub fn serve_components_in(&mut self, components: Arc<crate::components::ServerComponents>) {
        self.components = Some(components);
    }

    /// Plugins loaded from now on count their calls there.
    pub fn record_calls_in(&mut self, calls: PluginCalls) {
        self.calls = Some(calls);
    }

    pub fn load(&self, manifest: &PluginManifest, plugin_dir: &Path) -> Result<Plugin, PluginError> {
        let id = manifest.id.clone();
        let fail = |reason: String| PluginError::Load { plugin: id.clone(), reason };
        let path = if manifest.path.components().count() == 1 {
            plugin_dir.join(&manifest.path)
        } else {
            manifest.path.clone()
        };
        let bytes = std::fs::read(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        let hash = hex::encode(Sha256::digest(&bytes));
        if let Some(pin) = &manifest.sha256 {
            if !pin.eq_ignore_ascii_case(&hash) {
                return Err(fail(format!("sha256 is {hash}, the manifest pins {pin}")));
            }
        }
        let component = crate::compiled::compile_cached(&self.engine, &self.cache_dir, &bytes, &hash)
            .map_err(|e| fail(format!("{e:#}")))?;
        check_grants(&self.engine, &component, manifest)?;

        let linker = self.linker(manifest).map_err(|e| fail(format!("{e:#}")))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| fail(format!("{e:#}")))?;
        let wrong_world =
            |e: wasmtime::Error| fail(format!("does not export the {} world: {e:#}", manifest.kind.world()));
        let pre = match manifest.kind {
            PluginKind::RuntimeBackend => WorldPre::Backend(RuntimeBackendPre::new(instance_pre).map_err(wrong_world)?),
            PluginKind::GuardrailPolicy => {
                WorldPre::Policy(GuardrailPolicyPre::new(instance_pre).map_err(wrong_world)?)
            }
            PluginKind::ApprovalRule => WorldPre::Approval(
                crate::contract::approval_world::ApprovalRulePre::new(instance_pre).map_err(wrong_world)?,
            ),
        };
        // Building from source goes through the engine too.
        let builds = manifest.grants.contains(&Grant::Source);
        let needs_engine = manifest.grants.contains(&Grant::ContainerEngine) || builds;
        let allowed_hosts = manifest
            .allowed_hosts
            .iter()
            .map(|h| crate::capabilities::HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let ctx = Arc::new(PluginContext {
            id: manifest.id.clone(),
            settings: manifest.settings.to_string(),
            allowed_hosts: allowed_hosts.into(),
            store: self.store.clone(),
            engine: if needs_engine { self.container_engine.clone() } else { None },
            repositories: if builds { self.repositories.clone() } else { None },
            components: match manifest.grants.contains(&Grant::ServerComponents) {
                true => self.components.clone(),
                false => None,
            },
        });
        tracing::info!(plugin = %manifest.id, world = manifest.kind.world(), %hash, "plugin loaded");
        Ok(Plugin {
            manifest: manifest.clone(),
            hash,
            engine: self.engine.clone(),
            ctx,
            pre,
            calls: self.calls.clone(),
            bridges_stdio: imports_function(&self.engine, &component, SOURCE_INTERFACE, "bridge-stdio"),
            builds_repositories: imports_function(&self.engine, &component, SOURCE_INTERFACE, "build"),
        })
    }

    /// A linker with sandboxed WASI, `types` and `config`, plus exactly the granted interfaces.
    fn linker(&self, manifest: &PluginManifest) -> wasmtime::Result<Linker<PluginState>> {
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        capabilities::link_always(&mut linker)?;
        for grant in &manifest.grants {
            capabilities::link_grant(&mut linker, *grant)?;
        }
        Ok(linker)
    }
}

/// Refuses a component built against a contract this host cannot run, or
/// importing a host interface it was not granted, naming the interface (the
/// linker would too, less clearly).
impl Plugin {
    fn new_store(&self, about: CallAbout) -> Result<Store<PluginState>, PluginError> {
        let limits = self.manifest.limits;
        let granted = CallState::new(self.ctx.clone(), about);
        let state = PluginState {
            granted,
            limiter: MemoryLimiter { max_bytes: limits.memory_mb as usize * (1 << 20), exceeded: false },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let configured = store
            .set_fuel(limits.cpu_ms.saturating_mul(FUEL_PER_MS))
            .and_then(|_| store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL)));
        configured.map_err(|e| self.trapped(e))?;
        Ok(store)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.manifest.limits.timeout_ms)
    }

    /// Turns a call's outcome into a clear, plugin-named error.
    fn finish<R>(
        &self,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        store: &Store<PluginState>,
    ) -> Result<R, PluginError> {
        let plugin = self.manifest.id.clone();
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Err(_) => Err(PluginError::Timeout { plugin, timeout_ms: self.manifest.limits.timeout_ms }),
            Ok(Err(_)) if store.data().limiter.exceeded => {
                Err(PluginError::MemoryExhausted { plugin, limit_mb: self.manifest.limits.memory_mb })
            }
            Ok(Err(e)) if matches!(e.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) => {
                Err(PluginError::CpuBudget { plugin, cpu_ms: self.manifest.limits.cpu_ms })
            }
            Ok(Err(e)) => Err(self.trapped(e)),
        }
    }

    fn trapped(&self, e: wasmtime::Error) -> PluginError {
        // `Display` of a wasmtime error is only its backtrace header; the cause is at the root.
        let reason = match e.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        PluginError::Trapped { plugin: self.manifest.id.clone(), reason }
    }

    pub fn world(&self) -> &'static str {
        self.manifest.kind.world()
    }

    fn record<R: CallOutcome>(&self, function: &'static str, result: &Result<R, PluginError>, started: Instant) {
        if let Some(calls) = &self.calls {
            let outcome = result.as_ref().map_or("failed", CallOutcome::outcome);
            calls.record(&self.manifest.id, function.trim_start_matches("call_"), outcome, started.elapsed());
        }
    }
}

/// Whether a call the plugin completed answered with an error of its own.
trait CallOutcome {
    fn outcome(&self) -> &'static str {
        "ok"
    }
}

impl<T, E> CallOutcome for Result<T, E> {
    fn outcome(&self) -> &'static str {
        if self.is_ok() {
            "ok"
        } else {
            "error"
        }
    }
}

impl CallOutcome for BackendCapabilities {}

/// Instantiates the plugin in a fresh store, calls one export under the
/// plugin's limits and classifies any failure. A call about a deployment
/// says what it is about (`CallAbout`); others answer the defaults.
macro_rules! invoke {
    ($plugin:expr, $pre:ident, $accessor:ident . $call:ident ( $($arg:expr),* )) => {
        invoke!($plugin, CallAbout::default(), $pre, $accessor.$call($($arg),*))
    };
    ($plugin:expr, $about:expr, $pre:ident, $accessor:ident . $call:ident ( $($arg:expr),* )) => {{
        let plugin: &Plugin = $plugin;
        let WorldPre::$pre(pre) = &plugin.pre else {
            return Err(PluginError::Missing { plugin: plugin.manifest.id.clone(), kind: stringify!($pre) });
        };
        let started = Instant::now();
        let result = match plugin.new_store($about) {
            Ok(mut store) => {
                let outcome = tokio::time::timeout(plugin.timeout(), async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    instance.$accessor().$call(&mut store, $($arg),*).await
                })
                .await;
                plugin.finish(outcome, &store)
            }
            Err(e) => Err(e),
        };
        plugin.record(stringify!($call), &result, started);
        result
    }};
}

use crate::contract::backend::{BackendError, Deployed, DeploymentStatus, Prepared, ResourceUsage};
use crate::contract::policy::{PolicyInput, PolicyOutput};
use crate::contract::types::{
    BackendCapabilities, Denial, DeployRequest, EffectiveGuardrails, LogLine, LogQuery, Warning,
};
use crate::contract::GuardrailOptions;

/// Calls of the `runtime-backend` world. Outer `Result`: the plugin failed;
/// inner: the backend answered with an error.
impl Plugin {
    pub async fn capabilities(&self) -> Result<BackendCapabilities, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_capabilities())
    }

    pub async fn validate(
        &self,
        r: &DeployRequest,
        g: &EffectiveGuardrails,
        options: GuardrailOptions,
    ) -> Result<Result<Vec<Warning>, BackendError>, PluginError> {
        invoke!(self, CallAbout::options(options), Backend, mcp_runtime_plugin_backend.call_validate(r, g))
    }

    /// `source`: the entry's, which the plugin may build (a package,
    /// `source.build-package`) or fetch (a component) during this call.
    pub async fn prepare(
        &self,
        r: &DeployRequest,
        source: Option<crate::catalog::ServerSource>,
    ) -> Result<Result<Prepared, BackendError>, PluginError> {
        let about = CallAbout { source, ..CallAbout::default() };
        invoke!(self, about, Backend, mcp_runtime_plugin_backend.call_prepare(r))
    }

    pub async fn deploy(
        &self,
        r: &DeployRequest,
        g: &EffectiveGuardrails,
        options: GuardrailOptions,
        image: &str,
        source: Option<crate::catalog::ServerSource>,
    ) -> Result<Result<Deployed, BackendError>, PluginError> {
        let about = CallAbout { options, source, evidence: None };
        invoke!(self, about, Backend, mcp_runtime_plugin_backend.call_deploy(r, g, image))
    }

    pub async fn status(&self, handle: &str) -> Result<Result<DeploymentStatus, BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_status(handle))
    }

    pub async fn stop(&self, handle: &str) -> Result<Result<(), BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_stop(handle))
    }

    pub async fn start(&self, handle: &str) -> Result<Result<(), BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_start(handle))
    }

    pub async fn remove(&self, handle: &str) -> Result<Result<(), BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_remove(handle))
    }

    pub async fn check(&self) -> Result<Result<(), BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_check())
    }

    pub async fn usage(&self, handle: &str) -> Result<Result<ResourceUsage, BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_usage(handle))
    }

    pub async fn logs(&self, handle: &str, query: LogQuery) -> Result<Result<Vec<LogLine>, BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_logs(handle, query))
    }

    pub async fn orphans(&self, known: &[String]) -> Result<Result<Vec<String>, BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_orphans(known))
    }

    pub async fn remove_leftovers(&self, deployment_id: &str) -> Result<Result<(), BackendError>, PluginError> {
        invoke!(self, Backend, mcp_runtime_plugin_backend.call_remove_leftovers(deployment_id))
    }

    /// The `approval-rule` world's one call.
    pub async fn approve(
        &self,
        input: &crate::contract::approval::ApprovalInput,
        about: CallAbout,
    ) -> Result<Result<crate::contract::approval::ApprovalDecision, String>, PluginError> {
        invoke!(self, about, Approval, mcp_runtime_plugin_approval.call_evaluate(input))
    }

    /// The `guardrail-policy` world's one call.
    pub async fn evaluate(
        &self,
        input: &PolicyInput,
        about: CallAbout,
    ) -> Result<Result<PolicyOutput, Denial>, PluginError> {
        invoke!(self, about, Policy, mcp_runtime_plugin_policy.call_evaluate(input))
    }
}
