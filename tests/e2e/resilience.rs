//! What fails around the host: containers ended behind its back, the
//! engine and the gateway going away under load.

use crate::support::{self, container_of, docker, TestHost};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Waits up to `seconds` for the deployment to be connected with `restarts` restarts.
async fn connected_after(host: &TestHost, id: &str, restarts: u32, seconds: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if d["status"] == "connected" && d["restart_count"] == restarts {
            return d;
        }
        assert!(Instant::now() < deadline, "not connected after {restarts} restarts within {seconds}s: {d}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An engine never restarts a container it was told to kill or stop, so the
/// host does, under the deployment's policy, and says why; under `never` the
/// deployment is left in `error`.
#[tokio::test(flavor = "multi_thread")]
async fn a_container_killed_or_stopped_behind_the_hosts_back_is_restarted_under_its_policy() {
    let host = TestHost::start(|_| {}).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;

    docker(&["kill", &container_of(&id)]);
    connected_after(&host, &id, 1, 60).await;
    let (_, crashed) = host.get(&format!("/events?deployment={id}&type=deployment.crashed")).await;
    assert_eq!(crashed[0]["data"]["exit_code"], 137, "{crashed}");
    let (_, restarted) = host.get(&format!("/events?deployment={id}&type=deployment.restarted")).await;
    let reason = restarted[0]["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("stop or kill the host did not ask for"), "{restarted}");
    let mut session = host.mcp_session(&id).await;
    assert_eq!(session.call_tool("echo", json!({"text": "back"})).await.unwrap(), "back");

    docker(&["stop", "--time", "1", &container_of(&id)]);
    connected_after(&host, &id, 2, 60).await;
    assert_eq!(
        support::docker(&["ps", "-aq", "--filter", &format!("label=mcp-runtime.deployment={id}")]).lines().count(),
        1,
        "restarted in place, no second container"
    );

    let entry = json!({"name": "never", "slug": "never", "supported_backends": ["docker"], "guardrails_profile": "restricted",
                       "restart_policy": "never", "source": {"type": "docker", "image": support::fixture_image()}});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let left = host.deploy(json!({"slug": "never"})).await;
    host.wait_for(&left, "connected").await;
    docker(&["kill", &container_of(&left)]);
    let d = host.wait_for(&left, "error").await;
    assert!(d["status_message"].as_str().unwrap_or_default().contains("137"), "{d}");
    assert_eq!(d["restart_count"], 0, "{d}");

    for id in [id, left] {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}
