//! What the host keeps for the backend between calls: a deployment's
//! containers, network and how its server is reached.

use crate::exports::mcp_runtime::plugin::backend::BackendError;
use crate::mcp_runtime::plugin::container_engine::{self as engine, EngineError};
use serde::{Deserialize, Serialize};

/// What the host keeps for us between calls.
#[derive(Serialize, Deserialize)]
pub struct Handle {
    pub container: String,
    pub network: String,
    pub port: u16,
    pub mcp_path: String,
    /// The server speaks MCP on stdin and stdout, not on a port.
    #[serde(default)]
    pub stdio: bool,
    /// The server speaks the 2024-11-05 HTTP+SSE transport at `mcp_path`.
    #[serde(default)]
    pub sse: bool,
    /// A compose stack's containers, (service, id) in starting order; `container` is the MCP server's.
    #[serde(default)]
    pub services: Vec<(String, String)>,
    /// The hosts the network's egress proxy lets through, when egress is filtered.
    #[serde(default)]
    pub egress: Option<Vec<String>>,
    /// The proxy lets every public host through too, recording each (learn mode).
    #[serde(default)]
    pub learn: bool,
}

impl Handle {
    /// Every container, in starting order.
    pub fn containers(&self) -> Vec<&str> {
        match self.services.is_empty() {
            true => vec![self.container.as_str()],
            false => self.services.iter().map(|(_, id)| id.as_str()).collect(),
        }
    }

    pub fn parse(text: &str) -> Result<Handle, BackendError> {
        let mut handle: Handle =
            serde_json::from_str(text).map_err(|e| BackendError::Failed(format!("unreadable handle: {e}")))?;
        // Before contract 1.3, learn mode came as the allowlist entry `*:audit`.
        if let Some(hosts) = &mut handle.egress {
            let before = hosts.len();
            hosts.retain(|h| h != "*:audit");
            handle.learn |= hosts.len() < before;
        }
        Ok(handle)
    }

    /// Starts the network's egress proxy, or finds it running as asked.
    pub fn open_egress(&self) -> Result<(), EngineError> {
        let Some(hosts) = &self.egress else { return Ok(()) };
        open_egress(&self.network, hosts, self.learn)
    }
}

pub fn open_egress(network: &str, hosts: &[String], learn: bool) -> Result<(), EngineError> {
    match learn {
        true => engine::open_egress_learning(network, hosts).map(drop),
        false => engine::open_egress(network, hosts).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_written_before_contract_1_3_learns_from_its_audit_entry() {
        let old = r#"{"container": "c", "network": "n", "port": 8080, "mcp_path": "/mcp",
                      "egress": ["*:audit", "10.0.0.5/32"]}"#;
        let handle = Handle::parse(old).unwrap();
        assert!(handle.learn);
        assert_eq!(handle.egress, Some(vec!["10.0.0.5/32".to_string()]));
        let filtered =
            r#"{"container": "c", "network": "n", "port": 8080, "mcp_path": "/mcp", "egress": ["a.example"]}"#;
        assert!(!Handle::parse(filtered).unwrap().learn);
    }
}
