//! ContextForge's own `mcp-catalog.yml` (`catalog_servers`): servers already
//! hosted at a URL, each a remote entry. Its `transport` is read as
//! ContextForge reads it: named, or told from the URL (`/sse` is SSE, `/mcp`
//! streamable HTTP, SSE otherwise); WebSocket servers are skipped.

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{blank_entry, Candidate, Skip};
use crate::catalog::{CatalogEntry, ServerSource, Transport};

#[derive(Deserialize)]
struct Server {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    category: Option<String>,
    url: String,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    auth_type: Option<String>,
    #[serde(default)]
    requires_api_key: bool,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    logo_url: Option<String>,
    #[serde(default)]
    documentation_url: Option<String>,
}

pub fn servers(document: &Value) -> Vec<Value> {
    document.get("catalog_servers").and_then(Value::as_sequence).cloned().unwrap_or_default()
}

pub fn read(server: &Value) -> Candidate {
    let field = |key: &str| server.get(key).and_then(Value::as_str);
    let upstream_id = field("id").or(field("name")).unwrap_or("(unnamed)").to_string();
    let entry = serde_yaml_ng::from_value::<Server>(server.clone())
        .map_err(|e| Skip::new("server", format!("not a ContextForge catalog server: {e}")))
        .and_then(entry);
    Candidate { upstream_id, version: None, entry }
}

fn entry(server: Server) -> Result<CatalogEntry, Skip> {
    let transport = transport_of(server.transport.as_deref(), &server.url)?;
    let auth = match server.auth_type.as_deref() {
        None | Some("Open") if !server.requires_api_key => None,
        None | Some("Open") => Some("API Key".to_string()),
        Some(kind) => Some(kind.to_string()),
    };
    let mut entry = blank_entry(&server.id)?;
    entry.name = server.name.unwrap_or(server.id);
    entry.description = server.description;
    entry.category = server.category;
    entry.tags = server.tags;
    entry.icon = server.logo_url;
    entry.documentation_url = server.documentation_url;
    entry.source = ServerSource::Remote { url: server.url, auth };
    entry.transport = transport;
    Ok(entry)
}

fn transport_of(named: Option<&str>, url: &str) -> Result<Transport, Skip> {
    let websocket = || Skip::new("transport", "a WebSocket server: the runtime speaks streamable HTTP and SSE");
    match named.map(str::to_ascii_uppercase).as_deref() {
        Some("SSE") => Ok(Transport::Sse),
        Some("STREAMABLEHTTP" | "STREAMABLE-HTTP" | "HTTP") => Ok(Transport::StreamableHttp),
        Some("WEBSOCKET") => Err(websocket()),
        Some(other) => Err(Skip::new("transport", format!("unknown transport '{other}'"))),
        None if url.starts_with("ws://") || url.starts_with("wss://") => Err(websocket()),
        None => {
            let path = url.split_once("://").map_or(url, |(_, rest)| rest).trim_end_matches('/');
            Ok(if path.ends_with("/mcp") || path.contains("/mcp/") {
                Transport::StreamableHttp
            } else {
                Transport::Sse
            })
        }
    }
}
