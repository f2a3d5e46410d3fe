//! Host configuration: the seed's `runtime:` YAML, `${VAR}` / `${VAR:-default}`
//! interpolation, `RUNTIME_*` environment overrides, and validation whose
//! errors name the offending key.

mod alerts;
mod approval;
mod audit;
mod catalog;
mod gateway;
mod health;
mod supply_chain;

pub use crate::components::ComponentsConfig;
pub use crate::repositories::{RepositoriesConfig, MAX_BUILD_SECONDS};
pub use alerts::AlertsConfig;
pub use approval::{ApprovalConfig, Notification, SmtpConfig};
pub use audit::AuditConfig;
pub use catalog::{CatalogConfig, RemoteCatalog};
pub use gateway::{GatewayAuth, GatewayConfig, Visibility as GatewayVisibility};
pub use health::HealthConfig;
pub use supply_chain::{SigningKeyConfig, SupplyChainConfig, TrustedKeyConfig};

use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::guardrails::Profile;
use crate::plugins::PluginManifest;

pub const EMBEDDED_CONFIG: &str = include_str!("../../defaults/config.yaml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    runtime: RuntimeConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Free space writes leave in `data_dir`: under it every write answers
    /// 507 and reads go on (see `store::space`).
    #[serde(default = "default_disk_reserve_mb")]
    pub disk_reserve_mb: u64,
    /// Where plugin paths without a directory are looked up.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// Precompiled plugin artifacts; `<data_dir>/plugin-cache` when absent.
    #[serde(default)]
    pub plugin_cache_dir: Option<PathBuf>,
    /// Rules dropped here (`<name>.wasm` beside its manifest `<name>.yaml`) are
    /// uploaded, and upgraded when the component changes, as through the API.
    #[serde(default)]
    pub plugin_dropin_dir: Option<PathBuf>,
    /// Value of the ownership label on everything this runtime creates.
    #[serde(default = "default_owner")]
    pub owner: String,
    /// Where a request that names no backend goes; may be left out when
    /// only one backend is enabled.
    #[serde(default)]
    pub default_backend: String,
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    #[serde(default)]
    pub guardrails: GuardrailsConfig,
    #[serde(default)]
    pub approval: ApprovalConfig,
    #[serde(default)]
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub plugins: Vec<PluginManifest>,
    /// Guardrail policy plugins run after the default evaluator, in order.
    #[serde(default)]
    pub policy_chain: Vec<String>,
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    #[serde(default)]
    pub api: ApiConfig,
    /// The ContextForge gateway connected deployments are registered with; none, none.
    #[serde(default)]
    pub gateway: Option<GatewayConfig>,
    /// Git repositories: where they are, how the host fetches them, build limits.
    #[serde(default)]
    pub sources: RepositoriesConfig,
    /// Package entries: the indexes versions are resolved and installed
    /// from, the base images, build limits.
    #[serde(default)]
    pub builders: crate::packages::BuildersConfig,
    /// Where crashes, OOM kills, failing health and unavailable backends are told.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Egress filtered by host name (the egress proxy).
    #[serde(default)]
    pub egress: EgressConfig,
    /// How much of the audit trail is kept.
    #[serde(default)]
    pub audit: AuditConfig,
    /// How often deployments are compared with their backends.
    #[serde(default)]
    pub health: HealthConfig,
    /// The evidence gathered before anything runs (known vulnerabilities).
    #[serde(default)]
    pub supply_chain: SupplyChainConfig,
    /// Where `wasm` entries' components come from (`components/`).
    #[serde(default)]
    pub components: ComponentsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Names the proxy resolves to these addresses instead of asking DNS
    /// (internal services, tests). The addresses are checked as DNS answers
    /// are: a private one is reached only when an allowlist lists it too.
    #[serde(default)]
    pub resolve: BTreeMap<String, std::net::IpAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Request bodies above this are answered 413 (the MCP data path streams and is not limited).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// An MCP session the host holds (for a bridged server) ends after this
    /// long unused with no stream open; a per-session server goes with it.
    #[serde(default = "default_mcp_session_idle_seconds")]
    pub mcp_session_idle_seconds: u64,
    /// Threads serving connections and background work; half the cores
    /// (at least one) when absent. See `worker_threads()`.
    #[serde(default)]
    pub worker_threads: Option<usize>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: default_max_body_bytes(),
            mcp_session_idle_seconds: default_mcp_session_idle_seconds(),
            worker_threads: None,
        }
    }
}

impl ApiConfig {
    /// The host shares its machine with the servers it deploys, and a
    /// proxied call's share of the work is small beside the server's: half
    /// the cores serve it. More workers than there is work for cost more than
    /// they give: tokio hands its I/O driver to a parked worker each time
    /// the one holding it finds a task (a thread wake-up per event). On two
    /// cores, one worker took 15–30% less of the host's CPU per proxied call
    /// than two, and served more calls at 8 and 32 clients.
    pub fn worker_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
            (cores / 2).max(1)
        })
    }
}

/// More threads than this is a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;

fn default_mcp_session_idle_seconds() -> u64 {
    30 * 60
}

fn default_max_body_bytes() -> usize {
    1 << 20
}

#[derive(Debug, Clone, Deserialize)]
pub struct BackendConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Id of the plugin that implements this backend.
    pub plugin: String,
    /// For a backend whose plugin is granted `container-engine`: the
    /// engine's socket (default `/var/run/docker.sock`).
    #[serde(default)]
    pub socket: Option<String>,
    /// Applied to requests that name no resources, within the profile's maxima.
    #[serde(default, alias = "per_deployment_limits")]
    pub default_limits: DefaultLimits,
    /// Every other key is handed to the plugin as its settings.
    #[serde(flatten)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultLimits {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub pids: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsConfig {
    #[serde(default = "default_profile")]
    pub default_profile: String,
    /// Profiles added to (or replacing) the presets at first start.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl Default for GuardrailsConfig {
    fn default() -> Self {
        GuardrailsConfig { default_profile: default_profile(), profiles: BTreeMap::new() }
    }
}

fn yes() -> bool {
    true
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_disk_reserve_mb() -> u64 {
    crate::store::space::DEFAULT_RESERVE_BYTES / (1024 * 1024)
}
fn default_data_dir() -> PathBuf {
    "./data".into()
}
fn default_plugin_dir() -> PathBuf {
    "./target/wasm32-wasip2/guest".into()
}
fn default_owner() -> String {
    "mcp-runtime".into()
}
fn default_profile() -> String {
    "standard".into()
}

/// Environment variables that override one config key each.
const OVERRIDES: &[(&str, &[&str])] = &[
    ("MCPGATEWAY_RUNTIME_ENABLED", &["enabled"]),
    ("RUNTIME_LISTEN", &["listen"]),
    ("RUNTIME_DATA_DIR", &["data_dir"]),
    ("RUNTIME_DISK_RESERVE_MB", &["disk_reserve_mb"]),
    ("RUNTIME_AUDIT_KEEP_EVENTS", &["audit", "keep_events"]),
    ("RUNTIME_PLUGIN_DIR", &["plugin_dir"]),
    ("RUNTIME_PLUGIN_CACHE_DIR", &["plugin_cache_dir"]),
    ("RUNTIME_PLUGIN_DROPIN_DIR", &["plugin_dropin_dir"]),
    ("RUNTIME_OWNER", &["owner"]),
    ("RUNTIME_WORKER_THREADS", &["api", "worker_threads"]),
    ("RUNTIME_HEALTH_WATCH_INTERVAL_MS", &["health", "watch_interval_ms"]),
    ("RUNTIME_HEALTH_USAGE_INTERVAL_MS", &["health", "usage_interval_ms"]),
    ("RUNTIME_DEFAULT_BACKEND", &["default_backend"]),
    ("RUNTIME_DOCKER_SOCKET", &["backends", "docker", "socket"]),
    ("RUNTIME_DOCKER_NETWORK", &["backends", "docker", "network"]),
    ("RUNTIME_DOCKER_STDIO", &["backends", "docker", "stdio"]),
    ("RUNTIME_CATALOG_FILE", &["catalog", "seed_file"]),
    ("JWT_SECRET_KEY", &["auth", "jwt_secret"]),
    ("RUNTIME_APPROVAL_ENABLED", &["approval", "enabled"]),
    ("RUNTIME_APPROVAL_WEBHOOK_URL", &["approval", "notification", "webhook_url"]),
    ("RUNTIME_APPROVAL_WEBHOOK_SECRET", &["approval", "notification", "webhook_secret"]),
    ("RUNTIME_ALERTS_WEBHOOK_URL", &["alerts", "webhook_url"]),
    ("RUNTIME_ALERTS_WEBHOOK_SECRET", &["alerts", "webhook_secret"]),
    ("RUNTIME_GITHUB_TOKEN", &["sources", "token"]),
    ("RUNTIME_GITHUB_SSH_KEY_PATH", &["sources", "ssh_key_path"]),
    ("RUNTIME_GIT_BASE_URL", &["sources", "git_base_url"]),
    ("RUNTIME_NPM_REGISTRY", &["builders", "npm", "registry"]),
    ("RUNTIME_PYPI_INDEX_URL", &["builders", "pypi", "index_url"]),
    ("RUNTIME_BUILDERS_CA_BUNDLE", &["builders", "ca_bundle"]),
    ("RUNTIME_BUILDERS_INDEX_ADDRESSES", &["builders", "index_addresses"]),
    ("RUNTIME_BUILDERS_STDIO_BRIDGE", &["builders", "stdio_bridge"]),
    ("RUNTIME_SUPPLY_CHAIN_OSV_DIR", &["supply_chain", "osv_dir"]),
    ("RUNTIME_COMPONENTS_DIR", &["components", "dir"]),
    ("MCPGATEWAY_URL", &["gateway", "url"]),
    ("RUNTIME_PUBLIC_URL", &["gateway", "public_url"]),
    ("MCPGATEWAY_TOKEN", &["gateway", "auth", "token"]),
    ("MCPGATEWAY_JWT_SECRET", &["gateway", "auth", "jwt_secret"]),
    ("MCPGATEWAY_USER", &["gateway", "auth", "user"]),
];

impl RuntimeConfig {
    /// Loads the config file (or the embedded defaults), applying `env`.
    pub fn load(path: Option<&std::path::Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?,
            None => EMBEDDED_CONFIG.to_string(),
        };
        Self::parse(&text, env)
    }

    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut doc: Value = serde_yaml_ng::from_str(text).map_err(|e| invalid("runtime", e.to_string()))?;
        interpolate(&mut doc, "", env)?;
        let runtime = doc.get_mut("runtime").ok_or_else(|| invalid("runtime", "missing top-level key"))?;
        for (var, path) in OVERRIDES {
            if let Some(value) = env(var) {
                set_path(runtime, path, Value::String(value));
            }
        }
        let file: ConfigFile = serde_yaml_ng::from_value(doc).map_err(|e| invalid("runtime", e.to_string()))?;
        let mut config = file.runtime;
        if config.default_backend.is_empty() {
            let mut enabled = config.backends.iter().filter(|(_, b)| b.enabled).map(|(name, _)| name);
            if let (Some(only), None) = (enabled.next(), enabled.next()) {
                config.default_backend = only.clone();
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// A plugin's manifest with the settings of the backends it implements
    /// merged in (e.g. `allowed_registries` reaches the Docker plugin).
    pub fn effective_manifest(&self, manifest: &PluginManifest) -> PluginManifest {
        let mut manifest = manifest.clone();
        if !manifest.settings.is_object() {
            manifest.settings = serde_json::json!({});
        }
        if self.approval.rules.contains(&manifest.id) {
            if let Some(settings) = manifest.settings.as_object_mut() {
                // The rule's own settings are the more specific: they win.
                for (key, value) in self.approval.rule_settings() {
                    settings.entry(key).or_insert(value);
                }
            }
        }
        for backend in self.backends.values().filter(|b| b.plugin == manifest.id) {
            if let Some(settings) = manifest.settings.as_object_mut() {
                settings.extend(backend.settings.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        manifest
    }

    /// The container engine's socket: the one named by a backend whose plugin
    /// is granted the container engine (one engine serves them all).
    pub fn container_engine_socket(&self) -> String {
        let granted = |plugin: &str| {
            self.plugins
                .iter()
                .any(|p| p.id == plugin && p.grants.contains(&crate::capabilities::Grant::ContainerEngine))
        };
        self.backends
            .values()
            .filter(|b| b.enabled && granted(&b.plugin))
            .find_map(|b| b.socket.clone())
            .unwrap_or_else(|| "/var/run/docker.sock".into())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<std::net::SocketAddr>().map_err(|_| {
            invalid("runtime.listen", format!("'{}' is not an address such as 127.0.0.1:8080", self.listen))
        })?;
        if self.api.worker_threads.is_some_and(|n| n == 0 || n > MAX_WORKER_THREADS) {
            return Err(invalid("runtime.api.worker_threads", format!("between 1 and {MAX_WORKER_THREADS}")));
        }
        self.health.check().map_err(|(field, why)| invalid(field, why))?;
        let plugin_ids: Vec<&str> = self.plugins.iter().map(|p| p.id.as_str()).collect();
        if self.default_backend.is_empty() && !self.backends.is_empty() {
            return Err(invalid("runtime.default_backend", "required when more than one backend is enabled"));
        }
        for (i, plugin) in self.plugins.iter().enumerate() {
            plugin.validate().map_err(|reason| invalid(&format!("runtime.plugins[{i}]"), reason))?;
            if plugin_ids.iter().filter(|&&id| id == plugin.id).count() > 1 {
                return Err(invalid(&format!("runtime.plugins[{i}].id"), format!("'{}' is declared twice", plugin.id)));
            }
        }
        for (name, backend) in &self.backends {
            let key = format!("runtime.backends.{name}");
            if !crate::guardrails::is_valid_name(name) {
                return Err(invalid(&key, "a backend's name is 1-63 characters of a-z, 0-9, '-' and '_'"));
            }
            match self.plugins.iter().find(|p| p.id == backend.plugin) {
                None => {
                    return Err(invalid(&format!("{key}.plugin"), format!("no plugin with id '{}'", backend.plugin)))
                }
                Some(p) if p.kind != crate::plugins::PluginKind::RuntimeBackend => {
                    let reason = format!("plugin '{}' is a {}, not a runtime-backend", p.id, p.kind.world());
                    return Err(invalid(&format!("{key}.plugin"), reason));
                }
                Some(_) => {}
            }
            let limits = &backend.default_limits;
            if limits.cpu.as_deref().is_some_and(|c| crate::guardrails::parse_cpu(c).is_none()) {
                return Err(invalid(&format!("{key}.default_limits.cpu"), "not a CPU quantity such as \"0.5\""));
            }
            if limits.memory.as_deref().is_some_and(|m| crate::guardrails::parse_memory(m).is_none()) {
                return Err(invalid(&format!("{key}.default_limits.memory"), "not a memory quantity such as \"512m\""));
            }
        }
        for (i, id) in self.policy_chain.iter().enumerate() {
            if !plugin_ids.contains(&id.as_str()) {
                return Err(invalid(&format!("runtime.policy_chain[{i}]"), format!("no plugin with id '{id}'")));
            }
        }
        for (i, id) in self.approval.rules.iter().enumerate() {
            if !plugin_ids.contains(&id.as_str()) {
                return Err(invalid(&format!("runtime.approval.rules[{i}]"), format!("no plugin with id '{id}'")));
            }
        }
        if let Some(gateway) = &self.gateway {
            gateway.validate()?;
        }
        self.sources.validate().map_err(|(key, reason)| invalid(&key, reason))?;
        self.builders.validate().map_err(|(key, reason)| invalid(&key, reason))?;
        self.supply_chain.validate()?;
        self.components.validate().map_err(|(key, reason)| invalid(key, reason))?;
        self.catalog.validate()?;
        if self.api.mcp_session_idle_seconds == 0 {
            return Err(invalid("runtime.api.mcp_session_idle_seconds", "must be at least 1"));
        }
        if self.approval.timeout_hours <= 0.0 {
            return Err(invalid("runtime.approval.timeout_hours", "must be above 0"));
        }
        for (name, profile) in &self.guardrails.profiles {
            let mut profile = profile.clone();
            profile.name = name.clone();
            profile.validate().map_err(|e| invalid(&format!("runtime.guardrails.profiles.{name}"), e.to_string()))?;
        }
        Ok(())
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string of the document.
fn interpolate(value: &mut Value, key: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    match value {
        Value::String(text) => *text = expand(text, key, env)?,
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{key}[{i}]"), env)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let name = k.as_str().unwrap_or("?");
                let path = if key.is_empty() { name.to_string() } else { format!("{key}.{name}") };
                interpolate(v, &path, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand(text: &str, key: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| invalid(key, "unterminated ${...}"))?;
        let (name, fallback) = match after[..end].split_once(":-") {
            Some((name, fallback)) => (name, Some(fallback)),
            None => (&after[..end], None),
        };
        match (env(name), fallback) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(f)) => out.push_str(f),
            (None, None) => return Err(invalid(key, format!("environment variable {name} is not set"))),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn set_path(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = value;
    for part in parents {
        let Value::Mapping(map) = node else { return };
        node = map.entry(Value::String(part.to_string())).or_insert_with(|| Value::Mapping(Default::default()));
    }
    if let Value::Mapping(map) = node {
        // Keep YAML's typing for booleans and numbers given as text.
        let typed = match &new {
            Value::String(s) => serde_yaml_ng::from_str(s).unwrap_or(new),
            _ => new,
        };
        map.insert(Value::String(last.to_string()), typed);
    }
}

#[cfg(test)]
mod tests;
