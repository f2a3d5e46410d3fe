//! A streamable-HTTP MCP server compiled to a `wasi:http/proxy` component,
//! the way Spin or wasmcp servers are: it answers `initialize`, `ping`,
//! `tools/list` and `tools/call` (`echo`, `add`) itself, one JSON message
//! per POST, and writes a line to stderr for each tool call.

use serde_json::{json, Value};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Server;

impl Guest for Server {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        if !matches!(request.method(), Method::Post) {
            return respond(out, 405, None);
        }
        let message: Value = serde_json::from_slice(&read_body(request)).unwrap_or(Value::Null);
        match answer(&message) {
            Some(answer) => respond(out, 200, Some(answer.to_string().into_bytes())),
            None => respond(out, 202, None),
        }
    }
}

fn answer(message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let params = &message["params"];
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => json!({
            "protocolVersion": params["protocolVersion"].as_str().unwrap_or("2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "http-component", "version": "1.0.0"},
        }),
        "ping" => json!({}),
        "tools/list" => json!({"tools": [
            {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
            {"name": "add", "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}},
        ]}),
        "tools/call" => {
            let arguments = &params["arguments"];
            let text = match params["name"].as_str() {
                Some("echo") => arguments["text"].as_str().unwrap_or_default().to_string(),
                Some("add") => {
                    (arguments["a"].as_i64().unwrap_or(0) + arguments["b"].as_i64().unwrap_or(0)).to_string()
                }
                other => {
                    let error = json!({"code": -32602, "message": format!("no tool {other:?}")});
                    return Some(json!({"jsonrpc": "2.0", "id": id, "error": error}));
                }
            };
            eprintln!("called {}", params["name"]);
            json!({"content": [{"type": "text", "text": text}], "isError": false})
        }
        other => {
            let error = json!({"code": -32601, "message": format!("no method {other}")});
            return Some(json!({"jsonrpc": "2.0", "id": id, "error": error}));
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn read_body(request: IncomingRequest) -> Vec<u8> {
    let Ok(body) = request.consume() else { return Vec::new() };
    let mut bytes = Vec::new();
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(64 * 1024) {
            bytes.extend_from_slice(&chunk);
        }
    }
    IncomingBody::finish(body);
    bytes
}

fn respond(out: ResponseOutparam, status: u16, body: Option<Vec<u8>>) {
    let headers = Fields::new();
    if body.is_some() {
        let _ = headers.set("content-type", &[b"application/json".to_vec()]);
    }
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let outgoing = response.body().expect("the response's body");
    ResponseOutparam::set(out, Ok(response));
    if let Some(bytes) = body {
        let stream = outgoing.write().expect("the body's stream");
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).expect("written");
        }
    }
    OutgoingBody::finish(outgoing, None).expect("finished");
}

wasip2::http::proxy::export!(Server);
