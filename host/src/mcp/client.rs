//! Just enough of an MCP streamable-HTTP client to prove a deployed server
//! answers: `initialize`, `notifications/initialized`, then any request.
//! Answers may come as JSON or as a server-sent event stream. A server of the
//! stateless generation (2026-07-28), which refuses `initialize`, is spoken to
//! in its own terms: `server/discover`, then requests that each carry the
//! protocol version and the `Mcp-Method` / `Mcp-Name` headers.

use serde_json::{json, Value};

use super::generation;

pub use mcp_bridge::PROTOCOL_VERSION;
/// Every request to a server has a deadline: one that accepts and never
/// answers must not stall whoever asked (the health watch, a deploy).
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{method}: HTTP {status}: {body}")]
    Status { method: String, status: u16, body: String },
    #[error("{method}: {reason}")]
    Protocol { method: String, reason: String },
    #[error("{method}: server error {code}: {message}")]
    Rpc { method: String, code: i64, message: String },
}

pub struct McpSession {
    http: reqwest::Client,
    url: String,
    /// Sent as `Authorization: Bearer` (e.g. to the runtime's own proxy).
    bearer: Option<String>,
    session: Option<String>,
    /// The server speaks only the stateless generation.
    stateless: bool,
    next_id: u64,
    deadline: std::time::Duration,
    pub server_info: Value,
}

impl McpSession {
    /// Opens a session: `initialize` and the `initialized` notification.
    pub async fn connect(http: &reqwest::Client, url: &str) -> Result<McpSession, McpError> {
        Self::connect_with(http, url, None).await
    }

    /// Like `connect`, authenticating every request with `bearer`.
    pub async fn connect_with(
        http: &reqwest::Client,
        url: &str,
        bearer: Option<String>,
    ) -> Result<McpSession, McpError> {
        Self::open(http, url, bearer, REQUEST_DEADLINE).await
    }

    /// Like `connect_with`, with `deadline` for each request instead of `REQUEST_DEADLINE`.
    pub async fn open(
        http: &reqwest::Client,
        url: &str,
        bearer: Option<String>,
        deadline: std::time::Duration,
    ) -> Result<McpSession, McpError> {
        let mut session = McpSession {
            http: http.clone(),
            url: url.into(),
            bearer,
            session: None,
            stateless: false,
            next_id: 1,
            deadline,
            server_info: Value::Null,
        };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-runtime", "version": env!("CARGO_PKG_VERSION")},
        });
        match session.request("initialize", params).await {
            Ok(info) => {
                session.server_info = info;
                session.notify("notifications/initialized").await?;
            }
            // Refused as a method, or as a request of an older generation.
            Err(McpError::Rpc { .. } | McpError::Status { status: 400 | 404 | 405, .. }) => {
                session.stateless = true;
                session.server_info = session.request("server/discover", json!({})).await?;
            }
            Err(e) => return Err(e),
        }
        Ok(session)
    }

    pub async fn request(&mut self, method: &str, mut params: Value) -> Result<Value, McpError> {
        let id = self.next_id;
        self.next_id += 1;
        if self.stateless {
            // Every stateless request says who asks and in which protocol.
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": generation::STATELESS,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "mcp-runtime", "version": env!("CARGO_PKG_VERSION")},
            });
        }
        let response =
            self.post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}), method).await?;
        if let Some(sid) = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            self.session = Some(sid.to_string());
        }
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        // The deadline set on the request covers reading its body too.
        let text = response.text().await.map_err(|e| protocol(method, e.to_string()))?;
        let message = if is_stream { find_in_event_stream(&text, id) } else { serde_json::from_str(&text).ok() };
        let message =
            message.ok_or_else(|| protocol(method, format!("no answer to request {id} in: {}", excerpt(&text))))?;
        if let Some(error) = message.get("error") {
            return Err(McpError::Rpc {
                method: method.into(),
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error.get("message").and_then(Value::as_str).unwrap_or("").into(),
            });
        }
        message.get("result").cloned().ok_or_else(|| protocol(method, "answer has no result".into()))
    }

    async fn notify(&mut self, method: &str) -> Result<(), McpError> {
        self.post(json!({"jsonrpc": "2.0", "method": method}), method).await.map(drop)
    }

    async fn post(&self, body: Value, method: &str) -> Result<reqwest::Response, McpError> {
        let version = if self.stateless { generation::STATELESS } else { PROTOCOL_VERSION };
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", version)
            .timeout(self.deadline);
        if self.stateless {
            request = request.header("mcp-method", method);
            if let Some(name) = body.pointer("/params/name").and_then(Value::as_str) {
                request = request.header("mcp-name", name);
            }
        }
        let mut request = request.json(&body);
        if let Some(sid) = &self.session {
            request = request.header(SESSION_HEADER, sid);
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response =
            request.send().await.map_err(|e| McpError::Unreachable { url: self.url.clone(), reason: e.to_string() })?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            return Err(McpError::Status { method: method.into(), status, body: excerpt(&body) });
        }
        Ok(response)
    }

    /// Names of the server's tools.
    pub async fn tool_names(&mut self) -> Result<Vec<String>, McpError> {
        let result = self.request("tools/list", json!({})).await?;
        let tools = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| protocol("tools/list", "no tools array".into()))?;
        Ok(tools.iter().filter_map(|t| t.get("name")?.as_str().map(String::from)).collect())
    }

    /// Calls a tool; answers the text of its content.
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<String, McpError> {
        let result = self.request("tools/call", json!({"name": name, "arguments": arguments})).await?;
        let content = result.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(content.iter().filter_map(|c| c.get("text")?.as_str()).collect::<Vec<_>>().join("\n"))
    }

    /// The endpoint the session is with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Ends the session on the server (best effort).
    pub async fn close(self) {
        if let Some(sid) = &self.session {
            let mut request = self.http.delete(&self.url).header(SESSION_HEADER, sid).timeout(self.deadline);
            if let Some(token) = &self.bearer {
                request = request.bearer_auth(token);
            }
            let _ = request.send().await;
        }
    }
}

fn find_in_event_stream(text: &str, id: u64) -> Option<Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m.get("id").and_then(Value::as_u64) == Some(id))
}

fn protocol(method: &str, reason: String) -> McpError {
    McpError::Protocol { method: method.into(), reason }
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A server that accepts and never answers fails the call at its deadline.
    #[tokio::test]
    async fn a_silent_server_fails_at_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let start = Instant::now();
        let outcome = McpSession::open(&reqwest::Client::new(), &url, None, Duration::from_millis(300)).await;
        assert!(matches!(outcome, Err(McpError::Unreachable { .. })), "{:?}", outcome.err());
        assert!(start.elapsed() < Duration::from_secs(5), "waited {:?}", start.elapsed());
        held.abort();
    }
}
