//! MCP servers shipped as WebAssembly components, served by the `wasm`
//! backend inside the host. Every host here has its Docker backend pointed
//! at a socket where nothing answers: a component needs no container engine.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{self, TestHost};

const COMPONENT: &str = "tool_component.wasm";

/// The hex SHA-256 of a component `make guests` built.
fn sha256_of(file: &str) -> String {
    let bytes = std::fs::read(support::guest_dir().join(file)).expect("built by `make guests`");
    hex::encode(Sha256::digest(bytes))
}

/// A host with no container engine, whose profile `wasm-test` lets a
/// component mount `mount` and reach nothing.
async fn host_without_engine(mount: &std::path::Path) -> (TestHost, tempfile::TempDir) {
    let nothing = tempfile::tempdir().unwrap();
    let socket = nothing.path().join("docker.sock").display().to_string();
    let mount = mount.display().to_string();
    let host = TestHost::start(move |c| {
        c.backends.get_mut("docker").unwrap().socket = Some(socket);
        c.components.dir = Some(support::guest_dir());
        // A tenth of a CPU: a call's deadline is a second.
        c.backends.get_mut("wasm").unwrap().default_limits.cpu = Some("0.1".into());
        let mut profile = mcp_runtime::guardrails::presets()["standard"].clone();
        profile.name = "wasm-test".into();
        profile.filesystem.allowed_mounts = vec![mount];
        c.guardrails.profiles.insert("wasm-test".into(), profile);
    })
    .await;
    (host, nothing)
}

fn entry(slug: &str, source: Value) -> Value {
    json!({
        "name": "Tools in a component", "slug": slug, "source": source,
        "supported_backends": ["wasm"], "guardrails_profile": "wasm-test", "transport": "streamable-http",
        "env_vars": [{"name": "GREETING"}],
    })
}

/// The component, asking for one directory and one variable.
fn tool_source(granted_dir: &std::path::Path) -> Value {
    let permissions = format!(
        "permissions:\n  storage:\n    allow:\n      - uri: \"fs://{}/**\"\n        access: [\"read\"]\n  \
         environment:\n    allow:\n      - key: GREETING\n",
        granted_dir.display().to_string().trim_start_matches('/')
    );
    json!({"type": "wasm", "path": COMPONENT, "sha256": format!("sha256:{}", sha256_of(COMPONENT)), "permissions": permissions})
}

async fn events(host: &TestHost, id: &str, kind: &str) -> Vec<Value> {
    let (_, events) = host.get(&format!("/events?deployment={id}&type={kind}")).await;
    events.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_deploys_without_an_engine_and_answers_the_official_sdk() {
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("note.txt"), "granted").unwrap();
    let (host, _nothing) = host_without_engine(shared.path()).await;
    let (status, written) = host.post("/catalog", entry("wasm-tools", tool_source(shared.path()))).await;
    assert_eq!(status, 201, "{written}");

    let id = host.deploy(json!({"slug": "wasm-tools", "backend": "wasm", "env": {"GREETING": "hi"}})).await;
    let d = host.wait_for(&id, "connected").await;
    let tools = d["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("add")) && tools.contains(&json!("read-file")), "{d}");
    assert_eq!(d["endpoint"], format!("component://{id}"), "{d}");

    let url = host.proxy_url(&id);
    let token = Some(host.admin_token.as_str());
    assert_eq!(support::mcp_sdk::call_tool(&url, token, "add", json!({"a": 2, "b": 40})).await.trim(), "42");
    let greeting = support::mcp_sdk::call_tool(&url, token, "env-var", json!({"name": "GREETING"})).await;
    assert_eq!(greeting.trim(), "hi", "a variable the component asked for and the deploy declared");
    let note = shared.path().join("note.txt").display().to_string();
    assert_eq!(support::mcp_sdk::call_tool(&url, token, "read-file", json!({"path": note})).await.trim(), "granted");

    let served = events(&host, &id, "component.served").await.first().cloned().unwrap_or_default();
    assert_eq!(served["data"]["digest"], format!("sha256:{}", sha256_of(COMPONENT)), "{served}");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_sandbox_refuses_or_stops_is_said_and_the_next_call_is_served() {
    let shared = tempfile::tempdir().unwrap();
    let (host, _nothing) = host_without_engine(shared.path()).await;
    // It asks for a directory the profile does not allow, and a variable the deploy does not declare.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("secret.txt"), "no").unwrap();
    let (status, written) = host.post("/catalog", entry("greedy-tools", tool_source(elsewhere.path()))).await;
    assert_eq!(status, 201, "{written}");
    let id = host.deploy(json!({"slug": "greedy-tools", "backend": "wasm"})).await;
    let d = host.wait_for(&id, "connected").await;
    let warned: Vec<&str> =
        d["guardrails_warnings"].as_array().unwrap().iter().filter_map(|w| w["field"].as_str()).collect();
    assert!(warned.contains(&"filesystem.allowed_mounts") && warned.contains(&"env"), "{d}");

    let mut session = host.mcp_session(&id).await;
    let secret = elsewhere.path().join("secret.txt").display().to_string();
    let read =
        session.request("tools/call", json!({"name": "read-file", "arguments": {"path": secret}})).await.unwrap();
    assert_eq!(read["isError"], true, "a file outside the preopens: {read}");
    let home = session.call_tool("env-var", json!({"name": "HOME"})).await.unwrap();
    assert_eq!(home, "null", "no variable it was not granted");
    for (tool, arguments, why) in
        [("spin", json!({"rounds": u64::MAX}), "deadline of 1000 ms"), ("hog", json!({"megabytes": 512}), "memory")]
    {
        let stopped = session.request("tools/call", json!({"name": tool, "arguments": arguments})).await.unwrap();
        assert_eq!(stopped["isError"], true, "{stopped}");
        assert!(stopped["content"][0]["text"].as_str().unwrap().contains(why), "{stopped}");
        assert_eq!(session.call_tool("add", json!({"a": 1, "b": 1})).await.unwrap(), "2", "served after {tool}");
    }
    let stops = events(&host, &id, "component.call_stopped").await;
    let tools: Vec<&str> = stops.iter().filter_map(|e| e["data"]["tool"].as_str()).collect();
    assert_eq!(tools, ["hog", "spin"], "newest first: {stops:?}");
    // Each stop discarded an instance: the health watch sees it as a crash, and the server still answers.
    let crashed = async {
        loop {
            if !events(&host, &id, "deployment.crashed").await.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), crashed).await.expect("a crash event");
    host.wait_for(&id, "connected").await;
}
