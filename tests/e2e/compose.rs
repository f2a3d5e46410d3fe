//! Compose stacks on the real engine: the MCP fixture as the main service
//! and a second fixture as a sidecar it reaches by service name, started in
//! dependency order behind a health check, under the deployment's
//! guardrails, and stopped, started and removed as one unit.

use crate::support;

use reqwest::StatusCode;
use serde_json::json;
use support::{docker, fixture_image, gateway_of, Sentinel, TestHost};

/// The stack: `mcp` waits for `cache` to be healthy (it answers on `probe`).
fn stack(probe: &str) -> String {
    format!(
        "services:\n  mcp:\n    image: \"{image}\"\n    depends_on:\n      cache: {{condition: service_healthy}}\n  \
         cache:\n    image: \"{image}\"\n    ports: [\"8080\"]\n    healthcheck: {{test: [CMD, /mcp-fixture, probe, \"{probe}\"], interval: 1s, timeout: 2s, retries: 2}}\n",
        image = fixture_image()
    )
}

async fn entry(host: &TestHost, slug: &str, compose: String) {
    let body = json!({"name": slug, "slug": slug, "guardrails_profile": "restricted", "supported_backends": ["docker"],
                      "source": {"type": "compose", "compose_file": compose, "main_service": "mcp"}});
    let (status, answer) = host.post("/catalog", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

fn inspect(container: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, container])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_starts_in_order_reaches_its_sidecar_by_name_and_runs_as_one_unit() {
    let host = TestHost::start(|_| {}).await;
    entry(&host, "stack", stack("127.0.0.1:8080")).await;
    let (status, answer) = host.post("/runtimes/deploy", json!({"slug": "stack"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let warned = answer["guardrails_warnings"].to_string();
    assert!(warned.contains("source.compose_file.services.cache.ports"), "ports are never published: {warned}");
    let id = answer["id"].as_str().unwrap().to_string();
    let d = host.wait_for(&id, "connected").await;
    let (mcp, cache) = (format!("mcprt-{}-mcp", &id[..8]), format!("mcprt-{}-cache", &id[..8]));
    // Each image of the stack is pinned to its content when the deploy is checked, and that runs.
    let local_id = docker(&["image", "inspect", "--format", "{{.Id}}", fixture_image()]);
    let pinned = &d["request"]["pinned_stack"];
    assert_eq!(
        (pinned[0]["requested"].as_str(), pinned[0]["image_id"].as_str()),
        (Some(fixture_image()), Some(local_id.as_str())),
        "{d}"
    );
    assert_eq!(
        (inspect(&mcp, "{{.Config.Image}}"), inspect(&cache, "{{.Config.Image}}")),
        (local_id.clone(), local_id)
    );
    assert_eq!(host.owned_containers().len(), 2, "{:?}", host.owned_containers());
    assert!(inspect(&cache, "{{.State.StartedAt}}") < inspect(&mcp, "{{.State.StartedAt}}"), "the dependency first");
    assert_eq!(inspect(&cache, "{{.State.Health.Status}}"), "healthy");

    // The main service reaches the sidecar by its name; the host, never.
    let mut session = host.mcp_session(&id).await;
    assert_eq!(session.call_tool("connect", json!({"address": "cache:8080"})).await.unwrap(), "connected");
    let sentinel = Sentinel::start().await;
    let outside = format!("{}:{}", gateway_of(&id), sentinel.port);
    assert!(session.call_tool("connect", json!({"address": outside})).await.unwrap().starts_with("error"));
    assert_eq!(sentinel.hits(), 0, "a service reached the host");
    // Nor another deployment's network: neither the main service nor the sidecar (itself an
    // MCP server, asked directly at its address, which only the host can reach).
    let other = host.deploy(json!({"slug": "fixture"})).await;
    let other = host.wait_for(&other, "connected").await;
    let address =
        other["endpoint"].as_str().unwrap().trim_start_matches("http://").split('/').next().unwrap().to_string();
    let sidecar_ip = inspect(&cache, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}");
    let sidecar_url = format!("http://{sidecar_ip}:8080/mcp");
    let mut sidecar =
        mcp_runtime::mcp::client::McpSession::connect(&reqwest::Client::new(), &sidecar_url).await.unwrap();
    for session in [&mut session, &mut sidecar] {
        let reached = session.call_tool("connect", json!({"address": address})).await.unwrap();
        assert!(reached.starts_with("error"), "{address}: {reached}");
        assert!(session.call_tool("connect", json!({"address": outside})).await.unwrap().starts_with("error"));
    }
    assert_eq!(sentinel.hits(), 0, "a service reached the host");
    assert_eq!(host.delete(&format!("/runtimes/{}", other["id"].as_str().unwrap())).await.0, StatusCode::NO_CONTENT);
    // `restricted` on every service.
    for container in [&mcp, &cache] {
        let guarded =
            inspect(container, "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.PidsLimit}}");
        assert!(guarded.starts_with("true [ALL]"), "{container}: {guarded}");
    }
    let (_, logs) = host.get_text(&format!("/runtimes/{id}/logs")).await;
    assert!(logs.contains("cache | ") && logs.contains("mcp | "), "{logs}");
    let (_, cache_only) = host.get_text(&format!("/runtimes/{id}/logs?service=cache")).await;
    assert!(cache_only.contains("listening") && !cache_only.contains(" | "), "{cache_only}");
    let (status, _) = host.get(&format!("/runtimes/{id}/logs?service=ghost")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // One unit: stop, start, delete act on every service.
    assert_eq!(host.post(&format!("/runtimes/{id}/stop"), json!({})).await.0, StatusCode::OK);
    for container in [&mcp, &cache] {
        assert_eq!(inspect(container, "{{.State.Running}}"), "false", "{container}");
    }
    assert_eq!(host.post(&format!("/runtimes/{id}/start"), json!({})).await.0, StatusCode::OK);
    host.wait_for(&id, "connected").await;
    assert_eq!(inspect(&cache, "{{.State.Running}}"), "true");
    // A sidecar that dies takes the deployment to `error`, naming it.
    docker(&["kill", &cache]);
    let d = host.wait_for(&id, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("service 'cache' exited"), "{d}");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    assert!(host.owned_containers().is_empty() && host.owned_networks().is_empty() && host.owned_volumes().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sidecar_that_never_becomes_healthy_fails_the_deploy_naming_it_and_leaves_nothing() {
    let host = TestHost::start(|_| {}).await;
    entry(&host, "sick-stack", stack("127.0.0.1:9")).await;
    let (_, answer) = host.post("/runtimes/deploy", json!({"slug": "sick-stack"})).await;
    let id = answer["id"].as_str().unwrap().to_string();
    let d = host.wait_for(&id, "error").await;
    let message = d["status_message"].as_str().unwrap();
    assert!(message.contains("service 'cache' never became healthy"), "{message}");
    assert!(host.owned_containers().is_empty(), "{:?}", host.owned_containers());
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    assert!(host.owned_networks().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approver_sees_every_image_of_a_stack_and_the_registry_rule_looks_at_each() {
    let host = TestHost::start(|c| {
        c.approval.rest.insert("required_for".into(), json!([{"registry_not_in": ["docker.io/library"]}]));
    })
    .await;
    entry(&host, "held-stack", stack("127.0.0.1:8080")).await;
    let (status, held) = host.post("/runtimes/deploy", json!({"slug": "held-stack"})).await;
    assert_eq!((status, held["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{held}");
    let reasons = held["reasons"].to_string();
    assert!(reasons.contains("registry_not_in") && reasons.contains(fixture_image()), "{reasons}");
    let (_, approval) = host.get(&format!("/approvals/{}", held["approval_id"].as_str().unwrap())).await;
    assert_eq!(approval["images"], json!([fixture_image()]), "{approval}");
    assert!(approval["pinned_stack"][0]["image_id"].as_str().is_some_and(|id| id.starts_with("sha256:")), "{approval}");
    assert!(host.owned_containers().is_empty(), "nothing runs before the decision");
}

/// A host that goes down mid-start leaves half a stack; the next start removes it whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_stack_cut_short_by_the_host_going_down_is_removed_whole_at_the_next_start() {
    let mut host = TestHost::start(|_| {}).await;
    // The sidecar stays `starting`: the main service waits for it longer than the host lives.
    let slow = stack("127.0.0.1:9").replace("retries: 2", "retries: 1000");
    entry(&host, "slow-stack", slow).await;
    let (_, answer) = host.post("/runtimes/deploy", json!({"slug": "slow-stack"})).await;
    let id = answer["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while host.owned_containers().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the sidecar never started");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    host.stop().await;
    assert_eq!(host.owned_containers().len(), 1, "half a stack is left by the host going down");
    host.resume().await;
    let d = host.wait_for(&id, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("interrupted"), "{d}");
    assert!(host.owned_containers().is_empty() && host.owned_networks().is_empty(), "{:?}", host.owned_containers());
}
