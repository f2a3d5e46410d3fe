//! Serving deployments over MCP: the routes of those that serve (read from
//! memory on every request), and the bridge that speaks streamable HTTP (or
//! HTTP+SSE) for servers that speak stdio or the older transport. The API's
//! MCP routes map requests onto these.

use axum::body::Body;
use axum::http::{Request, Response};
use std::sync::Arc;
use std::time::Duration;

use crate::deployments::Runtime;
use crate::mcp::bridge::Servers;
use crate::mcp::proxy::Route;

impl Runtime {
    /// The route of a deployment that serves now.
    pub fn route(&self, id: &str) -> Option<Arc<Route>> {
        self.routes.lookup(id)
    }

    /// A streamable-HTTP request to a bridged deployment's server.
    pub async fn serve_bridged(&self, id: &str, servers: Servers<'_>, request: Request<Body>) -> Response<Body> {
        self.bridge.serve(&self.tasks, id, servers, request).await
    }

    /// An HTTP+SSE stream (2024-11-05) to a bridged deployment's server;
    /// its messages are posted to `messages_url`.
    pub async fn open_event_stream(&self, id: &str, servers: Servers<'_>, messages_url: &str) -> Response<Body> {
        self.bridge.open_event_stream(&self.tasks, id, servers, messages_url).await
    }

    /// A message for an HTTP+SSE session; the answer comes on its stream.
    pub async fn post_to_event_stream(
        &self,
        id: &str,
        servers: Servers<'_>,
        session: Option<String>,
        body: &[u8],
    ) -> Response<Body> {
        self.bridge.post_to_event_stream(&self.tasks, id, servers, session, body).await
    }

    /// Counts an MCP request by its method and outcome, timed to its answer's headers.
    pub fn count_mcp_request(&self, id: &str, method: &'static str, status: u16, took: Duration) {
        self.metrics.mcp_request(id, method, status, took);
    }

    /// A streamable-HTTP request to a server component, answered in-process.
    pub async fn serve_component(&self, id: &str, request: Request<Body>) -> Response<Body> {
        self.components.exchange(id, request).await
    }

    /// `initialize` then `tools/list` of a served component: its tool names.
    pub(super) async fn component_handshake(&self, id: &str) -> Result<Vec<String>, String> {
        let ask = |method: &str| serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}});
        self.components.answer(id, &ask("initialize")).await.map_err(|e| e.to_string())?;
        let listed = self.components.answer(id, &ask("tools/list")).await.map_err(|e| e.to_string())?;
        let tools = listed.as_ref().and_then(|l| l["result"]["tools"].as_array()).cloned().unwrap_or_default();
        Ok(tools.iter().filter_map(|t| t["name"].as_str().map(String::from)).collect())
    }

    /// `ping` to a served component.
    pub(super) async fn component_ping(&self, id: &str) -> Result<(), String> {
        let ping = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        match self.components.answer(id, &ping).await {
            Ok(Some(answer)) if answer.get("result").is_some() => Ok(()),
            Ok(answer) => Err(format!("ping answered {answer:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}
