//! The official MCP Python SDK (`make mcp-sdk`) as a client: what a real
//! client library makes of a server the host runs or bridges.

use serde_json::Value;

/// Calls `tool` with `arguments` at the streamable-HTTP endpoint `url`
/// (with a bearer `token` when given); what the tool answered.
pub async fn call_tool(url: &str, token: Option<&str>, tool: &str, arguments: Value) -> String {
    run(url, token, tool, arguments).await
}

/// The names of the tools the server at `url` lists.
pub async fn list_tools(url: &str, token: Option<&str>) -> Vec<String> {
    let printed = run(url, token, LIST, Value::Null).await;
    serde_json::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"))
}

/// The tool name that asks the script for `tools/list` instead.
const LIST: &str = "--list";

async fn run(url: &str, token: Option<&str>, tool: &str, arguments: Value) -> String {
    let python = super::repo_root().join(".venv/mcp-sdk/bin/python3");
    assert!(python.exists(), "the MCP Python SDK is installed by `make mcp-sdk`");
    let script = r#"
import asyncio, json, os, sys
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

async def main(url, tool, arguments):
    token = os.environ.get("TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                if tool == "--list":
                    listed = await session.list_tools()
                    print(json.dumps([t.name for t in listed.tools]))
                    return
                answer = await session.call_tool(tool, json.loads(arguments))
                print(answer.content[0].text)

asyncio.run(main(*sys.argv[1:]))
"#;
    let (url, token) = (url.to_string(), token.map(String::from));
    let (tool, arguments) = (tool.to_string(), arguments.to_string());
    let output = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(python);
        command.args(["-c", script, &url, &tool, &arguments]);
        if let Some(token) = token {
            command.env("TOKEN", token);
        }
        command.output().unwrap()
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "the SDK failed: {printed}\n{}", String::from_utf8_lossy(&output.stderr));
    printed
}
