//! Catalog entries from the formats people publish: the MCP registry's
//! `server.json`, Docker's `server.yaml`, ContextForge's `mcp-catalog.yml`.
//! Each upstream server becomes an entry or is skipped with the field and
//! the reason; one that cannot be read never stops the rest. An imported
//! entry records where it came from, so importing again updates it (keeping
//! the admin's guardrails profile, approval flag, backends and gateway
//! registration) or finds it unchanged.

mod contextforge;
mod docker;
mod mcp_registry;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::CatalogEntry;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CatalogFormat)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    Auto,
    Contextforge,
    McpRegistry,
    Docker,
}

/// The kinds of package a registry entry may list that this runtime runs,
/// in `runtime.catalog.package_preference` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    Oci,
    Npm,
    Pypi,
}

impl PackageKind {
    /// The default order: a ready image first, then what is built.
    pub const PREFERENCE: [PackageKind; 3] = [PackageKind::Oci, PackageKind::Npm, PackageKind::Pypi];

    /// As the registry's `registryType` names it.
    pub fn registry_type(self) -> &'static str {
        match self {
            PackageKind::Oci => "oci",
            PackageKind::Npm => "npm",
            PackageKind::Pypi => "pypi",
        }
    }
}

/// Where an imported entry came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The URL it was read from, or `document` for one posted inline.
    pub source: String,
    pub format: Format,
    pub upstream_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportFilter {
    /// Any of these categories (in any case).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Any of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// In the name, slug or description, in any case.
    #[serde(default)]
    pub q: Option<String>,
}

/// Why an upstream server is not imported.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub field: String,
    pub reason: String,
}

impl Skip {
    pub fn new(field: &str, reason: impl Into<String>) -> Skip {
        Skip { field: field.into(), reason: reason.into() }
    }
}

/// One upstream server as read.
pub struct Candidate {
    pub upstream_id: String,
    pub version: Option<String>,
    pub entry: Result<CatalogEntry, Skip>,
}

/// `io.github.acme/weather` → `io-github-acme-weather`.
pub fn candidate_slug(upstream: &str) -> String {
    let mut slug = String::new();
    for c in upstream.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(100).collect()
}

/// An entry with the catalog's defaults, named after the upstream server;
/// each format fills in the rest.
fn blank_entry(upstream_name: &str) -> Result<CatalogEntry, Skip> {
    let slug = candidate_slug(upstream_name);
    let blank = serde_json::json!({"name": upstream_name, "slug": slug, "source": {"type": "docker", "image": "x"}});
    serde_json::from_value(blank).map_err(|e| Skip::new("name", e.to_string()))
}

/// What the document is, when asked to tell.
fn detect(document: &Value) -> Option<Format> {
    if document.get("catalog_servers").is_some() {
        Some(Format::Contextforge)
    } else if document.get("servers").is_some()
        || document.get("packages").is_some()
        || document.get("remotes").is_some()
    {
        Some(Format::McpRegistry)
    } else if document.get("image").is_some() || document.get("about").is_some() {
        Some(Format::Docker)
    } else {
        None
    }
}

/// A document (YAML or JSON): its format and every server in it.
/// `preference`: which of a registry server's packages becomes the entry.
pub fn read(text: &str, format: Format, preference: &[PackageKind]) -> Result<(Format, Vec<Candidate>), Skip> {
    let document: Value =
        serde_yaml_ng::from_str(text).map_err(|e| Skip::new("document", format!("neither YAML nor JSON: {e}")))?;
    let format = match format {
        Format::Auto => {
            detect(&document).ok_or_else(|| Skip::new("format", "not a catalog this runtime reads: name the format"))?
        }
        named => named,
    };
    let candidates = match format {
        Format::McpRegistry => {
            mcp_registry::servers(&document).iter().map(|server| mcp_registry::read(server, preference)).collect()
        }
        Format::Docker => vec![docker::read(&document)],
        Format::Contextforge => contextforge::servers(&document).iter().map(contextforge::read).collect(),
        Format::Auto => unreachable!("resolved above"),
    };
    Ok((format, candidates))
}

/// The cursor of the registry's next page, for a paginated `/v0/servers`.
pub fn next_page(text: &str) -> Option<String> {
    mcp_registry::next_cursor(&serde_yaml_ng::from_str(text).ok()?)
}

impl ImportFilter {
    pub fn keeps(&self, entry: &CatalogEntry) -> bool {
        let lower = |s: &str| s.to_lowercase();
        let category = entry.category.as_deref().map(lower);
        let categories =
            self.categories.is_empty() || self.categories.iter().any(|c| category.as_deref() == Some(&lower(c)));
        let tags = self.tags.is_empty() || self.tags.iter().any(|t| entry.tags.iter().any(|e| lower(e) == lower(t)));
        let q = self.q.as_deref().map(lower).is_none_or(|q| {
            [&entry.name, &entry.slug, &entry.description].iter().any(|field| lower(field).contains(&q))
        });
        categories && tags && q
    }
}

/// What importing one upstream server came to.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ImportOutcome)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    Added { upstream_id: String, slug: String },
    Updated { upstream_id: String, slug: String },
    Unchanged { upstream_id: String, slug: String },
    Skipped { upstream_id: String, field: String, reason: String },
}

/// What the import makes of `incoming` against what is stored under its
/// slug: the admin's own choices kept, and `None` when nothing changes.
pub fn merge(incoming: CatalogEntry, stored: Option<&CatalogEntry>) -> Result<Option<CatalogEntry>, Skip> {
    let Some(stored) = stored else { return Ok(Some(incoming)) };
    let same_upstream = match (&stored.origin, &incoming.origin) {
        (Some(a), Some(b)) => a.upstream_id == b.upstream_id && a.format == b.format,
        _ => false,
    };
    if !same_upstream {
        return Err(Skip::new("slug", format!("'{}' is another entry's slug", stored.slug)));
    }
    let merged = CatalogEntry {
        guardrails_profile: stored.guardrails_profile.clone(),
        requires_approval: stored.requires_approval,
        supported_backends: stored.supported_backends.clone(),
        featured: stored.featured,
        register_with_gateway: stored.register_with_gateway,
        ..incoming
    };
    Ok((merged != *stored).then_some(merged))
}

#[cfg(test)]
mod tests;
