//! `runtime.builders`: where package versions are resolved and installed
//! from, the images they are built on, and the limits of a build. (Here
//! rather than in `config`, which reads it: the `source` capability uses it.)

use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

use super::Ecosystem;
use crate::egress::parse_network;

/// The stdio bridge's file name (the `mcp-bridge` crate's binary).
pub const STDIO_BRIDGE: &str = "mcp-stdio-bridge";

/// A setting that is wrong: its key and why.
pub type Misconfigured = (String, String);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildersConfig {
    #[serde(default = "NpmConfig::standard")]
    pub npm: NpmConfig,
    #[serde(default = "PypiConfig::standard")]
    pub pypi: PypiConfig,
    /// A PEM bundle handed to every install (for a TLS-inspecting proxy
    /// between the site and its index); the base image's own otherwise.
    /// Empty is none (`RUNTIME_BUILDERS_CA_BUNDLE=`).
    #[serde(default, deserialize_with = "path_unless_empty")]
    pub ca_bundle: Option<PathBuf>,
    /// Networks (CIDR) the index hosts may resolve into though egress checks
    /// refuse them elsewhere: a private mirror, or a proxy's address. A list,
    /// or one comma-separated text (`RUNTIME_BUILDERS_INDEX_ADDRESSES`).
    #[serde(default, deserialize_with = "list_or_text")]
    pub index_addresses: Vec<String>,
    /// The static `mcp-stdio-bridge` binary placed in images that serve a
    /// stdio server over HTTP (for backends that run only HTTP servers);
    /// when unset, the one beside the host's own executable.
    #[serde(default, deserialize_with = "path_unless_empty")]
    pub stdio_bridge: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    pub build_timeout_seconds: u64,
    /// The largest image a build may make.
    #[serde(default = "default_max_image_mb")]
    pub max_image_mb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmConfig {
    #[serde(default = "NpmConfig::default_base")]
    pub base_image: String,
    /// The registry packages are resolved and installed from.
    #[serde(default = "NpmConfig::default_registry")]
    pub registry: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PypiConfig {
    #[serde(default = "PypiConfig::default_base")]
    pub base_image: String,
    /// A PEP 503 simple index.
    #[serde(default = "PypiConfig::default_index")]
    pub index_url: String,
}

impl NpmConfig {
    fn standard() -> NpmConfig {
        NpmConfig { base_image: Self::default_base(), registry: Self::default_registry() }
    }
    fn default_base() -> String {
        "mcp-runtime/node:latest".into()
    }
    fn default_registry() -> String {
        "https://registry.npmjs.org/".into()
    }
}

impl PypiConfig {
    fn standard() -> PypiConfig {
        PypiConfig { base_image: Self::default_base(), index_url: Self::default_index() }
    }
    fn default_base() -> String {
        "mcp-runtime/python:latest".into()
    }
    fn default_index() -> String {
        "https://pypi.org/simple/".into()
    }
}

/// One ecosystem's settings, as the builder and the resolver read them.
#[derive(Debug, Clone, PartialEq)]
pub struct EcosystemConfig {
    pub base_image: String,
    /// The index's URL, ending in `/`.
    pub index: String,
}

fn path_unless_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    Ok(text.filter(|t| !t.trim().is_empty()).map(PathBuf::from))
}

fn list_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(d)? {
        ListOrText::List(list) => list,
        ListOrText::Text(text) => text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
    })
}

fn default_timeout() -> u64 {
    900
}
fn default_max_image_mb() -> u64 {
    2048
}

impl Default for BuildersConfig {
    fn default() -> Self {
        BuildersConfig {
            npm: NpmConfig::standard(),
            pypi: PypiConfig::standard(),
            ca_bundle: None,
            index_addresses: Vec::new(),
            stdio_bridge: None,
            build_timeout_seconds: default_timeout(),
            max_image_mb: default_max_image_mb(),
        }
    }
}

fn slashed(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

impl BuildersConfig {
    pub fn ecosystem(&self, ecosystem: Ecosystem) -> EcosystemConfig {
        match ecosystem {
            Ecosystem::Npm => {
                EcosystemConfig { base_image: self.npm.base_image.clone(), index: slashed(&self.npm.registry) }
            }
            Ecosystem::Pypi => {
                EcosystemConfig { base_image: self.pypi.base_image.clone(), index: slashed(&self.pypi.index_url) }
            }
        }
    }

    /// The stdio bridge binary: as configured, else beside the host's executable.
    pub fn stdio_bridge(&self) -> Result<PathBuf, Misconfigured> {
        let beside_host = || std::env::current_exe().ok()?.parent().map(|dir| dir.join(STDIO_BRIDGE));
        let path = self.stdio_bridge.clone().or_else(beside_host).unwrap_or_else(|| STDIO_BRIDGE.into());
        if path.is_file() {
            return Ok(path);
        }
        let why = format!("no bridge binary at {} (`make bridge` builds it; set this to its path)", path.display());
        Err(("runtime.builders.stdio_bridge".into(), why))
    }

    /// The networks of `index_addresses`, parsed.
    pub fn index_networks(&self) -> Vec<(IpAddr, u8)> {
        self.index_addresses.iter().filter_map(|cidr| parse_network(cidr).ok()).collect()
    }

    pub fn validate(&self) -> Result<(), Misconfigured> {
        let bad = |key: &str, reason: String| Err((format!("runtime.builders.{key}"), reason));
        for (key, url) in [("npm.registry", &self.npm.registry), ("pypi.index_url", &self.pypi.index_url)] {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => return bad(key, format!("'{url}' is not an http(s) URL")),
            }
        }
        for (key, image) in [("npm.base_image", &self.npm.base_image), ("pypi.base_image", &self.pypi.base_image)] {
            if image.trim().is_empty() || image.contains(char::is_whitespace) {
                return bad(key, format!("'{image}' is not an image reference"));
            }
        }
        for (i, cidr) in self.index_addresses.iter().enumerate() {
            let reason = |why: String| (format!("runtime.builders.index_addresses[{i}]"), format!("'{cidr}': {why}"));
            parse_network(cidr).map_err(reason)?;
        }
        if let Some(bundle) = &self.ca_bundle {
            if !bundle.is_file() {
                return bad("ca_bundle", format!("{} is not a readable file", bundle.display()));
            }
        }
        if let Some(bridge) = &self.stdio_bridge {
            if !bridge.is_file() {
                return bad("stdio_bridge", format!("{} is not a file (`make bridge` builds it)", bridge.display()));
            }
        }
        let most = super::MAX_BUILD_SECONDS;
        if !(1..=most).contains(&self.build_timeout_seconds) {
            return bad("build_timeout_seconds", format!("1-{most} seconds"));
        }
        if !(64..=65536).contains(&self.max_image_mb) {
            return bad("max_image_mb", "64-65536".into());
        }
        Ok(())
    }
}
