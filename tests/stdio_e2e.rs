//! MCP servers that speak stdio, against the real Docker engine: deployed with
//! stdin open and no port, attached to by the host, and served at
//! `/servers/{id}/mcp` as streamable HTTP to any number of clients sharing
//! the one process.

mod support;

use mcp_runtime::mcp::client::McpSession;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{docker, TestHost};

async fn call(s: &mut McpSession, tool: &str, args: Value) -> String {
    s.call_tool(tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_is_bridged_to_streamable_http_for_many_clients() {
    let host = TestHost::start(|_| {}).await;
    let id = host.deploy(json!({"slug": "fixture-stdio"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert!(d["endpoint"].as_str().unwrap().starts_with("stdio://"), "{d}");
    assert!(d["tools"].as_array().unwrap().contains(&json!("echo")), "{d}");

    // Eight clients at once, each with its own session and its own answers.
    let calls = (0..8).map(|client| {
        let host = &host;
        let id = id.clone();
        async move {
            let mut s = host.mcp_session(&id).await;
            for i in 0..5 {
                let text = format!("client {client} call {i}");
                assert_eq!(call(&mut s, "echo", json!({"text": text})).await, text);
            }
            s.close().await;
        }
    });
    futures_util::future::join_all(calls).await;

    // The guardrails hold for a stdio container as for any other.
    let mut s = host.mcp_session(&id).await;
    assert!(call(&mut s, "write_file", json!({"path": "/probe"})).await.starts_with("error"), "read-only root");
    assert_eq!(call(&mut s, "capabilities", json!({})).await, "0000000000000000");
    let inspect =
        docker(&["inspect", "--format", "{{.Config.OpenStdin}} {{len .HostConfig.PortBindings}}", &container_of(&d)]);
    assert_eq!(inspect, "true 0", "stdin open, no port published");

    // The process dies mid-call: that caller gets an error, not a hang; the
    // engine restarts it, the bridge attaches again, and clients go on.
    let crashed = s.call_tool("exit_process", json!({"count": 3})).await;
    assert!(crashed.is_err(), "a call the process died in answers an error: {crashed:?}");
    let after = restarted(&host, &id, d["restart_count"].as_u64().unwrap_or(0)).await;
    assert_eq!(after["status"], "connected", "{after}");
    let mut s = host.mcp_session(&id).await;
    assert_eq!(call(&mut s, "echo", json!({"text": "after the crash"})).await, "after the crash");

    // Sessions are the bridge's own: an unknown one is refused, a closed one ends.
    let raw = reqwest::Client::new();
    let answer = raw
        .post(host.proxy_url(&id))
        .bearer_auth(&host.admin_token)
        .header("mcp-session-id", "not-a-session")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);

    host.delete(&format!("/runtimes/{id}")).await;
    assert!(host.owned_containers().is_empty(), "{:?}", host.owned_containers());
}

#[tokio::test(flavor = "multi_thread")]
async fn transports_a_backend_cannot_serve_are_refused_before_anything_is_created() {
    let host = TestHost::start(|_| {}).await;
    let (status, answer) = host.post("/runtimes/deploy", json!({"slug": "fixture-sse"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["field"], "transport", "{answer}");
    let (_, backends) = host.get("/backends").await;
    let docker = backends.as_array().unwrap().iter().find(|b| b["name"] == "docker").unwrap();
    assert_eq!(docker["capabilities"]["supports_stdio"], true, "{docker}");
    assert!(host.owned_containers().is_empty());
}

fn container_of(d: &Value) -> String {
    d["endpoint"].as_str().unwrap().trim_start_matches("stdio://").to_string()
}

/// Polls until the deployment is connected again after a restart.
async fn restarted(host: &TestHost, id: &str, before: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if d["restart_count"].as_u64().unwrap_or(0) > before && d["status"] == "connected" {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "never reconnected after the crash: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
