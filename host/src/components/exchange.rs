//! MCP with a served component, in-process: a streamable-HTTP request from
//! the data path (`exchange`), or one message from the host itself — the
//! handshake, a health ping (`answer`). A tool component's MCP is answered
//! by the host (`wasm_tools::mcp`); a `wasi:http` server gets the request
//! itself and answers it as it would anywhere.

use axum::body::Body;
use axum::http::{header, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

use super::{ComponentError, Served, Server, ServerComponents};

/// Largest message handed to a component (the API reads it whole first).
const MAX_MESSAGE: usize = 16 << 20;
/// Where a `wasi:http` server is told the request came to.
const AUTHORITY: &str = "component.mcp-runtime.local";

impl ServerComponents {
    async fn served(&self, deployment_id: &str) -> Result<Arc<Served>, ComponentError> {
        let served = self.serving(deployment_id).await?;
        served.ok_or_else(|| ComponentError::NotFound(format!("'{deployment_id}' is stopped")))
    }

    /// A streamable-HTTP request to a deployment's component.
    pub async fn exchange(&self, deployment_id: &str, request: Request<Body>) -> Response<Body> {
        let served = match self.served(deployment_id).await {
            Ok(served) => served,
            Err(e) => return json(StatusCode::BAD_GATEWAY, rpc_error(-32603, &e.to_string())),
        };
        match &served.server {
            Server::Http(http) => {
                let mut forwarded = request;
                *forwarded.uri_mut() = format!("http://{AUTHORITY}/mcp").parse().expect("a URI");
                let recorder = served.clone();
                let done = move |outcome: Result<(), _>, report| recorder.record("(request)", &outcome, &report);
                match http.handle(&served.sandbox, forwarded, done).await {
                    Ok(response) => response,
                    Err(e) => json(StatusCode::BAD_GATEWAY, rpc_error(-32603, &e.to_string())),
                }
            }
            Server::Tools(_) => answer_tools(&served, deployment_id, request).await,
        }
    }

    /// One MCP message for a deployment's component; `None` for a notification.
    pub async fn answer(&self, deployment_id: &str, message: &Value) -> Result<Option<Value>, ComponentError> {
        let served = self.served(deployment_id).await?;
        if let Server::Tools(_) = &served.server {
            return Ok(crate::wasm_tools::mcp::answer(served.as_ref(), deployment_id, message).await);
        }
        let request = Request::post("/mcp")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(Body::from(message.to_string()))
            .expect("a request");
        let response = self.exchange(deployment_id, request).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_MESSAGE)
            .await
            .map_err(|e| ComponentError::Failed(format!("reading the answer: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        if status == StatusCode::ACCEPTED || text.trim().is_empty() && status.is_success() {
            return Ok(None);
        }
        // JSON, or the first `data:` of an event stream.
        let data = text.lines().find_map(|l| l.strip_prefix("data:")).unwrap_or(&text);
        match serde_json::from_str(data.trim()) {
            Ok(answer) => Ok(Some(answer)),
            Err(_) => {
                Err(ComponentError::Failed(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())))
            }
        }
    }
}

/// A tool component's streamable HTTP: a POSTed message (or batch) gets its
/// answer as JSON, notifications and responses 202; it keeps no stream (GET)
/// nor session (DELETE) to end: 405.
async fn answer_tools(served: &Served, deployment_id: &str, request: Request<Body>) -> Response<Body> {
    if request.method() != Method::POST {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response.headers_mut().insert(header::ALLOW, "POST".parse().expect("a header value"));
        return response;
    }
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_MESSAGE).await else {
        return json(StatusCode::PAYLOAD_TOO_LARGE, rpc_error(-32600, "the message is too large"));
    };
    let Ok(message) = serde_json::from_slice::<Value>(&bytes) else {
        return json(StatusCode::BAD_REQUEST, rpc_error(-32700, "the body is not JSON"));
    };
    let messages = match &message {
        Value::Array(batch) => batch.as_slice(),
        one => std::slice::from_ref(one),
    };
    let mut answers = Vec::new();
    for message in messages {
        answers.extend(crate::wasm_tools::mcp::answer(served, deployment_id, message).await);
    }
    match (message.is_array(), answers.len()) {
        (_, 0) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::ACCEPTED;
            response
        }
        (false, _) => json(StatusCode::OK, answers.remove(0)),
        (true, _) => json(StatusCode::OK, Value::Array(answers)),
    }
}

fn json(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().expect("a header value"));
    response
}

fn rpc_error(code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
}
