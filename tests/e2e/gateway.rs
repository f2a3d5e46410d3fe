//! Registration with a real ContextForge gateway (1.1.0, on loopback): a
//! connected deployment appears in the gateway, its tools are called through
//! the gateway and our proxy, and the registration follows the deployment
//! (stop, start, delete) and the gateway's own faults (down, a fresh
//! database, a wrong credential) without ever holding the deployment up.

use crate::support;

use mcp_runtime::config::GatewayConfig;
use mcp_runtime::mcp::client::McpSession;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::contextforge::{contextforge, ContextForge, ADMIN};
use support::TestHost;

/// This host's gateway settings: the gateway's secret and admin to mint for.
fn settings(cf: &ContextForge, extra: Value) -> GatewayConfig {
    let mut config = json!({"url": cf.url, "auth": {"jwt_secret": cf.secret, "user": ADMIN},
                            "create_virtual_server": true, "sync_interval_seconds": 2});
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(config).unwrap()
}

/// Polls the deployment until its registration is in `status` (60 s at most).
async fn registration(host: &TestHost, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if d["gateway"]["status"] == status {
            return d["gateway"].clone();
        }
        assert!(Instant::now() < deadline, "registration never {status}: {}", d["gateway"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls the gateway's tool list until `tool` is in it, or is not.
async fn listed(cf: &ContextForge, tool: &str, wanted: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = cf.tool_names().await;
        if names.iter().any(|n| n == tool) == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "{tool} listed: {}, not {wanted}: {names:?}", !wanted);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connected_deployment_is_registered_used_through_the_gateway_and_followed() {
    let cf = contextforge().await;
    let _turn = cf.shared().await;
    let host = TestHost::start(|c| c.gateway = Some(settings(cf, json!({})))).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;
    let registered = registration(&host, &id, "registered").await;
    let name = registered["name"].as_str().unwrap().to_string();
    assert_eq!(name, format!("fixture-{}", &id[..8]), "{registered}");
    let tool = format!("{name}-echo");
    listed(cf, &tool, true).await;

    // tools/call through the gateway, which calls our proxy, which calls the container.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": {"text": "through the gateway"}}});
    let (status, answer) = cf.call(Method::POST, "/rpc", Some(call)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.to_string().contains("through the gateway"), "{answer}");
    // The gateway calls us with a token for this deployment alone.
    let (_, gateway) =
        cf.call(Method::GET, &format!("/v1/gateways/{}", registered["gateway_id"].as_str().unwrap()), None).await;
    assert_eq!(gateway["url"].as_str().unwrap().rsplit_once("/servers/").unwrap().1, format!("{id}/mcp"), "{gateway}");
    assert_eq!(gateway["authType"], "bearer");

    // The virtual server holds the tools and answers MCP at the gateway.
    let server = registered["server_id"].as_str().expect("a virtual server").to_string();
    let url = format!("{}/servers/{server}/mcp", cf.url);
    let mut session = McpSession::connect_with(&reqwest::Client::new(), &url, Some(cf.admin_token())).await.unwrap();
    assert!(session.tool_names().await.unwrap().contains(&tool));
    assert_eq!(session.call_tool(&tool, json!({"text": "virtually"})).await.unwrap(), "virtually");

    // stop → the gateway hides the tools; start → back.
    assert_eq!(host.post(&format!("/runtimes/{id}/stop"), json!({})).await.0, StatusCode::OK);
    registration(&host, &id, "inactive").await;
    listed(cf, &tool, false).await;
    assert_eq!(host.post(&format!("/runtimes/{id}/start"), json!({})).await.0, StatusCode::OK);
    registration(&host, &id, "registered").await;
    listed(cf, &tool, true).await;

    // delete → gone from the gateway, virtual server and all.
    let gateway_id = registered["gateway_id"].as_str().unwrap().to_string();
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    listed(cf, &tool, false).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while cf.call(Method::GET, &format!("/v1/gateways/{gateway_id}"), None).await.0 == StatusCode::OK {
        assert!(Instant::now() < deadline, "the gateway record outlived the deployment");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, servers) = cf.call(Method::GET, "/v1/servers", None).await;
    assert!(!servers.to_string().contains(&server), "the virtual server outlived the deployment: {servers}");
    let (_, events) = host.get(&format!("/events?deployment={id}&type=gateway")).await;
    let kinds: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in ["gateway.registered", "gateway.synced", "gateway.deregistered"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_credential_fails_clearly_and_the_deployment_still_serves() {
    let cf = contextforge().await;
    let _turn = cf.shared().await;
    let wrong = "not-the-gateway-token";
    let host = TestHost::start(|c| c.gateway = Some(settings(cf, json!({"auth": {"token": wrong}})))).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;
    let failed = registration(&host, &id, "failed").await;
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("credential") && error.contains("runtime.gateway.auth"), "{error}");
    let mut session = host.mcp_session(&id).await;
    assert_eq!(session.call_tool("echo", json!({"text": "still here"})).await.unwrap(), "still here");
    let (_, events) = host.get("/events").await;
    assert!(!events.to_string().contains(wrong), "the credential reached the audit trail");
    let (_, d) = host.get(&format!("/runtimes/{id}")).await;
    assert!(!d.to_string().contains(wrong), "the credential reached an answer");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_down_or_reset_is_caught_up_with() {
    let cf = contextforge().await;
    let _turn = cf.exclusive().await;
    let host = TestHost::start(|c| c.gateway = Some(settings(cf, json!({"create_virtual_server": false})))).await;

    // Down during the deploy: the deployment connects anyway; registration waits, visibly.
    cf.stop();
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;
    let pending = registration(&host, &id, "pending").await;
    assert!(pending["attempts"].as_u64().unwrap() >= 1 && pending["error"].is_string(), "{pending}");
    cf.start(false).await;
    let registered = registration(&host, &id, "registered").await;
    let tool = format!("{}-echo", registered["name"].as_str().unwrap());
    listed(cf, &tool, true).await;

    // Restarted on a fresh database: noticed at the next full pass, registered again.
    cf.start(true).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        let again = &d["gateway"];
        if again["status"] == "registered" && again["gateway_id"] != registered["gateway_id"] {
            break;
        }
        assert!(Instant::now() < deadline, "never registered again: {again}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    listed(cf, &tool, true).await;

    // A record this host made for a deployment it no longer has is removed.
    let orphan = json!({"name": "orphan-of-this-host", "url": host.proxy_url(&id), "transport": "STREAMABLEHTTP",
                        "auth_type": "bearer", "auth_token": host.admin_token,
                        "tags": ["mcp-runtime", format!("mcp-runtime-owner:{}", host.owner)]});
    let (status, made) = cf.call(Method::POST, "/v1/gateways", Some(orphan)).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cf.call(Method::GET, &format!("/v1/gateways/{}", made["id"].as_str().unwrap()), None).await.0
        == StatusCode::OK
    {
        assert!(Instant::now() < deadline, "the orphaned record was kept");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    listed(cf, &tool, true).await;
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    listed(cf, &tool, false).await;
}

/// The fixture as a plain process on loopback: a server "hosted elsewhere".
struct HostedFixture {
    child: std::process::Child,
    url: String,
}

impl HostedFixture {
    async fn start() -> HostedFixture {
        let port = crate::support::free_port();
        let binary = support::repo_root().join("target/x86_64-unknown-linux-gnu/release/mcp-fixture");
        let child = std::process::Command::new(&binary)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run `make fixture`)", binary.display()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "the hosted fixture never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        HostedFixture { child, url: format!("http://127.0.0.1:{port}/mcp") }
    }
}

impl Drop for HostedFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls a remote entry's registration until `done` says it is as wanted (60 s at most).
async fn remote_registration(host: &TestHost, slug: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, view) = host.get(&format!("/catalog/{slug}/registration")).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        if done(&view["registration"]) {
            return view["registration"].clone();
        }
        assert!(Instant::now() < deadline, "registration of {slug} never as wanted: {view}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_entry_from_contextforge_s_catalog_is_registered_at_its_own_url_and_withdrawn() {
    let cf = contextforge().await;
    let _turn = cf.shared().await;
    let hosted = HostedFixture::start().await;
    let host = TestHost::start(|c| c.gateway = Some(settings(cf, json!({})))).await;
    // Imported as ContextForge publishes it; unique slugs, since the gateway outlives this host.
    let slug = format!("hosted-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let catalog = format!(
        "catalog_servers:\n  - {{id: {slug}, name: Hosted fixture, category: Testing, url: '{}', auth_type: Open, \
         provider: Local, description: the fixture as a process}}\n  - {{id: {slug}-keyed, name: Keyed, category: \
         Testing, url: '{}', auth_type: API Key, provider: Local, description: wants a key}}\n",
        hosted.url, hosted.url
    );
    let (status, import) = host.post("/catalog/import", json!({"document": catalog, "format": "contextforge"})).await;
    assert_eq!(status, StatusCode::OK, "{import}");
    let (_, entry) = host.get(&format!("/catalog/{slug}")).await;
    assert_eq!(entry["source"], json!({"type": "remote", "url": hosted.url}), "{entry}");
    assert_eq!(entry["transport"], "streamable-http");

    // Nothing to deploy; and a server that wants a key is the gateway's to register.
    let (status, refused) = host.post("/runtimes/deploy", json!({"slug": slug})).await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("slug")), "{refused}");
    let (status, refused) = host.request(Method::PUT, &format!("/catalog/{slug}-keyed/registration"), None).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("register_with_gateway")),
        "{refused}"
    );

    let (status, asked) = host.request(Method::PUT, &format!("/catalog/{slug}/registration"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    assert_eq!(asked["register_with_gateway"], true);
    let registered =
        remote_registration(&host, &slug, |r| r["status"] == "registered" && r["server_id"].is_string()).await;
    assert_eq!(registered["url"], hosted.url.as_str(), "its own URL, not this host's proxy");
    let tool = format!("{slug}-echo");
    listed(cf, &tool, true).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": {"text": "straight to the hosted server"}}});
    let (status, answer) = cf.call(Method::POST, "/rpc", Some(call)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.to_string().contains("straight to the hosted server"), "{answer}");
    let (_, record) =
        cf.call(Method::GET, &format!("/v1/gateways/{}", registered["gateway_id"].as_str().unwrap()), None).await;
    let tags = record["tags"].to_string();
    assert!(tags.contains("remote") && tags.contains(&slug), "{record}");
    // Asking again changes nothing.
    let (status, _) = host.request(Method::PUT, &format!("/catalog/{slug}/registration"), None).await;
    assert_eq!(status, StatusCode::OK);

    // Withdrawn: the record goes, the entry stays with the change in its history.
    let (status, _) = host.request(Method::DELETE, &format!("/catalog/{slug}/registration"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    remote_registration(&host, &slug, Value::is_null).await;
    listed(cf, &tool, false).await;
    let (status, gone) =
        cf.call(Method::GET, &format!("/v1/gateways/{}", registered["gateway_id"].as_str().unwrap()), None).await;
    assert_ne!(status, StatusCode::OK, "{gone}");
    let (_, versions) = host.get(&format!("/catalog/{slug}/versions")).await;
    assert_eq!(versions["revisions"].as_array().unwrap().len(), 3, "imported, marked, unmarked: {versions}");

    // Marked again and the entry deleted: deregistered with it.
    host.request(Method::PUT, &format!("/catalog/{slug}/registration"), None).await;
    remote_registration(&host, &slug, |r| r["status"] == "registered").await;
    listed(cf, &tool, true).await;
    assert_eq!(host.delete(&format!("/catalog/{slug}")).await.0, StatusCode::NO_CONTENT);
    listed(cf, &tool, false).await;
}

/// Down while deployments change, long enough for several syncs to fail:
/// when it returns every registration catches up, each exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_down_while_deployments_change_catches_up_once_each() {
    let cf = contextforge().await;
    let _turn = cf.exclusive().await;
    let quick = json!({"create_virtual_server": false, "sync_interval_seconds": 1});
    let host = TestHost::start(|c| c.gateway = Some(settings(cf, quick))).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(host.deploy(json!({"slug": "fixture"})).await);
    }
    for id in &ids {
        host.wait_for(id, "connected").await;
        registration(&host, id, "registered").await;
    }
    let (kept, stopped, deleted) = (ids[0].clone(), ids[1].clone(), ids[2].clone());

    cf.stop();
    assert_eq!(host.post(&format!("/runtimes/{stopped}/stop"), json!({})).await.0, StatusCode::OK);
    assert_eq!(host.delete(&format!("/runtimes/{deleted}")).await.0, StatusCode::NO_CONTENT);
    let added = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&added, "connected").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, failed) = host.get("/events?type=gateway.sync_failed").await;
        if failed.as_array().map_or(0, Vec::len) >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "syncs did not fail while the gateway was down: {failed}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    cf.start(false).await;
    registration(&host, &added, "registered").await;
    registration(&host, &stopped, "inactive").await;
    registration(&host, &kept, "registered").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, gateways) = cf.call(Method::GET, "/v1/gateways?include_inactive=true", None).await;
        let ours: Vec<String> = gateways
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["tags"].to_string().contains(&host.owner))
            .filter_map(|g| g["name"].as_str().map(String::from))
            .collect();
        let mut expected: Vec<String> =
            [&kept, &stopped, &added].iter().map(|id| format!("fixture-{}", &id[..8])).collect();
        let mut found = ours.clone();
        expected.sort();
        found.sort();
        if found == expected {
            break;
        }
        assert!(Instant::now() < deadline, "one record per live deployment, none for the deleted one: {ours:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for id in [kept, stopped, added] {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}
