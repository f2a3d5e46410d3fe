//! The bridge's HTTP answers: JSON-RPC errors, event streams, and the
//! refusals of what is not one message or not a session.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

/// What a client sent that is not one JSON-RPC message.
pub(super) enum BadMessage {
    Batch,
    NotJson,
}

impl BadMessage {
    pub(super) fn response(self) -> Response<Body> {
        match self {
            BadMessage::Batch => rpc_error(StatusCode::BAD_REQUEST, Value::Null, -32600, "batches are not supported"),
            BadMessage::NotJson => rpc_error(StatusCode::BAD_REQUEST, Value::Null, -32700, "not a JSON-RPC message"),
        }
    }
}

pub(super) fn parse_message(body: &[u8]) -> Result<Value, BadMessage> {
    match serde_json::from_slice(body) {
        Ok(m @ Value::Object(_)) => Ok(m),
        Ok(Value::Array(_)) => Err(BadMessage::Batch),
        _ => Err(BadMessage::NotJson),
    }
}

pub(super) enum NoSession {
    Missing,
    Unknown,
}

impl NoSession {
    pub(super) fn response(self) -> Response<Body> {
        match self {
            NoSession::Missing => http_error(StatusCode::BAD_REQUEST, "Mcp-Session-Id is required after initialize"),
            NoSession::Unknown => http_error(StatusCode::NOT_FOUND, "no such session: initialize again"),
        }
    }
}

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    json_text_response(status, body.to_string().into_bytes())
}

pub(super) fn json_text_response(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(json));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(super) fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response<Body> {
    json_response(status, &rpc_error_body(id, code, message))
}

pub(super) fn rpc_error_body(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

pub(super) fn sse_event(message: &Value) -> Result<String, std::convert::Infallible> {
    Ok(format!("event: message\ndata: {message}\n\n"))
}

pub(super) fn sse_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(super) fn http_error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({"error": message}))
}

pub(super) fn accepted() -> Response<Body> {
    empty(StatusCode::ACCEPTED)
}

pub(super) fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}
