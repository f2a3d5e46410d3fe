//! Docker's MCP catalog (`docker/mcp-registry`, one `server.yaml` per
//! server): an image speaking stdio, with its secrets and environment, or
//! (`type: remote`) a server already hosted at a URL.

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{blank_entry, Candidate, Skip};
use crate::catalog::{CatalogEntry, DeclaredEnv, Transport};

#[derive(Deserialize)]
struct Server {
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    meta: Meta,
    #[serde(default)]
    about: About,
    #[serde(default)]
    config: Config,
    #[serde(default)]
    run: Run,
    #[serde(default)]
    remote: Option<RemoteEndpoint>,
    /// OAuth providers the remote server signs its users in with.
    #[serde(default)]
    oauth: Vec<Value>,
}

#[derive(Deserialize)]
struct RemoteEndpoint {
    #[serde(default)]
    transport_type: Option<String>,
    url: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize, Default)]
struct About {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    icon: Option<String>,
}

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    secrets: Vec<Secret>,
    #[serde(default)]
    env: Vec<Env>,
    /// A JSON schema of what the deployer configures; `env` values refer to it.
    #[serde(default)]
    parameters: Parameters,
}

#[derive(Deserialize, Default)]
struct Parameters {
    #[serde(default)]
    properties: std::collections::BTreeMap<String, Value>,
    #[serde(default)]
    required: Vec<String>,
}

impl Parameters {
    /// The parameter a value like `{{github.toolsets}}` refers to, if any.
    fn referred<'v>(&self, value: &'v str) -> Option<&'v str> {
        let inner = value.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
        Some(inner.rsplit('.').next().unwrap_or(inner))
    }
}

#[derive(Deserialize)]
struct Secret {
    env: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Env {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    example: Option<String>,
}

#[derive(Deserialize, Default)]
struct Run {
    #[serde(default)]
    command: Vec<String>,
}

pub fn read(document: &Value) -> Candidate {
    let upstream_id = document.get("name").and_then(Value::as_str).unwrap_or("(unnamed)").to_string();
    let entry = serde_yaml_ng::from_value::<Server>(document.clone())
        .map_err(|e| Skip::new("server", format!("not a server.yaml document: {e}")))
        .and_then(entry);
    Candidate { upstream_id, version: None, entry }
}

fn entry(server: Server) -> Result<CatalogEntry, Skip> {
    match server.kind.as_deref() {
        None | Some("server") => {}
        Some("remote") => return remote_entry(server),
        Some(other) => return Err(Skip::new("type", format!("'{other}': neither a server nor a remote one"))),
    }
    let image = server.image.ok_or_else(|| Skip::new("image", "no image to run"))?;
    let mut entry = listed(&server.name, server.about, server.meta)?;
    entry.source = crate::catalog::ServerSource::Docker { image, registry_secret: None };
    // Docker's catalog images speak MCP on stdin and stdout.
    entry.transport = Transport::Stdio;
    entry.args = (!server.run.command.is_empty()).then_some(server.run.command);
    let secrets = server.config.secrets.into_iter().map(|s| DeclaredEnv {
        name: s.env,
        description: s.name,
        required: true,
        secret: true,
        default: None,
    });
    // A value that refers to a parameter (`{{server.param}}`) is the deployer's
    // to give, and required when the parameter is.
    let parameters = &server.config.parameters;
    let env = server.config.env.into_iter().map(|e| {
        let parameter = e.value.as_deref().and_then(|v| parameters.referred(v)).map(String::from);
        let about = parameter.as_ref().and_then(|p| parameters.properties.get(p)?.get("description")?.as_str());
        let example = e.example.map(|x| format!("e.g. {x}"));
        DeclaredEnv {
            name: e.name,
            description: about.map(String::from).or(example).unwrap_or_default(),
            required: parameter.as_ref().is_some_and(|p| parameters.required.contains(p)),
            secret: false,
            default: e.value.filter(|v| !v.contains("{{")),
        }
    });
    entry.env_vars = secrets.chain(env).collect();
    Ok(entry)
}

/// The entry as the catalog lists it: its name, words, icon, category and tags.
fn listed(name: &str, about: About, meta: Meta) -> Result<CatalogEntry, Skip> {
    let mut entry = blank_entry(name)?;
    entry.name = about.title.unwrap_or_else(|| name.to_string());
    entry.description = about.description;
    entry.icon = about.icon;
    entry.category = meta.category;
    entry.tags = meta.tags;
    Ok(entry)
}

fn remote_entry(server: Server) -> Result<CatalogEntry, Skip> {
    let remote = server.remote.ok_or_else(|| Skip::new("remote", "a remote server names its URL here"))?;
    let transport = match remote.transport_type.as_deref() {
        None | Some("streamable-http" | "http") => Transport::StreamableHttp,
        Some("sse") => Transport::Sse,
        Some(other) => return Err(Skip::new("remote.transport_type", format!("unknown transport '{other}'"))),
    };
    let auth = if !server.oauth.is_empty() {
        Some("OAuth".to_string())
    } else {
        (!remote.headers.is_empty()).then(|| "API Key".to_string())
    };
    let mut entry = listed(&server.name, server.about, server.meta)?;
    entry.source = crate::catalog::ServerSource::Remote { url: remote.url, auth };
    entry.transport = transport;
    Ok(entry)
}
