//! Catalog entries: the seed's schema, validation that names the field at
//! fault, and the list filters of `GET /catalog`.

mod component;
mod env;
mod health;
pub mod history;
pub mod import;
mod service;
mod source;

pub use component::{ComponentSource, Origin as ComponentOrigin};
pub use env::{is_env_name, resolve as resolve_env, DeclaredEnv};
pub use health::{HealthCheck, Probe, RestartPolicy};
pub use service::{Catalog, CatalogServiceError};
pub use source::ServerSource;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: &str, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid { field: field.into(), reason: reason.into() }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "Time", "slug": "time", "description": "The time, in any zone",
    "source": {"type": "docker", "image": "docker.io/mcp/time:1.0.0"}, "transport": "stdio",
    "guardrails_profile": "restricted", "supported_backends": ["docker"]}))]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub name: String,
    /// Lowercase letters, digits and dashes; what deployments and URLs name it by.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,99}$")]
    pub slug: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub source: ServerSource,
    /// Backends (by their name in the host config) the entry may run on;
    /// empty means any backend the host runs.
    #[serde(default)]
    pub supported_backends: Vec<String>,
    #[serde(default = "default_profile")]
    pub guardrails_profile: String,
    #[serde(default)]
    pub requires_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, alias = "is_featured")]
    pub featured: bool,
    #[serde(default, alias = "is_deprecated")]
    pub deprecated: bool,
    /// Port the server listens on inside its container.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Path of its MCP streamable-HTTP endpoint.
    #[serde(default = "default_mcp_path")]
    pub mcp_path: String,
    /// How the server speaks MCP; `port` and `mcp_path` apply to the HTTP ones.
    #[serde(default)]
    pub transport: Transport,
    /// Whether clients share one server or each session gets its own.
    #[serde(default, skip_serializing_if = "SessionMode::is_shared")]
    pub session_mode: SessionMode,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's arguments, e.g. the directories a filesystem server may touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Variables the server reads that a deploy supplies (required, secret, default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_vars: Vec<DeclaredEnv>,
    /// For a remote entry: the admin wants it registered with the gateway
    /// (deployed servers register themselves when they connect).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub register_with_gateway: bool,
    /// Where an imported entry came from (`POST /catalog/import`); none for one made here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<import::Origin>,
    #[serde(default, skip_serializing_if = "HealthCheck::is_default")]
    pub health_check: HealthCheck,
    #[serde(default, skip_serializing_if = "RestartPolicy::is_default")]
    pub restart_policy: RestartPolicy,
    /// Restarts after which a failing server is left in `error` (`always`, `on-failure`).
    #[serde(default = "health::default_max_restarts", skip_serializing_if = "health::is_default_max_restarts")]
    pub max_restarts: u32,
}

/// How a server speaks MCP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    #[default]
    StreamableHttp,
    /// The 2024-11-05 HTTP+SSE transport.
    Sse,
    /// Newline-delimited JSON-RPC on stdin and stdout.
    Stdio,
}

/// How a deployment's server is shared among MCP sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SessionMode {
    /// One server for every client session.
    #[default]
    Shared,
    /// A server of its own for each session, for servers that keep per-client
    /// state: started when the session begins, removed when it ends.
    PerSession,
}

impl SessionMode {
    pub fn is_shared(&self) -> bool {
        *self == SessionMode::Shared
    }
}

/// Most entries and characters a `command` or `args` list may have.
const MAX_ARGUMENTS: usize = 64;
const MAX_ARGUMENT_CHARS: usize = 4096;

fn default_profile() -> String {
    "standard".into()
}
fn default_port() -> u16 {
    8080
}
fn default_mcp_path() -> String {
    "/mcp".into()
}

impl CatalogEntry {
    /// Checks what serde cannot; `profile_exists` answers for `guardrails_profile`.
    pub fn validate(&self, profile_exists: impl Fn(&str) -> bool) -> Result<(), CatalogError> {
        if self.name.trim().is_empty() || self.name.len() > 100 {
            return Err(invalid("name", "1-100 characters"));
        }
        if !is_valid_slug(&self.slug) {
            return Err(invalid("slug", "1-100 characters of a-z, 0-9 and '-', starting with a letter or digit"));
        }
        match &self.source {
            ServerSource::Docker { image, .. } if !is_plausible_image(image) => {
                return Err(invalid("source.image", format!("'{image}' is not an image reference")));
            }
            ServerSource::Github { repo, .. } if repo.trim().is_empty() || repo.contains(char::is_whitespace) => {
                return Err(invalid("source.repo", "an org/name or a clone URL"));
            }
            ServerSource::Github { dockerfile, context_dir, .. } => {
                // Inside the repository, always: checked again against the checkout itself.
                let climbs = |p: &str| {
                    p.starts_with('/')
                        || std::path::Path::new(p).components().any(|c| c == std::path::Component::ParentDir)
                };
                if dockerfile.trim().is_empty() || climbs(dockerfile) {
                    return Err(invalid("source.dockerfile", "a relative path inside the build context, without '..'"));
                }
                if context_dir.as_deref().is_some_and(climbs) {
                    return Err(invalid("source.context_dir", "a relative path inside the repository, without '..'"));
                }
            }
            ServerSource::Compose { compose_file, main_service } => {
                if compose_file.trim().is_empty() {
                    return Err(invalid("source.compose_file", "must not be empty"));
                }
                if main_service.trim().is_empty() {
                    return Err(invalid("source.main_service", "must name the service that speaks MCP"));
                }
                crate::compose::Stack::parse(compose_file, main_service).map_err(|e| invalid(&e.field(), e.reason))?;
            }
            ServerSource::Package { .. } => {
                // The name, extras and a plausible version; the index is asked when the entry is written.
                if let Some(Err(e)) = self.source.package().map(|p| p.check()) {
                    return Err(invalid(e.field(), e.reason()));
                }
            }
            ServerSource::Wasm { .. } => {
                self.source.component().transpose()?;
                // The host serves a component itself: its MCP is streamable HTTP, one instance per call.
                if self.transport != Transport::StreamableHttp || self.session_mode == SessionMode::PerSession {
                    let reason = "a component is served by the host over streamable HTTP, a fresh instance per call: \
                                  transport streamable-http, session_mode shared";
                    return Err(invalid("transport", reason));
                }
            }
            ServerSource::Remote { url, .. } => {
                let parsed = reqwest::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
                if parsed.is_none_or(|u| u.host_str().is_none()) {
                    return Err(invalid("source.url", format!("'{url}' is not an http(s) URL")));
                }
                if self.transport == Transport::Stdio {
                    return Err(invalid("transport", "a remote server is reached over HTTP: streamable-http or sse"));
                }
            }
            _ => {}
        }
        match (&self.source, self.register_with_gateway) {
            (ServerSource::Remote { auth: Some(auth), .. }, true) => {
                let reason = format!("the server asks for {auth} credentials, which the gateway holds: register it in the gateway itself");
                return Err(invalid("register_with_gateway", reason));
            }
            (ServerSource::Remote { .. }, _) | (_, false) => {}
            (_, true) => {
                let reason = "for remote entries: a deployed server is registered when it connects";
                return Err(invalid("register_with_gateway", reason));
            }
        }
        // Names only: a catalog is shared between hosts that run different
        // backends, and which sources a backend can run is its plugin's say.
        for (i, backend) in self.supported_backends.iter().enumerate() {
            if !crate::guardrails::is_valid_name(backend) {
                return Err(invalid(&format!("supported_backends[{i}]"), format!("'{backend}' is not a backend name")));
            }
        }
        if !profile_exists(&self.guardrails_profile) {
            return Err(invalid("guardrails_profile", format!("unknown profile '{}'", self.guardrails_profile)));
        }
        if self.port == 0 {
            return Err(invalid("port", "must be 1-65535"));
        }
        if !self.mcp_path.starts_with('/') {
            return Err(invalid("mcp_path", "must start with '/'"));
        }
        if let Some(url) = &self.documentation_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid("documentation_url", "must be an http(s) URL"));
            }
        }
        if self.session_mode == SessionMode::PerSession && self.transport == Transport::StreamableHttp {
            // The host starts a server per session where it holds the sessions:
            // for the servers it bridges. A streamable-HTTP server keeps its own.
            let reason = "per-session servers are for stdio and sse transports; a streamable-HTTP server keeps per-client state in its own sessions";
            return Err(invalid("session_mode", reason));
        }
        env::validate(&self.env_vars)?;
        self.health_check.validate(self.transport)?;
        if self.max_restarts > health::MOST_RESTARTS {
            return Err(invalid("max_restarts", format!("at most {}", health::MOST_RESTARTS)));
        }
        for (field, list) in [("command", &self.command), ("args", &self.args)] {
            let Some(list) = list else { continue };
            if list.len() > MAX_ARGUMENTS {
                return Err(invalid(field, format!("at most {MAX_ARGUMENTS} entries")));
            }
            if field == "command" && list.is_empty() {
                return Err(invalid(field, "must name the program to run (leave it out for the image's own)"));
            }
            for (i, argument) in list.iter().enumerate() {
                if argument.len() > MAX_ARGUMENT_CHARS || argument.contains('\0') {
                    let reason = format!("at most {MAX_ARGUMENT_CHARS} characters, no NUL");
                    return Err(invalid(&format!("{field}[{i}]"), reason));
                }
            }
        }
        Ok(())
    }

    /// Whether the entry may run on the backend of that name.
    pub fn runs_on(&self, backend: &str) -> bool {
        self.supported_backends.is_empty() || self.supported_backends.iter().any(|b| b == backend)
    }

    pub fn matches(&self, filter: &CatalogFilter) -> bool {
        let wanted = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        (filter.include_deprecated || !self.deprecated)
            && wanted(&filter.category, self.category.as_deref())
            && filter.tag.as_deref().is_none_or(|t| self.tags.iter().any(|x| x == t))
            && filter.backend.as_deref().is_none_or(|b| self.runs_on(b))
            && filter.featured.is_none_or(|f| self.featured == f)
            && filter.q.as_deref().is_none_or(|q| {
                let q = q.to_lowercase();
                self.name.to_lowercase().contains(&q) || self.description.to_lowercase().contains(&q)
            })
    }
}

/// Query parameters of `GET /catalog`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CatalogFilter {
    pub category: Option<String>,
    pub tag: Option<String>,
    pub backend: Option<String>,
    pub featured: Option<bool>,
    #[serde(default)]
    pub include_deprecated: bool,
    /// Text search over name and description.
    pub q: Option<String>,
}

pub fn is_valid_slug(slug: &str) -> bool {
    (1..=100).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_plausible_image(image: &str) -> bool {
    !image.is_empty()
        && image.len() <= 500
        && !image.starts_with(['/', ':', '@', '-'])
        && image.chars().all(|c| c.is_ascii_alphanumeric() || "./:-_@".contains(c))
}

/// An entry as written (JSON, or YAML read into a value), with what depends
/// on its source filled in first: a package speaks stdio unless it says
/// otherwise (most packaged servers do; an image's default stays HTTP).
pub fn read_entry(mut value: serde_json::Value) -> Result<CatalogEntry, serde_path_to_error::Error<serde_json::Error>> {
    if let Some(entry) = value.as_object_mut() {
        let package = entry.get("source").and_then(|s| s.get("type")).and_then(|t| t.as_str()) == Some("package");
        if package && !entry.contains_key("transport") {
            entry.insert("transport".into(), "stdio".into());
        }
    }
    serde_path_to_error::deserialize(value)
}

/// Parses a catalog YAML file: a list of entries.
pub fn parse_catalog(yaml: &str) -> anyhow::Result<Vec<CatalogEntry>> {
    let values: Vec<serde_json::Value> = serde_yaml_ng::from_str(yaml)?;
    let read = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| read_entry(value).map_err(|e| anyhow::anyhow!("entry {i}: {}: {}", e.path(), e.inner())));
    read.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CatalogEntry {
        serde_yaml_ng::from_str("name: Echo\nslug: echo\nsource: {type: docker, image: 'ghcr.io/x/echo:1'}").unwrap()
    }

    #[test]
    fn defaults_follow_the_seed() {
        let e = entry();
        assert!(e.supported_backends.is_empty() && e.runs_on("docker") && e.runs_on("anything-configured"));
        assert_eq!(e.guardrails_profile, "standard");
        assert_eq!((e.port, e.mcp_path.as_str(), e.transport), (8080, "/mcp", Transport::StreamableHttp));
        let stdio: CatalogEntry = serde_yaml_ng::from_str(
            "name: Files\nslug: files\ntransport: stdio\nargs: [/data]\nsource: {type: docker, image: 'mcp/filesystem'}",
        )
        .unwrap();
        assert_eq!((stdio.transport, stdio.args.as_deref()), (Transport::Stdio, Some(&["/data".to_string()][..])));
        let wrong = serde_yaml_ng::from_str::<CatalogEntry>(
            "name: X\nslug: x\ntransport: carrier-pigeon\nsource: {type: docker, image: x}",
        );
        assert!(wrong.unwrap_err().to_string().contains("transport"));
        e.validate(|_| true).unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let field = |e: CatalogEntry| match e.validate(|p| p == "standard") {
            Err(CatalogError::Invalid { field, .. }) => field,
            Ok(()) => "ok".into(),
        };
        assert_eq!(field(CatalogEntry { slug: "Bad Slug".into(), ..entry() }), "slug");
        assert_eq!(field(CatalogEntry { guardrails_profile: "nope".into(), ..entry() }), "guardrails_profile");
        assert_eq!(field(CatalogEntry { command: Some(vec![]), ..entry() }), "command");
        let per_session = CatalogEntry { session_mode: SessionMode::PerSession, ..entry() };
        assert_eq!(field(per_session.clone()), "session_mode", "a streamable-HTTP server keeps its own sessions");
        assert_eq!(field(CatalogEntry { transport: Transport::Stdio, ..per_session }), "ok");
        let component = ServerSource::Wasm {
            url: None,
            path: Some("tools.wasm".into()),
            oci: None,
            sha256: "a".repeat(64),
            permissions: None,
        };
        assert_eq!(field(CatalogEntry { source: component.clone(), ..entry() }), "ok");
        assert_eq!(field(CatalogEntry { source: component, transport: Transport::Stdio, ..entry() }), "transport");
        let args = Some(vec!["/data".into(), "a\0b".into()]);
        assert_eq!(field(CatalogEntry { args, ..entry() }), "args[1]");
        let backends = vec!["k8s".into(), "Not A Name!".into()];
        assert_eq!(field(CatalogEntry { supported_backends: backends, ..entry() }), "supported_backends[1]");
        let remote = |url: &str| ServerSource::Remote { url: url.into(), auth: None };
        assert_eq!(field(CatalogEntry { source: remote("https://mcp.example/mcp"), ..entry() }), "ok");
        for url in ["ftp://mcp.example/", "https://", "mcp.example/mcp"] {
            assert_eq!(field(CatalogEntry { source: remote(url), ..entry() }), "source.url", "{url}");
        }
        let stdio = CatalogEntry { source: remote("https://mcp.example/"), transport: Transport::Stdio, ..entry() };
        assert_eq!(field(stdio), "transport");
    }

    #[test]
    fn a_package_speaks_stdio_unless_its_entry_says_otherwise() {
        let read = |v: serde_json::Value| read_entry(v).unwrap().transport;
        let package = serde_json::json!({"name": "P", "slug": "p",
            "source": {"type": "package", "ecosystem": "npm", "name": "p", "version": "1.0.0"}});
        assert_eq!(read(package.clone()), Transport::Stdio);
        let mut http = package;
        http["transport"] = "streamable-http".into();
        assert_eq!(read(http), Transport::StreamableHttp);
        let image = serde_json::json!({"name": "I", "slug": "i", "source": {"type": "docker", "image": "x:1"}});
        assert_eq!(read(image), Transport::StreamableHttp, "an image's default stays");
        let unknown =
            serde_json::json!({"name": "I", "slug": "i", "source": {"type": "docker", "image": "x:1"}, "colour": 1});
        assert!(read_entry(unknown).unwrap_err().to_string().contains("colour"));
    }

    #[test]
    fn filters_hide_deprecated_unless_asked() {
        let e = CatalogEntry { deprecated: true, ..entry() };
        assert!(!e.matches(&CatalogFilter::default()));
        assert!(e.matches(&CatalogFilter { include_deprecated: true, ..Default::default() }));
        assert!(entry().matches(&CatalogFilter { q: Some("ECH".into()), ..Default::default() }));
        let on_docker = CatalogEntry { supported_backends: vec!["docker".into()], ..entry() };
        assert!(!on_docker.matches(&CatalogFilter { backend: Some("other".into()), ..Default::default() }));
        assert!(on_docker.matches(&CatalogFilter { backend: Some("docker".into()), ..Default::default() }));
    }
}
