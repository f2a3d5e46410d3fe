//! Egress host allowlists on Docker, proven from inside a deployed container:
//! sentinel web servers the test runs on a network of its own are given
//! names through the proxy's resolver map (`runtime.egress.resolve`), and
//! the deployed server reaches out with the fixture's own client.

use crate::support;

use reqwest::StatusCode;
use serde_json::json;
use support::{container_of, docker, fixture_image, TestHost, TEST_LABEL};

/// Sentinel servers on a network of the test's; removed when dropped.
struct Sentinels {
    network: String,
    containers: Vec<String>,
}

impl Sentinels {
    fn start() -> Sentinels {
        let network = format!("egress-sentinels-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let label = format!("{TEST_LABEL}=1");
        docker(&["network", "create", "--label", &label, &network]);
        let mut sentinels = Sentinels { network, containers: Vec::new() };
        // Two on HTTP's port, one on HTTPS's (spoken in the clear: the proxy never looks inside a tunnel).
        for port in ["PORT=80", "PORT=80", "PORT=443"] {
            let id =
                docker(&["run", "-d", "--label", &label, "--network", &sentinels.network, "-e", port, fixture_image()]);
            sentinels.containers.push(id.trim().to_string());
        }
        sentinels
    }

    fn address(&self, i: usize) -> String {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.network);
        docker(&["inspect", "-f", &format, &self.containers[i]]).trim().to_string()
    }

    fn gateway(&self) -> String {
        docker(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", &self.network]).trim().to_string()
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = std::process::Command::new("docker").args(["rm", "-f", c]).output();
        }
        let _ = std::process::Command::new("docker").args(["network", "rm", &self.network]).output();
    }
}

/// What the fixture's client inside `container` got back.
fn inside(container: &str, command: &str, argument: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["exec", container, "/mcp-fixture", command, argument])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_allowed_hosts_are_reached_from_inside_the_container_and_refusals_are_events() {
    let sentinels = Sentinels::start();
    let (allowed, other, gateway) = (sentinels.address(0), sentinels.address(1), sentinels.gateway());
    let secure = sentinels.address(2);
    let names = [
        ("allowed.test", allowed.as_str()),
        ("secure.test", secure.as_str()),
        ("api.wild.test", allowed.as_str()),
        ("wild.test", allowed.as_str()),
        ("denied.test", other.as_str()),
        ("loop.test", "127.0.0.1"),
        ("host.test", gateway.as_str()),
    ];
    let mut host = TestHost::start(|config| {
        config.egress.resolve = names.iter().map(|(n, ip)| (n.to_string(), ip.parse().unwrap())).collect();
    })
    .await;
    // The sentinel's own address is listed, so the names pinned to it may reach it.
    let hosts = json!([
        "allowed.test",
        "secure.test",
        "*.wild.test",
        "loop.test",
        "host.test",
        format!("{allowed}/32"),
        format!("{secure}/32")
    ]);
    let profile = json!({"name": "allowlisted", "network": {"egress_allowed": true, "allowed_hosts": hosts}});
    assert_eq!(host.post("/guardrails", profile).await.0, StatusCode::CREATED);
    let entry = json!({"name": "Reaching out", "slug": "reaching-out", "guardrails_profile": "allowlisted",
                       "source": {"type": "docker", "image": fixture_image()}, "supported_backends": ["docker"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let id = host.deploy(json!({"slug": "reaching-out"})).await;
    let deployment = host.wait_for(&id, "connected").await;
    assert!(deployment["guardrails_warnings"].as_array().unwrap().is_empty(), "enforced: {deployment}");
    let container = container_of(&id);

    // Allowed names, through the proxy: the sentinel answers (its 404, not the proxy's 403).
    assert!(inside(&container, "fetch", "http://allowed.test/").contains(" 404 "), "plain HTTP");
    assert!(inside(&container, "fetch", "http://api.wild.test/").contains(" 404 "), "a wildcard's subdomain");
    let tunnelled = inside(&container, "tunnel", "allowed.test:80");
    assert!(tunnelled.contains(" 200 ") && tunnelled.contains(" 404 "), "CONNECT, then the sentinel: {tunnelled}");
    let https = inside(&container, "tunnel", "secure.test:443");
    assert!(https.contains(" 200 ") && https.contains(" 404 "), "HTTPS's port, allowed by default: {https}");
    assert!(inside(&container, "tunnel", "secure.test:8443").contains(" 403 "), "another port is not");
    // Everything else is refused by the proxy.
    for (url, why) in [
        ("http://wild.test/", "the apex of a wildcard"),
        ("http://denied.test/", "a name not listed"),
        (&format!("http://{other}/"), "an address not listed"),
        ("http://loop.test/", "a listed name resolving to loopback"),
        ("http://host.test/", "a listed name resolving to the Docker host"),
    ] {
        assert!(inside(&container, "fetch", url).contains(" 403 "), "{why}: {url}");
    }
    assert!(inside(&container, "tunnel", "denied.test:443").contains(" 403 "), "CONNECT is checked too");
    // A client that ignores the proxy: no address for names not listed, no route for addresses.
    assert_eq!(inside(&container, "resolve", "denied.test"), "NXDOMAIN");
    assert!(inside(&container, "resolve", "allowed.test").starts_with("A "), "listed names resolve (to the proxy)");
    let direct = std::process::Command::new("docker")
        .args(["exec", &container, "/mcp-fixture", "probe", &format!("{other}:80")])
        .status()
        .unwrap();
    assert!(!direct.success(), "no route out but the proxy");

    let (_, events) = host.get(&format!("/events?type=egress&deployment={id}")).await;
    let refused: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["data"]["host"].as_str()).collect();
    for name in ["wild.test", "denied.test", "loop.test", "host.test"] {
        assert!(refused.contains(&name), "{name} refused as an event: {events}");
    }
    let metrics = host.get_text("/metrics").await.1;
    assert!(metrics.contains("egress_connections_total{") && metrics.contains("outcome=\"refused\""), "{metrics}");

    // The proxy is a host task: after a restart, the backend's next look at the deployment reopens it.
    host.stop().await;
    host.resume().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !inside(&container, "fetch", "http://allowed.test/").contains(" 404 ") {
        assert!(std::time::Instant::now() < deadline, "the proxy never came back after a restart");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(inside(&container, "fetch", "http://denied.test/").contains(" 403 "), "with its allowlist");

    // The proxy goes with the deployment.
    let proxy = deployment_proxy(&host, &container);
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !host.owned_networks().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(host.owned_containers().is_empty() && host.owned_networks().is_empty());
    // Asked of the kernel, not by connecting: the address is no longer on this machine.
    let listening = std::process::Command::new("ss").args(["-Hltn"]).output().unwrap();
    let listening = String::from_utf8_lossy(&listening.stdout);
    assert!(!listening.contains(&proxy), "the proxy at {proxy} is gone: {listening}");
}

#[tokio::test(flavor = "multi_thread")]
async fn learn_mode_lets_public_traffic_through_and_proposes_the_allowlist_it_saw() {
    let sentinels = Sentinels::start();
    let reached = sentinels.address(0);
    let names = [("allowed.test", reached.as_str()), ("api.wild.test", reached.as_str()), ("loop.test", "127.0.0.1")];
    let host = TestHost::start(|config| {
        config.egress.resolve = names.iter().map(|(n, ip)| (n.to_string(), ip.parse().unwrap())).collect();
    })
    .await;
    // Audit mode: any public destination; the sentinel's private address only because it is listed.
    let network = json!({"egress_allowed": true, "egress_audit": true, "allowed_hosts": [format!("{reached}/32")]});
    assert_eq!(host.post("/guardrails", json!({"name": "learning", "network": network})).await.0, StatusCode::CREATED);
    let refused = json!({"name": "bad", "network": {"egress_allowed": false, "egress_audit": true}});
    let (status, answer) = host.post("/guardrails", refused).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("network.egress_audit")));
    let entry = json!({"name": "Learning", "slug": "learning", "guardrails_profile": "learning",
                       "source": {"type": "docker", "image": fixture_image()}, "supported_backends": ["docker"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let id = host.deploy(json!({"slug": "learning"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert_eq!(d["guardrails_applied"]["network"]["egress_audit"], true, "{d}");
    let container = container_of(&id);

    assert!(inside(&container, "fetch", "http://allowed.test/").contains(" 404 "));
    assert!(inside(&container, "tunnel", "api.wild.test:80").contains(" 404 "));
    assert!(inside(&container, "fetch", "http://loop.test/").contains(" 403 "), "loopback stays closed");

    let (status, learned) = host.get(&format!("/runtimes/{id}/egress")).await;
    assert_eq!(status, StatusCode::OK, "{learned}");
    assert_eq!(learned["mode"], "audit");
    assert_eq!(learned["proposed_allowed_hosts"], json!(["allowed.test", "api.wild.test"]), "{learned}");
    let observed: Vec<(&str, u64)> = learned["observed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["host"].as_str().unwrap(), o["refused"].as_u64().unwrap()))
        .collect();
    assert!(observed.contains(&("loop.test", 1)), "refusals are shown too: {learned}");
    // The proposal saves as a profile as it is.
    let mut profile = learned["profile"].clone();
    profile["name"] = json!("learned");
    assert_eq!(host.post("/guardrails", profile).await.0, StatusCode::CREATED);
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    drop(sentinels);
}

/// The proxy address the container was given.
fn deployment_proxy(_host: &TestHost, container: &str) -> String {
    let env = docker(&["inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", container]);
    let url = env.lines().find_map(|l| l.strip_prefix("HTTP_PROXY=")).expect("HTTP_PROXY set");
    url.trim_start_matches("http://").to_string()
}
