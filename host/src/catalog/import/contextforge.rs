//! ContextForge's own `mcp-catalog.yml` (`catalog_servers`): servers already
//! hosted at a URL. Until the catalog holds gateway-only entries, each is
//! reported as skipped with that reason rather than dropped in silence.

use serde_yaml_ng::Value;

use super::{Candidate, Skip};

pub fn servers(document: &Value) -> Vec<Value> {
    document.get("catalog_servers").and_then(Value::as_sequence).cloned().unwrap_or_default()
}

pub fn read(server: &Value) -> Candidate {
    let field = |key: &str| server.get(key).and_then(Value::as_str);
    let upstream_id = field("id").or(field("name")).unwrap_or("(unnamed)").to_string();
    let entry = match field("url") {
        Some(url) => {
            Err(Skip::new("url", format!("an already-hosted server ({url}): remote entries are not imported yet")))
        }
        None => Err(Skip::new("url", "no URL: a ContextForge catalog server is reached at one")),
    };
    Candidate { upstream_id, version: None, entry }
}
