//! MCP servers that do not speak streamable HTTP, against the real Docker
//! engine: stdio servers, served over HTTP by the host's bridge made the
//! container's entrypoint (or, with the backend's `stdio: attach` and for
//! each session's own server, deployed with stdin open and attached to by the
//! host), and 2024-11-05 HTTP+SSE servers; all served at
//! `/servers/{id}/mcp` as streamable HTTP to any number of clients sharing
//! the one server.

use crate::support;

use mcp_runtime::mcp::client::McpSession;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{container_of, docker, gateway_of, Sentinel, TestHost};

/// The deployment's `transport` warning: which bridge serves its stdio server.
fn how_stdio_is_served(d: &Value) -> &str {
    let warnings = d["guardrails_warnings"].as_array().expect("warnings");
    let how = warnings.iter().find(|w| w["field"] == "transport").expect("how stdio is served");
    how["message"].as_str().unwrap()
}

async fn call(s: &mut McpSession, tool: &str, args: Value) -> String {
    s.call_tool(tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_is_bridged_to_streamable_http_for_many_clients() {
    let mut host = TestHost::start(|_| {}).await;
    let id = host.deploy(json!({"slug": "fixture-stdio"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert!(d["tools"].as_array().unwrap().contains(&json!("echo")), "{d}");
    // The host's bridge is the container's entrypoint, read-only; the host speaks HTTP to it.
    assert!(d["endpoint"].as_str().unwrap().ends_with(":8080/mcp"), "{d}");
    assert!(how_stdio_is_served(&d).contains("mcp-stdio-bridge inside the container"), "{d}");
    let container = container_of(&id);
    let entrypoint =
        docker(&["inspect", "--format", "{{index .Config.Entrypoint 0}} {{.Config.OpenStdin}}", &container]);
    assert_eq!(entrypoint, "/.mcp-runtime/mcp-stdio-bridge false");

    // Eight clients at once, each with its own session and its own answers.
    clients_echo_at_once(&host, &id, 8).await;

    // A host restart loses no stdio deployment: the bridge attaches again.
    host.stop().await;
    host.resume().await;
    host.wait_for(&id, "connected").await;

    // The guardrails hold for a stdio container as for any other.
    let mut s = host.mcp_session(&id).await;
    let sentinel = Sentinel::start().await;
    let host_address = format!("{}:{}", gateway_of(&id), sentinel.port);
    assert!(call(&mut s, "connect", json!({"address": host_address})).await.starts_with("error"), "egress off");
    assert_eq!(sentinel.hits(), 0, "the stdio server reached the host");
    assert!(call(&mut s, "write_file", json!({"path": "/probe"})).await.starts_with("error"), "read-only root");
    assert_eq!(call(&mut s, "capabilities", json!({})).await, "0000000000000000");
    let overwrite = call(&mut s, "write_file", json!({"path": "/.mcp-runtime/mcp-stdio-bridge"})).await;
    assert!(overwrite.starts_with("error"), "the server cannot replace its bridge: {overwrite}");
    let inspect =
        docker(&["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{len .HostConfig.PortBindings}}", &container]);
    assert_eq!(inspect, "true 0", "read-only root, no port published");

    // What the server writes that is not a message is contained; nobody notices.
    assert_eq!(call(&mut s, "emit_garbage", json!({})).await, "emitted");
    assert_eq!(call(&mut s, "echo", json!({"text": "still here"})).await, "still here");
    // A request the server makes of its client gets an error, not a hang.
    let refused = call(&mut s, "ask_client", json!({})).await;
    assert!(refused.starts_with("client refused") && refused.contains("roots/list"), "{refused}");

    // Notifications fan out to every listening session; progress only to its requester.
    let (a, b) = (raw_session(&host, &id).await, raw_session(&host, &id).await);
    let (mut listen_a, mut listen_b) = (listen(&host, &id, &a).await, listen(&host, &id, &b).await);
    assert_eq!(call(&mut s, "announce", json!({})).await, "notified");
    for listener in [&mut listen_a, &mut listen_b] {
        let seen = read_until(listener, "notifications/tools/list_changed").await;
        assert!(seen.contains("notifications/tools/list_changed"), "{seen}");
    }
    let request = json!({"jsonrpc": "2.0", "id": "p1", "method": "tools/call",
                         "params": {"name": "progress", "arguments": {"count": 3}, "_meta": {"progressToken": "mine"}}});
    let mut streamed = post_as(&host, &id, &a, &request).await;
    let body = read_until(&mut streamed, "\"done\"").await;
    assert_eq!(body.matches("\"progressToken\":\"mine\"").count(), 3, "the requester's own token: {body}");
    assert!(body.contains("\"id\":\"p1\""), "the answer under the client's id: {body}");
    let elsewhere = read_for(&mut listen_b, std::time::Duration::from_millis(500)).await;
    assert!(!elsewhere.contains("progress"), "progress went to another session: {elsewhere}");

    // A request the server makes of its client reaches the session that caused it, on its
    // event stream; its answer goes back to the server.
    let asking = {
        let (host_base, token, id, a) = (host.base.clone(), host.admin_token.clone(), id.clone(), a.clone());
        tokio::spawn(async move {
            let request = json!({"jsonrpc": "2.0", "id": "r1", "method": "tools/call",
                                 "params": {"name": "ask_client", "arguments": {}}});
            let answer = reqwest::Client::new()
                .post(format!("{host_base}/servers/{id}/mcp"))
                .bearer_auth(token)
                .header("mcp-session-id", a)
                .header("accept", "application/json")
                .json(&request)
                .send()
                .await
                .unwrap();
            answer.text().await.unwrap()
        })
    };
    let asked = read_until(&mut listen_a, "roots/list").await;
    let request: Value = asked
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .find(|m: &Value| m["method"] == "roots/list")
        .unwrap_or_else(|| panic!("no roots/list on the asking session's stream: {asked}"));
    let roots =
        json!({"jsonrpc": "2.0", "id": request["id"], "result": {"roots": [{"uri": "file:///tmp", "name": "tmp"}]}});
    assert_eq!(post_as(&host, &id, &a, &roots).await.status(), StatusCode::ACCEPTED);
    let answered = asking.await.unwrap();
    assert!(answered.contains("1 roots"), "{answered}");
    assert!(!read_for(&mut listen_b, std::time::Duration::from_millis(300)).await.contains("roots/list"));

    // A server that stops answering fails its health check, an MCP ping over
    // the link; one failure is not yet `unhealthy` (three in a row are), and
    // the check passes again once the server answers.
    // (The freezing call itself outlives the client's 10 s deadline: its outcome is not the point.)
    let frozen = {
        let mut f = host.mcp_session(&id).await;
        tokio::spawn(async move { f.call_tool("freeze", json!({"count": 12})).await })
    };
    let failing = wait_until(&host, &id, |d| d["health"]["last_check"]["healthy"] == false).await;
    assert_eq!(failing["status"], "connected", "{failing}");
    assert!(failing["health"]["last_check"]["error"].is_string(), "{failing}");
    wait_until(&host, &id, |d| d["health"]["last_check"]["healthy"] == true).await;
    let _ = frozen.await;
    assert_eq!(call(&mut s, "echo", json!({"text": "thawed"})).await, "thawed");

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

    // Past its restarts the server is in error, saying how it ended and its last words.
    let ended = crash_until_error(&host, &id).await;
    let why = ended["status_message"].as_str().unwrap_or_default();
    assert!(why.contains("exited with code 3") && why.contains("exiting with code 3 as asked"), "{ended}");

    host.delete(&format!("/runtimes/{id}")).await;
    assert!(host.owned_containers().is_empty(), "{:?}", host.owned_containers());
}

/// The backend's `stdio: attach`: the host links to the container's stdin and
/// stdout through the engine, and says so; the same clients get the same answers.
#[tokio::test(flavor = "multi_thread")]
async fn with_stdio_attach_the_host_links_to_the_container_through_the_engine() {
    let mut host = TestHost::start(|c| {
        let docker = c.backends.get_mut("docker").expect("the docker backend");
        docker.settings.insert("stdio".into(), json!("attach"));
    })
    .await;
    let id = host.deploy(json!({"slug": "fixture-stdio"})).await;
    let d = host.wait_for(&id, "connected").await;
    let container = d["endpoint"].as_str().unwrap().strip_prefix("stdio://").expect("attached").to_string();
    assert!(how_stdio_is_served(&d).contains("attach stream"), "{d}");
    let inspect =
        docker(&["inspect", "--format", "{{.Config.OpenStdin}} {{len .HostConfig.PortBindings}}", &container]);
    assert_eq!(inspect, "true 0", "stdin open, no port published");
    clients_echo_at_once(&host, &id, 8).await;

    // A host restart attaches again.
    host.stop().await;
    host.resume().await;
    host.wait_for(&id, "connected").await;
    clients_echo_at_once(&host, &id, 2).await;
    host.delete(&format!("/runtimes/{id}")).await;
    assert!(host.owned_containers().is_empty(), "{:?}", host.owned_containers());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_server_is_reached_as_streamable_http() {
    let host = TestHost::start(|_| {}).await;
    let (_, backends) = host.get("/backends").await;
    let docker = backends.as_array().unwrap().iter().find(|b| b["name"] == "docker").unwrap();
    assert_eq!(docker["capabilities"]["supports_stdio"], true, "{docker}");

    let id = host.deploy(json!({"slug": "fixture-sse"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert!(d["endpoint"].as_str().unwrap().starts_with("sse+http://"), "{d}");
    assert!(d["tools"].as_array().unwrap().contains(&json!("echo")), "{d}");
    clients_echo_at_once(&host, &id, 4).await;

    // A client that speaks only HTTP+SSE reaches it through the host's own /sse.
    let http = reqwest::Client::new();
    let mut events = http
        .get(format!("{}/servers/{id}/sse", host.base))
        .bearer_auth(&host.admin_token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let opening = read_until(&mut events, "session=").await;
    let endpoint =
        opening.lines().find_map(|l| l.strip_prefix("data: ")).expect("an endpoint event").trim().to_string();
    assert!(endpoint.starts_with(&format!("/servers/{id}/messages?session=")), "{opening}");
    let post = |message: Value| {
        http.post(format!("{}{endpoint}", host.base)).bearer_auth(&host.admin_token).json(&message).send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05",
                      "capabilities": {}, "clientInfo": {"name": "sse-only", "version": "1"}}});
    assert_eq!(post(init).await.unwrap().status(), StatusCode::ACCEPTED);
    assert!(read_until(&mut events, "protocolVersion").await.contains("\"id\":1"));
    let echo = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "through the host's sse"}}});
    assert_eq!(post(echo).await.unwrap().status(), StatusCode::ACCEPTED);
    let answer = read_until(&mut events, "through the host's sse").await;
    assert!(answer.contains("\"id\":2"), "{answer}");
    drop(events);

    // Clients of the stateless generation (2026-07-28) need no session; their
    // Mcp-Method and Mcp-Name headers must say what the body says.
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let discover = json!({"jsonrpc": "2.0", "id": "d", "method": "server/discover", "params": {"_meta": meta}});
    let (status, found) = stateless(&host, &id, &discover, "server/discover", None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(found["result"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")), "{found}");
    assert!(found["result"]["capabilities"]["tools"].is_object(), "{found}");
    let echo = json!({"jsonrpc": "2.0", "id": "e", "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "stateless"}, "_meta": meta}});
    let (status, answer) = stateless(&host, &id, &echo, "tools/call", Some("echo")).await;
    assert_eq!(
        (status, answer["result"]["content"][0]["text"].as_str()),
        (StatusCode::OK, Some("stateless")),
        "{answer}"
    );
    let (status, refused) = stateless(&host, &id, &echo, "tools/call", Some("delete_everything")).await;
    assert_eq!((status, refused["error"]["code"].as_i64()), (StatusCode::BAD_REQUEST, Some(-32020)), "{refused}");

    host.delete(&format!("/runtimes/{id}")).await;
    assert!(host.owned_containers().is_empty());
}

/// A server of the stateless generation only (it refuses `initialize`) is
/// proven with `server/discover` and `tools/list`, and reached through the proxy.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_of_the_stateless_generation_only_is_connected_and_proxied() {
    let host = TestHost::start(|_| {}).await;
    let id = host.deploy(json!({"slug": "fixture-stateless"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert_eq!(d["tools"], json!(["echo"]), "{d}");
    let mut s = host.mcp_session(&id).await;
    assert_eq!(call(&mut s, "echo", json!({"text": "no session needed"})).await, "no session needed");
    host.delete(&format!("/runtimes/{id}")).await;
}

/// `session_mode: per-session`: a server of its own for each MCP session,
/// under the same guardrails, removed when the session ends, idles out, or
/// the deployment stops or goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_per_session_deployment_runs_a_container_for_each_session() {
    let host = TestHost::start(|c| c.api.mcp_session_idle_seconds = 1).await;
    let id = host.deploy(json!({"slug": "fixture-per-session"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert!(d["tools"].as_array().unwrap().contains(&json!("recall")), "{d}");
    assert_eq!(d["request"]["session_mode"], "per-session", "{d}");
    assert!(how_stdio_is_served(&d).contains("attach stream (per-session"), "{d}");
    // The server proved it speaks MCP; until a client comes, nothing runs.
    assert!(d["endpoint"].is_null(), "{d}");
    assert_eq!(host.owned_containers(), Vec::<String>::new());

    let (mut a, mut b) = (host.mcp_session(&id).await, host.mcp_session(&id).await);
    assert_eq!(host.owned_containers().len(), 2, "one container per session");
    assert_eq!(call(&mut a, "remember", json!({"text": "kept for a"})).await, "remembered");
    assert_eq!(call(&mut b, "remember", json!({"text": "kept for b"})).await, "remembered");
    assert_eq!(call(&mut a, "recall", json!({})).await, "kept for a", "one client's state is its own");
    assert_eq!(call(&mut b, "recall", json!({})).await, "kept for b");
    // The same guardrails as the deployment's.
    assert!(call(&mut a, "write_file", json!({"path": "/probe"})).await.starts_with("error"), "read-only root");
    assert_eq!(call(&mut b, "capabilities", json!({})).await, "0000000000000000");
    for container in host.owned_containers() {
        let inspect =
            docker(&["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.OpenStdin}}", &container]);
        assert_eq!(inspect, "true true", "{container}");
    }
    let (status, logs) = host.get(&format!("/runtimes/{id}/logs")).await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    // Each session's server's lines, named after it.
    let servers: std::collections::BTreeSet<&str> =
        logs.as_str().unwrap().lines().filter_map(|l| l.split_once(" | ")).map(|(server, _)| server).collect();
    assert_eq!(servers.len(), 2, "{logs}");
    assert!(servers.iter().all(|s| s.starts_with("session ")), "{logs}");

    // A session its client ends takes its container with it.
    a.close().await;
    containers_until(&host, 1).await;
    // One whose client vanished idles out, and its container goes too.
    drop(b);
    containers_until(&host, 0).await;
    // Each recorded, the end once the container is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, events) = host.get(&format!("/events?deployment={id}")).await;
        let kinds: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
        let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
        if count("session_server.ended") == 2 {
            assert_eq!(count("session_server.started"), 2, "{kinds:?}");
            assert_eq!(count("deployment.probe_removed"), 1, "{kinds:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{kinds:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A stateless client has no session to start a server for: told so, not left hanging.
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {}}});
    let (status, refused) = stateless(&host, &id, &list, "tools/list", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("per-client state"), "{refused}");

    // Stopping ends every session; starting proves the server again.
    let mut c = host.mcp_session(&id).await;
    assert_eq!(host.owned_containers().len(), 1);
    assert_eq!(host.post(&format!("/runtimes/{id}/stop"), json!({})).await.0, StatusCode::OK);
    assert_eq!(host.owned_containers(), Vec::<String>::new(), "stopped with its sessions' servers");
    assert!(c.call_tool("recall", json!({})).await.is_err(), "the session ended with the deployment");
    assert_eq!(host.post(&format!("/runtimes/{id}/start"), json!({})).await.0, StatusCode::OK);
    host.wait_for(&id, "connected").await;
    let mut c = host.mcp_session(&id).await;
    assert_eq!(call(&mut c, "recall", json!({})).await, "", "a new session starts from nothing");
    // A session's server that crashes ends the session; initializing again gives a new one.
    assert!(c.call_tool("exit_process", json!({"count": 3})).await.is_err());
    containers_until(&host, 0).await;
    assert!(c.call_tool("recall", json!({})).await.is_err(), "the session ended with its server");
    let mut c = host.mcp_session(&id).await;
    assert_eq!(call(&mut c, "echo", json!({"text": "new server"})).await, "new server");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.owned_containers(), Vec::<String>::new(), "deleted with its sessions' servers");
    assert_eq!(host.owned_networks(), Vec::<String>::new());
}

/// Polls until this host owns `count` containers (30 s at most).
async fn containers_until(host: &TestHost, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while host.owned_containers().len() != count {
        assert!(std::time::Instant::now() < deadline, "containers: {:?}, not {count}", host.owned_containers());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `clients` sessions at once, each calling `echo` with its own texts and
/// getting exactly its own answers back.
async fn clients_echo_at_once(host: &TestHost, id: &str, clients: usize) {
    let calls = (0..clients).map(|client| async move {
        let mut s = host.mcp_session(id).await;
        for i in 0..5 {
            let text = format!("client {client} call {i}");
            assert_eq!(call(&mut s, "echo", json!({"text": text})).await, text);
        }
        s.close().await;
    });
    futures_util::future::join_all(calls).await;
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

/// A session opened by hand (initialize, initialized): its id.
async fn raw_session(host: &TestHost, id: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
                      "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let answer = reqwest::Client::new()
        .post(host.proxy_url(id))
        .bearer_auth(&host.admin_token)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let session = answer.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let done = post_as(host, id, &session, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    assert_eq!(done.status(), StatusCode::ACCEPTED);
    session
}

async fn post_as(host: &TestHost, id: &str, session: &str, message: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(host.proxy_url(id))
        .bearer_auth(&host.admin_token)
        .header("mcp-session-id", session)
        .header("accept", "application/json, text/event-stream")
        .json(message)
        .send()
        .await
        .unwrap()
}

/// The session's stream of server notifications (`GET`).
async fn listen(host: &TestHost, id: &str, session: &str) -> reqwest::Response {
    let stream = reqwest::Client::new()
        .get(host.proxy_url(id))
        .bearer_auth(&host.admin_token)
        .header("mcp-session-id", session)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    stream
}

/// What a streamed answer carries until `needle` appears (10 s at most).
async fn read_until(stream: &mut reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains(needle) {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    text
}

/// What a stream carries within `period`.
async fn read_for(stream: &mut reqwest::Response, period: std::time::Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + period;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, stream.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// Polls the deployment until `done` holds (40 s at most).
async fn wait_until(host: &TestHost, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if done(&d) {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "never got there: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Crashes the server until the engine gives up restarting it.
async fn crash_until_error(host: &TestHost, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if d["status"] == "error" {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "never gave up: {d}");
        if d["status"] == "connected" {
            let http = reqwest::Client::new();
            let url = host.proxy_url(id);
            if let Ok(mut s) = McpSession::connect_with(&http, &url, Some(host.admin_token.clone())).await {
                let _ = s.call_tool("exit_process", json!({"count": 3})).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A request of the stateless generation: no session, the standard headers.
async fn stateless(
    host: &TestHost,
    id: &str,
    message: &Value,
    method: &str,
    name: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(host.proxy_url(id))
        .bearer_auth(&host.admin_token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(message);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    let answer = request.send().await.unwrap();
    (answer.status(), answer.json().await.unwrap_or_default())
}
