//! The MCP face of a tool component: the host answers `initialize`,
//! `ping`, `tools/list` and `tools/call` itself (the component knows
//! nothing of MCP), one JSON-RPC message at a time. A tool's own error is
//! a result with `isError`; arguments that do not fit its parameters are
//! the protocol's invalid-params error, naming the argument.

use serde_json::{json, Value};

use super::{Tool, ToolComponent, ToolError};

/// What answers the calls: a component alone, or a deployment's, in its sandbox.
pub trait ToolServer: Sync {
    fn tools(&self) -> &[Tool];
    fn call(&self, name: &str, arguments: &Value)
        -> impl std::future::Future<Output = Result<Value, ToolError>> + Send;
}

impl ToolServer for ToolComponent {
    fn tools(&self) -> &[Tool] {
        ToolComponent::tools(self)
    }

    fn call(
        &self,
        name: &str,
        arguments: &Value,
    ) -> impl std::future::Future<Output = Result<Value, ToolError>> + Send {
        ToolComponent::call(self, name, arguments)
    }
}

/// The protocol versions answered; the newest when the client asks for another.
const VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// The answer to one message; `None` for a notification.
pub async fn answer(component: &impl ToolServer, server: &str, message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let method = message.get("method").and_then(Value::as_str).unwrap_or_default();
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked.filter(|v| VERSIONS.contains(v)).unwrap_or(VERSIONS[0]);
            Ok(json!({
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": server, "version": env!("CARGO_PKG_VERSION")}
            }))
        }
        "ping" => Ok(json!({})),
        "tools/list" => {
            let tools: Vec<Value> =
                component.tools().iter().map(|t| json!({"name": t.name, "inputSchema": t.input_schema})).collect();
            Ok(json!({"tools": tools}))
        }
        "tools/call" => call(component, &params).await,
        other => Err((METHOD_NOT_FOUND, format!("no method '{other}'"))),
    };
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    })
}

/// A tool's result as the text a client reads: a string as is, anything else as JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn call(component: &impl ToolServer, params: &Value) -> Result<Value, (i64, String)> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err((INVALID_PARAMS, "params.name: the tool to call".into()));
    };
    let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
    match component.call(name, &arguments).await {
        Ok(value) => {
            let text = text_of(&value);
            Ok(
                json!({"content": [{"type": "text", "text": text}], "structuredContent": {"result": value}, "isError": false}),
            )
        }
        Err(ToolError::Invalid { field, reason }) => Err((INVALID_PARAMS, format!("arguments.{field}: {reason}"))),
        Err(e @ ToolError::UnknownTool(_)) => Err((INVALID_PARAMS, e.to_string())),
        Err(e) => Ok(json!({"content": [{"type": "text", "text": e.to_string()}], "isError": true})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> ToolComponent {
        super::super::tests::component()
    }

    async fn ask(c: &ToolComponent, method: &str, params: Value) -> Value {
        answer(c, "tools", &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})).await.unwrap()
    }

    #[tokio::test]
    async fn a_client_initializes_lists_and_calls_as_with_any_server() {
        let c = component();
        let init = ask(&c, "initialize", json!({"protocolVersion": "2025-03-26", "capabilities": {}})).await;
        assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
        assert_eq!(init["result"]["capabilities"]["tools"], json!({"listChanged": false}));
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(answer(&c, "tools", &notification).await, None);
        let list = ask(&c, "tools/list", json!({})).await;
        assert_eq!(list["result"]["tools"][0]["name"], "add");
        assert_eq!(list["result"]["tools"][0]["inputSchema"]["type"], "object");
        let called = ask(&c, "tools/call", json!({"name": "greet", "arguments": {"name": "Ada"}})).await;
        assert_eq!(called["result"]["content"][0], json!({"type": "text", "text": "Hello, Ada."}));
        assert_eq!((called["id"].as_i64(), &called["result"]["isError"]), (Some(7), &json!(false)));
    }

    #[tokio::test]
    async fn a_tools_error_is_a_result_and_bad_arguments_a_protocol_error() {
        let c = component();
        let failed = ask(&c, "tools/call", json!({"name": "split-words", "arguments": {"text": ""}})).await;
        assert_eq!(
            (&failed["result"]["isError"], &failed["result"]["content"][0]["text"]),
            (&json!(true), &json!("nothing to split"))
        );
        let stopped = ask(&c, "tools/call", json!({"name": "spin", "arguments": {"rounds": u64::MAX}})).await;
        assert_eq!(stopped["result"]["isError"], true, "{stopped}");
        let invalid = ask(&c, "tools/call", json!({"name": "add", "arguments": {"a": 1}})).await;
        assert_eq!(
            (invalid["error"]["code"].as_i64(), invalid["error"]["message"].as_str()),
            (Some(-32602), Some("arguments.b: required"))
        );
        assert_eq!(ask(&c, "resources/list", json!({})).await["error"]["code"], -32601);
    }
}
