//! `runtime.components`: where `wasm` catalog entries' components may come
//! from, and how large they may be.

use serde::Deserialize;
use std::path::PathBuf;

/// A setting that cannot work: its key and why (the config names it so).
pub type Invalid = (&'static str, String);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentsConfig {
    /// Where a `path` source is looked up (the operator places files
    /// there); `runtime.plugin_dir` when absent.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Hosts a `url` source may name (`name`, `*.domain`, an optional
    /// `:port`; IP literals only as listed). None: no URL is fetched.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Registries an `oci` source may name (`ghcr.io`, `127.0.0.1:5000`).
    /// None: no artifact is pulled.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
    /// A component larger than this is refused, before it is read whole.
    #[serde(default = "default_max_size_mb")]
    pub max_size_mb: u64,
}

impl Default for ComponentsConfig {
    fn default() -> Self {
        ComponentsConfig {
            dir: None,
            allowed_hosts: Vec::new(),
            allowed_registries: Vec::new(),
            max_size_mb: default_max_size_mb(),
        }
    }
}

fn default_max_size_mb() -> u64 {
    64
}

impl ComponentsConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_size_mb == 0 {
            return Err(("runtime.components.max_size_mb", "must be at least 1".into()));
        }
        crate::egress::Allowlist::parse(&self.allowed_hosts).map_err(|e| ("runtime.components.allowed_hosts", e))?;
        Ok(())
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_size_mb << 20
    }
}
