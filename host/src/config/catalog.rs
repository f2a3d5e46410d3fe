//! `runtime.catalog`: the seed, whether people may add entries, the remote
//! catalogs synced, and which of a registry server's packages an import runs.

use serde::Deserialize;
use std::path::PathBuf;

use super::{invalid, yes, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Catalog YAML loaded at first start; the embedded sample when absent.
    #[serde(default)]
    pub seed_file: Option<PathBuf>,
    #[serde(default = "yes")]
    pub allow_custom_entries: bool,
    /// Catalogs imported on start and every `sync_interval_hours`; their
    /// hosts are the only ones `POST /catalog/import` fetches from.
    #[serde(default)]
    pub remote_catalogs: Vec<RemoteCatalog>,
    /// Which of a registry server's packages an import turns into the entry.
    #[serde(default = "package_preference")]
    pub package_preference: Vec<crate::catalog::import::PackageKind>,
}

fn package_preference() -> Vec<crate::catalog::import::PackageKind> {
    crate::catalog::import::PackageKind::PREFERENCE.to_vec()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteCatalog {
    pub url: String,
    #[serde(default)]
    pub format: crate::catalog::import::Format,
    #[serde(default = "daily")]
    pub sync_interval_hours: u32,
    #[serde(default)]
    pub filter: crate::catalog::import::ImportFilter,
    /// What this source's entries are imported with, at the least: the
    /// profile they run under, and whether their deploys wait for approval.
    #[serde(default)]
    pub guardrails_profile: Option<String>,
    #[serde(default)]
    pub requires_approval: bool,
}

fn daily() -> u32 {
    24
}

impl CatalogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let preference = &self.package_preference;
        if preference.is_empty() || (1..preference.len()).any(|i| preference[..i].contains(&preference[i])) {
            return Err(invalid("runtime.catalog.package_preference", "one or more of oci, npm, pypi, each once"));
        }
        Ok(())
    }
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            seed_file: None,
            allow_custom_entries: true,
            remote_catalogs: Vec::new(),
            package_preference: package_preference(),
        }
    }
}
