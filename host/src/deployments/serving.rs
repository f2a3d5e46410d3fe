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
}

/// Largest message a component is handed (the API reads it whole first).
const MAX_COMPONENT_MESSAGE: usize = 16 << 20;

impl Runtime {
    /// A streamable-HTTP request to a server component, answered in-process:
    /// a POSTed message (or batch) gets its answer as JSON, notifications
    /// and responses 202; a component keeps no stream (GET) nor session
    /// (DELETE) to end: 405.
    pub async fn serve_component(&self, id: &str, request: Request<Body>) -> Response<Body> {
        use axum::http::{header, Method, StatusCode};
        let json = |status: StatusCode, body: serde_json::Value| {
            let mut response = Response::new(Body::from(body.to_string()));
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().expect("a header value"));
            response
        };
        let rpc_error = |code: i64, message: &str| serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
        if request.method() != Method::POST {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response.headers_mut().insert(header::ALLOW, "POST".parse().expect("a header value"));
            return response;
        }
        let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_COMPONENT_MESSAGE).await else {
            return json(StatusCode::PAYLOAD_TOO_LARGE, rpc_error(-32600, "the message is too large"));
        };
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return json(StatusCode::BAD_REQUEST, rpc_error(-32700, "the body is not JSON"));
        };
        let messages = match &message {
            serde_json::Value::Array(batch) => batch.clone(),
            one => vec![one.clone()],
        };
        let mut answers = Vec::new();
        for message in &messages {
            match self.components.answer(id, message).await {
                Ok(Some(answer)) => answers.push(answer),
                Ok(None) => {}
                Err(e) => return json(StatusCode::BAD_GATEWAY, rpc_error(-32603, &e.to_string())),
            }
        }
        match (message.is_array(), answers.len()) {
            (_, 0) => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::ACCEPTED;
                response
            }
            (false, _) => json(StatusCode::OK, answers.remove(0)),
            (true, _) => json(StatusCode::OK, serde_json::Value::Array(answers)),
        }
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
