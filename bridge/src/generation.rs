//! The two generations of the MCP protocol the host speaks with clients.
//!
//! Up to 2025-11-25 a client opens a session (`initialize`, `Mcp-Session-Id`).
//! From 2026-07-28 every request stands alone: the protocol version and client
//! information travel in each request, servers are discovered with
//! `server/discover`, and `Mcp-Method` / `Mcp-Name` headers repeat what the
//! body says so that gateways can route without parsing it — which obliges a
//! gateway that does parse it to check that the two agree.

use axum::http::HeaderMap;
use base64::Engine;
use serde_json::{json, Value};

/// The first stateless protocol version.
pub const STATELESS: &str = "2026-07-28";
/// The JSON-RPC error code for headers that do not match the body.
pub const HEADER_MISMATCH: i64 = -32020;

const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// Whether a request is of the stateless generation (its protocol version
/// header is 2026-07-28 or later).
pub fn is_stateless(headers: &HeaderMap) -> bool {
    headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|version| version >= STATELESS)
}

/// Checks `Mcp-Method` and `Mcp-Name` against a stateless request's body.
pub fn check_headers(headers: &HeaderMap, message: &Value) -> Result<(), String> {
    let Some(method) = message.get("method").and_then(Value::as_str) else { return Ok(()) };
    let header = |name: &str| headers.get(name).map(|v| v.to_str().map_err(|_| format!("{name} is not text")));
    match header(METHOD_HEADER).transpose()? {
        None => return Err("missing required Mcp-Method header".into()),
        Some(value) if value != method => {
            return Err(format!("Mcp-Method header `{value}` does not match body method `{method}`"));
        }
        Some(_) => {}
    }
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        "tasks/get" | "tasks/update" | "tasks/cancel" => "taskId",
        _ => return Ok(()),
    };
    let Some(expected) = message.pointer(&format!("/params/{key}")).and_then(Value::as_str) else { return Ok(()) };
    match header(NAME_HEADER).transpose()? {
        None => Err(format!("missing required Mcp-Name header for `{method}`")),
        Some(raw) => match decode(raw) {
            Some(name) if name == expected => Ok(()),
            Some(name) => Err(format!("Mcp-Name header `{name}` does not match body value `{expected}`")),
            None => Err("Mcp-Name header is not valid Base64".into()),
        },
    }
}

/// A header value, unwrapped from `=?base64?…?=` when it is wrapped.
fn decode(raw: &str) -> Option<String> {
    match raw.strip_prefix("=?base64?").and_then(|inner| inner.strip_suffix("?=")) {
        Some(inner) => String::from_utf8(base64::prelude::BASE64_STANDARD.decode(inner).ok()?).ok(),
        None => Some(raw.to_string()),
    }
}

/// A `server/discover` result built from a server's `initialize` result, for
/// stateless clients of a server of the session generation.
pub fn discover_result(init: &Value) -> Value {
    let mut result = json!({
        "resultType": "complete",
        "supportedVersions": [init["protocolVersion"].clone(), json!(STATELESS)],
        "capabilities": init["capabilities"].clone(),
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": {"io.modelcontextprotocol/serverInfo": init["serverInfo"].clone()},
    });
    if let Some(instructions) = init.get("instructions").filter(|i| i.is_string()) {
        result["instructions"] = instructions.clone();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn headers_must_say_what_the_body_says() {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}});
        let wrapped = format!("=?base64?{}?=", base64::prelude::BASE64_STANDARD.encode("echo"));
        assert!(check_headers(&headers(&[("mcp-method", "tools/call"), ("mcp-name", "echo")]), &call).is_ok());
        assert!(check_headers(&headers(&[("mcp-method", "tools/call"), ("mcp-name", &wrapped)]), &call).is_ok());
        for (given, why) in [
            (headers(&[("mcp-name", "echo")]), "missing required Mcp-Method"),
            (headers(&[("mcp-method", "tools/list"), ("mcp-name", "echo")]), "does not match body method"),
            (headers(&[("mcp-method", "tools/call")]), "missing required Mcp-Name"),
            (headers(&[("mcp-method", "tools/call"), ("mcp-name", "delete_all")]), "does not match body value"),
        ] {
            assert!(check_headers(&given, &call).unwrap_err().contains(why), "{why}");
        }
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        assert!(check_headers(&headers(&[("mcp-method", "tools/list")]), &list).is_ok(), "no name to check");
        assert!(is_stateless(&headers(&[("mcp-protocol-version", "2026-07-28")])));
        assert!(!is_stateless(&headers(&[("mcp-protocol-version", "2025-11-25")])));
        assert!(!is_stateless(&HeaderMap::new()));
    }
}
