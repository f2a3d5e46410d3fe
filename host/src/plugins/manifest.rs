//! A plugin's manifest: its entry in the host config. Grants are deny by
//! default: a plugin gets `config` and sandboxed WASI (no files, no sockets,
//! no environment) and nothing else it is not granted here.

use serde::{Deserialize, Serialize};

use crate::capabilities::Grant;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    pub id: String,
    pub kind: PluginKind,
    /// The component file; a bare file name is looked up in `plugin_dir`.
    pub path: PathBuf,
    /// Hex SHA-256 the component must have.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// With `outgoing-http`: the destinations allowed (`api.example.com`,
    /// `*.example.com`, `10.0.0.5:8443`); nothing else is reachable.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub limits: PluginLimits,
    /// Handed to the plugin through `config.settings`.
    #[serde(default = "empty_object")]
    pub settings: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    RuntimeBackend,
    GuardrailPolicy,
    ApprovalRule,
}

impl PluginKind {
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::RuntimeBackend => "runtime-backend",
            PluginKind::GuardrailPolicy => "guardrail-policy",
            PluginKind::ApprovalRule => "approval-rule",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Linear memory a call may grow to.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Guest CPU a call may use (metered in fuel; host calls are not billed).
    #[serde(default = "default_cpu_ms")]
    pub cpu_ms: u64,
    /// Wall-clock time a call may take, host calls included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits { memory_mb: default_memory_mb(), cpu_ms: default_cpu_ms(), timeout_ms: default_timeout_ms() }
    }
}

fn default_memory_mb() -> u32 {
    64
}
fn default_cpu_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    10_000
}

/// Largest memory limit a plugin may ask for (the pooling allocator's slot size).
pub const MAX_PLUGIN_MEMORY_MB: u32 = 512;

impl PluginManifest {
    pub fn validate(&self) -> Result<(), String> {
        if !crate::guardrails::is_valid_name(&self.id) {
            return Err(format!("id '{}': 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter", self.id));
        }
        if let Some(pin) = &self.sha256 {
            if pin.len() != 64 || !pin.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err("sha256: 64 hex digits".into());
            }
        }
        if self.limits.memory_mb == 0 || self.limits.memory_mb > MAX_PLUGIN_MEMORY_MB {
            return Err(format!("limits.memory_mb: 1-{MAX_PLUGIN_MEMORY_MB}"));
        }
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            crate::capabilities::HostPattern::parse(host).map_err(|e| format!("allowed_hosts[{i}]: {e}"))?;
        }
        if !self.allowed_hosts.is_empty() && !self.grants.contains(&Grant::OutgoingHttp) {
            return Err("allowed_hosts: given without the outgoing-http grant".into());
        }
        if self.limits.cpu_ms == 0 || self.limits.timeout_ms == 0 {
            return Err("limits: cpu_ms and timeout_ms must be above 0".into());
        }
        Ok(())
    }
}
