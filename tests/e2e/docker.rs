//! End to end against the real Docker engine: catalog → deploy → connected →
//! MCP through the host's proxy → stop → start → delete, the `restricted`
//! guardrails proven from inside the container, and a host restart reconciled.

use crate::support;

use mcp_runtime::mcp::client::McpSession;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{docker, gateway_of, owner_labels, Sentinel, TestHost};

async fn session(host: &TestHost, id: &str) -> McpSession {
    host.mcp_session(id).await
}

async fn probe(s: &mut McpSession, tool: &str, args: Value) -> String {
    s.call_tool(tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_lifecycle_through_the_proxy_leaves_nothing_behind() {
    let host = TestHost::start(|_| {}).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;

    let d = host.wait_for(&id, "connected").await;
    assert_eq!(d["profile"], "restricted");
    assert!(d["endpoint"].as_str().unwrap().ends_with(":8080/mcp"), "{d}");
    assert!(d["tools"].as_array().unwrap().contains(&json!("echo")), "{d}");
    assert!(d.get("handle").is_none(), "the backend handle stays private");
    let states = support::pluck(&d["recent_events"], "/data/to");
    for state in ["pulling", "starting", "running", "connected"] {
        assert!(states.contains(&state), "missing {state} in {states:?}");
    }

    let mut s = session(&host, &id).await;
    assert_eq!(probe(&mut s, "echo", json!({"text": "hello through the proxy"})).await, "hello through the proxy");

    let (status, d) = host.post(&format!("/runtimes/{id}/stop"), json!({})).await;
    assert_eq!((status, d["status"].as_str()), (StatusCode::OK, Some("stopped")), "{d}");
    let (status, _) = host.post(&format!("/servers/{id}/mcp"), json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a stopped server is not proxied");

    let (status, d) = host.post(&format!("/runtimes/{id}/start"), json!({})).await;
    assert_eq!((status, d["status"].as_str()), (StatusCode::OK, Some("connected")), "{d}");
    let mut s = session(&host, &id).await;
    assert_eq!(probe(&mut s, "echo", json!({"text": "again"})).await, "again");

    let (status, logs) = host.get(&format!("/runtimes/{id}/logs?tail=50")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs.as_str().unwrap().contains("mcp-fixture listening"), "{logs}");

    let (status, list) = host.get("/runtimes").await;
    assert_eq!((status, list.as_array().unwrap().len()), (StatusCode::OK, 1));

    let (status, _) = host.delete(&format!("/runtimes/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(host.owned_containers().is_empty(), "containers left: {:?}", host.owned_containers());
    assert!(host.owned_networks().is_empty(), "networks left: {:?}", host.owned_networks());
    assert!(host.owned_volumes().is_empty(), "volumes left: {:?}", host.owned_volumes());
    assert!(!iptables_rules().contains(&format!("mcprt-{}", &id[..8])), "host rule left behind");
    let (status, _) = host.get(&format!("/runtimes/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, events) = host.get(&format!("/events?deployment={id}")).await;
    let kinds = support::pluck(&events, "/type");
    for kind in
        ["deployment.requested", "deployment.created", "deployment.stop", "deployment.start", "deployment.deleted"]
    {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
}

fn iptables_rules() -> String {
    String::from_utf8_lossy(&std::process::Command::new("iptables").args(["-S", "INPUT"]).output().unwrap().stdout)
        .into_owned()
}

/// A TCP listener on every host address that counts connections.
#[tokio::test(flavor = "multi_thread")]
async fn restricted_profile_is_enforced_inside_the_container() {
    let host = TestHost::start(|_| {}).await;
    let sentinel = Sentinel::start().await;
    // A server in a network of its own: the deployment must not reach it either.
    let other_net = format!("{}-other", host.owner);
    let mut create = vec!["network", "create"];
    let labels = owner_labels(&host.owner);
    create.extend(labels.iter().map(String::as_str));
    create.push(&other_net);
    docker(&create);
    let mut run = vec!["run", "-d", "--network", &other_net];
    run.extend(labels.iter().map(String::as_str));
    run.push(support::fixture_image());
    let other = docker(&run);
    let other_ip = docker(&["inspect", &other, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"]);

    let restricted = host.deploy(json!({"slug": "fixture"})).await;
    let control = host.deploy(json!({"slug": "fixture-standard"})).await;
    let d = host.wait_for(&restricted, "connected").await;
    host.wait_for(&control, "connected").await;

    let applied = &d["guardrails_applied"];
    assert_eq!(applied["memory_bytes"], 256 << 20, "{applied}");
    assert_eq!(applied["pids"], 50);
    assert_eq!(applied["cpu_millis"], 250);
    let warned = support::pluck(&d["guardrails_warnings"], "/field");
    assert!(warned.contains(&"apparmor"), "AppArmor is absent on this engine and must be reported: {warned:?}");

    let mut r = session(&host, &restricted).await;
    let mut c = session(&host, &control).await;

    // Read-only root, with scratch space on tmpfs.
    assert!(probe(&mut r, "write_file", json!({"path": "/probe"})).await.contains("Read-only file system"));
    assert_eq!(probe(&mut r, "write_file", json!({"path": "/tmp/probe"})).await, "written");
    assert_eq!(probe(&mut c, "write_file", json!({"path": "/data/probe"})).await, "written", "standard mounts /data");

    // Capabilities: all dropped; the control adds only NET_BIND_SERVICE (bit 10).
    assert_eq!(probe(&mut r, "capabilities", json!({})).await, "0000000000000000");
    assert_eq!(probe(&mut c, "capabilities", json!({})).await, "0000000000000400");

    // Process limit of 50.
    let forked = probe(&mut r, "spawn_processes", json!({"count": 80})).await;
    let started: u32 = forked.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((1..50).contains(&started), "pids limit not enforced: {forked}");

    // Memory limit of 256 MB: 400 MB is killed, 32 MB is fine.
    assert_eq!(probe(&mut r, "allocate", json!({"megabytes": 400})).await, "killed: out of memory");
    assert_eq!(probe(&mut r, "allocate", json!({"megabytes": 32})).await, "allocated 32 MB");

    // Egress off: neither the host's own address nor another network is reachable.
    let host_addr = format!("{}:{}", gateway_of(&restricted), sentinel.port);
    assert!(probe(&mut r, "connect", json!({"address": host_addr})).await.starts_with("error"));
    assert!(probe(&mut r, "connect", json!({"address": format!("{other_ip}:8080")})).await.starts_with("error"));
    // The control's egress is filtered by host name (standard): its one way out is the
    // egress proxy on its gateway (so the probe itself works); the rest of the host is closed.
    let gateway = gateway_of(&control);
    assert_eq!(probe(&mut c, "connect", json!({"address": format!("{gateway}:3128")})).await, "connected");
    let control_addr = format!("{gateway}:{}", sentinel.port);
    assert!(probe(&mut c, "connect", json!({"address": control_addr})).await.starts_with("error"));
    assert_eq!(sentinel.hits(), 0, "a server reached the host");
    // And the host still reaches the restricted server (this very session).
    assert_eq!(probe(&mut r, "echo", json!({"text": "still here"})).await, "still here");

    for id in [&restricted, &control] {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_host_adopts_marks_vanished_and_removes_orphans() {
    let mut host = TestHost::start(|_| {}).await;
    let kept = host.deploy(json!({"slug": "fixture"})).await;
    let lost = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&kept, "connected").await;
    host.wait_for(&lost, "connected").await;

    // While the host is down, one container vanishes and an orphan appears:
    // labelled as ours, for a deployment the store never heard of.
    host.stop().await;
    docker(&["rm", "-f", &format!("mcprt-{}", &lost[..8])]);
    let orphan_label = format!("mcp-runtime.deployment={}", "f".repeat(32));
    let mut run = vec!["run", "-d", "--name"];
    let orphan_name = format!("{}-orphan", host.owner);
    run.push(&orphan_name);
    let labels = owner_labels(&host.owner);
    run.extend(labels.iter().map(String::as_str));
    run.extend(["--label", &orphan_label, support::fixture_image()]);
    docker(&run);
    host.resume().await;

    let d = host.wait_for(&kept, "connected").await;
    let mut s = session(&host, &kept).await;
    assert_eq!(probe(&mut s, "echo", json!({"text": "adopted"})).await, "adopted");
    assert_eq!(d["restart_count"], 0);
    let d = host.wait_for(&lost, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("vanished"), "{d}");
    assert!(!host.owned_containers().contains(&orphan_name), "orphan not removed: {:?}", host.owned_containers());
    let (_, events) = host.get("/events?type=deployment.orphan_removed").await;
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    // The health watch sees the same vanished container again; it is recorded once.
    tokio::time::sleep(host.config.health.watch_interval() * 2).await;
    let (_, events) = host.get(&format!("/events?deployment={lost}&type=deployment.state")).await;
    let failures = support::pluck(&events, "/data/to").iter().filter(|to| **to == "error").count();
    assert_eq!(failures, 1, "{events}");

    // The vanished deployment can still be deleted, and leaves nothing.
    assert_eq!(host.delete(&format!("/runtimes/{lost}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.delete(&format!("/runtimes/{kept}")).await.0, StatusCode::NO_CONTENT);
    assert!(host.owned_containers().is_empty() && host.owned_networks().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absent_image_is_pulled_from_an_allowed_registry() {
    let registry = support::Registry::start().await;
    let image = registry.push_fixture(&format!("pull-{}", uuid::Uuid::new_v4().simple()));
    let allowed = registry.address.clone();
    // A CPU budget far below the pull's duration: time in host calls is not billed.
    let host = TestHost::start(|c| {
        c.backends.get_mut("docker").unwrap().settings.insert("allowed_registries".into(), json!([allowed]));
        c.plugins.iter_mut().find(|p| p.id == "docker").unwrap().limits.cpu_ms = 50;
    })
    .await;
    let entry = json!({"name": "Pulled", "slug": "pulled", "source": {"type": "docker", "image": image}, "guardrails_profile": "restricted", "supported_backends": ["docker"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let id = host.deploy(json!({"slug": "pulled"})).await;
    let d = host.wait_for(&id, "connected").await;
    // Pulled by the digest the tag named when the deploy was checked.
    let pulled = d["image"].as_str().unwrap().to_string();
    let repository = image.rsplit_once(':').unwrap().0;
    assert!(pulled.starts_with(&format!("{repository}@sha256:")), "{d}");
    assert_eq!(d["request"]["pinned_image"]["requested"], image.as_str(), "{d}");
    let states = support::pluck(&d["recent_events"], "/data/to");
    assert!(states.contains(&"pulling"), "{states:?}");
    let mut s = session(&host, &id).await;
    assert_eq!(probe(&mut s, "echo", json!({"text": "pulled"})).await, "pulled");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    let _ = std::process::Command::new("docker").args(["rmi", &pulled]).output();
}

/// The proxy's data path has no ~40 ms floor (Nagle's algorithm meeting
/// delayed ACKs) and survives a host restart: its route table is rebuilt from
/// the store. A functional check with a wide margin; `make bench` measures.
#[tokio::test(flavor = "multi_thread")]
async fn tool_calls_through_the_proxy_are_not_held_back() {
    let mut host = TestHost::start(|_| {}).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;

    let mut s = session(&host, &id).await;
    probe(&mut s, "echo", json!({"text": "warm"})).await;
    // A stateless (2026-07-28) request whose headers contradict its body never reaches the server.
    let forged = reqwest::Client::new()
        .post(host.proxy_url(&id))
        .bearer_auth(&host.admin_token)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "write_file", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"]["code"], -32020);
    // The HTTP+SSE transport is served for bridged servers only; this one speaks streamable HTTP.
    let (status, answer) = host.get(&format!("/servers/{id}/sse")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("/mcp"), "{answer}");
    let start = std::time::Instant::now();
    for i in 0..50 {
        let text = format!("call {i}");
        assert_eq!(probe(&mut s, "echo", json!({"text": text})).await, text);
    }
    let elapsed = start.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(1), "50 proxied tool calls took {elapsed:?}");

    host.stop().await;
    host.resume().await;
    let mut s = session(&host, &id).await;
    assert_eq!(probe(&mut s, "echo", json!({"text": "after restart"})).await, "after restart");

    host.delete(&format!("/runtimes/{id}")).await;
    let (status, _) = host.post(&format!("/servers/{id}/mcp"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a deleted deployment has no route");
}

/// Polls `/health` until the docker backend's availability is `available`.
async fn wait_for_docker(host: &TestHost, available: bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, health) = host.get("/health").await;
        let docker = health["backends"].as_array().unwrap().iter().find(|b| b["name"] == "docker").unwrap().clone();
        if docker["available"] == available {
            return docker;
        }
        assert!(std::time::Instant::now() < deadline, "docker never became available={available}: {health}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Availability follows the engine: it goes away (503 naming the backend and
/// the socket), comes back by itself, and what ran is reconciled. The answers
/// use the catalog's public shapes, and a bad query is a JSON 4xx.
#[tokio::test(flavor = "multi_thread")]
async fn backend_availability_follows_the_engine() {
    let mut gate = support::EngineGate::open();
    let socket = gate.socket.display().to_string();
    let host = TestHost::start(|c| c.backends.get_mut("docker").unwrap().socket = Some(socket.clone())).await;
    wait_for_docker(&host, true).await;
    let id = host
        .deploy(json!({"slug": "fixture", "env": {"TOKEN": "secret"}, "resources": {"visibility": "private"}}))
        .await;
    let d = host.wait_for(&id, "connected").await;
    assert_eq!(d["request"]["source"], json!({"type": "docker", "image": support::FIXTURE_IMAGE}), "{d}");
    assert_eq!(d["request"]["resources"]["visibility"], "private", "{d}");
    assert_eq!(d["request"]["env"], json!(["TOKEN"]), "values stay hidden: {d}");
    assert!(!d.to_string().contains("secret"), "{d}");
    let (status, answer) = host.get(&format!("/runtimes/{id}/logs?tail=99999999999")).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("tail")), "{answer}");

    gate.close().await;
    let docker = wait_for_docker(&host, false).await;
    assert!(docker["reason"].as_str().unwrap().contains(&socket), "{docker}");
    let (_, backends) = host.get("/backends").await;
    assert_eq!(backends[0]["available"], false, "{backends}");
    let (status, answer) = host.post("/runtimes/deploy", json!({"slug": "fixture"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("backend 'docker'") && error.contains(&socket), "{answer}");
    assert_eq!(
        host.get(&format!("/runtimes/{id}")).await.1["status"],
        "connected",
        "not failed for the engine's absence"
    );

    gate.reopen();
    wait_for_docker(&host, true).await;
    let (_, backends) = host.get("/backends").await;
    assert_eq!(backends[0]["available"], true, "{backends}");
    let mut s = session(&host, &id).await;
    assert_eq!(probe(&mut s, "echo", json!({"text": "back"})).await, "back");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}
