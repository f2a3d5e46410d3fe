//! Operations against the real engine: Prometheus metrics scraped live and
//! checked by `promtool`, the live status stream, log search, health checks,
//! restart policies and alerts.

mod support;

use mcp_runtime::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use support::TestHost;

/// `promtool check metrics` on an exposition: its complaints, if any.
fn promtool_check(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        String::new()
    } else {
        format!("promtool failed: {said}")
    }
}

async fn scrape(host: &TestHost, token: &str) -> (StatusCode, String) {
    let answer = reqwest::Client::new().get(format!("{}/metrics", host.base)).bearer_auth(token).send().await.unwrap();
    (answer.status(), answer.text().await.unwrap())
}

/// One line of the exposition that starts with `prefix`, as a number.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_scrape_passes_promtool_with_deployments_in_several_states() {
    let host = TestHost::start(|_| {}).await;
    let connected = host.deploy(json!({"slug": "fixture"})).await;
    let stopped = host.deploy(json!({"slug": "fixture-standard"})).await;
    host.wait_for(&connected, "connected").await;
    host.wait_for(&stopped, "connected").await;
    assert_eq!(host.post(&format!("/runtimes/{stopped}/stop"), json!({})).await.0, StatusCode::OK);
    // An image no registry holds: the pull fails.
    let absent = json!({"name": "Absent", "slug": "absent", "supported_backends": ["docker"],
                        "source": {"type": "docker", "image": "127.0.0.1:5000/mcp-runtime-absent:1"}});
    assert_eq!(host.post("/catalog", absent).await.0, StatusCode::CREATED);
    let failed = host.deploy(json!({"slug": "absent"})).await;
    host.wait_for(&failed, "error").await;
    // A refused request counts as a policy decision, and stores nothing.
    let (status, _) = host.post("/runtimes/deploy", json!({"slug": "fixture-elsewhere"})).await;
    assert!(status.is_client_error(), "{status}");

    let mut s = host.mcp_session(&connected).await;
    for _ in 0..3 {
        s.call_tool("echo", json!({"text": "counted"})).await.unwrap();
    }

    let scraper = host.token("prometheus", &[Role::Metrics]);
    let (status, text) = scrape(&host, &scraper).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(promtool_check(&text), "", "{text}");
    let expect = |prefix: &str| value(&text, prefix).unwrap_or_else(|| panic!("no {prefix}:\n{text}"));
    assert_eq!(expect("mcp_runtime_deployments{backend=\"docker\",state=\"connected\"}"), 1.0);
    assert_eq!(expect("mcp_runtime_deployments{backend=\"docker\",state=\"stopped\"}"), 1.0);
    assert_eq!(expect("mcp_runtime_deployments{backend=\"docker\",state=\"error\"}"), 1.0);
    assert_eq!(expect("mcp_runtime_backend_up{backend=\"docker\"}"), 1.0);
    let calls =
        format!("mcp_runtime_mcp_requests_total{{deployment=\"{connected}\",method=\"tools/call\",outcome=\"ok\"}}");
    assert_eq!(expect(&calls), 3.0);
    assert!(expect("mcp_runtime_deploy_phase_duration_seconds_count{phase=\"pull\"}") >= 1.0);
    assert!(expect("mcp_runtime_deploy_phase_duration_seconds_count{phase=\"connect\"}") >= 2.0);
    assert!(expect("mcp_runtime_plugin_calls_total{plugin=\"docker\",function=\"deploy\",outcome=\"ok\"}") >= 2.0);
    assert!(text.contains("mcp_runtime_policy_decisions_total{"), "{text}");
    assert!(text.contains("mcp_runtime_approvals{status=\"pending\"} 0"), "{text}");

    // Prometheus asks for OpenMetrics, and gets it.
    let answer = reqwest::Client::new()
        .get(format!("{}/metrics", host.base))
        .bearer_auth(&scraper)
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(answer.text().await.unwrap().ends_with("# EOF\n"));

    // Operators read it too; a viewer does not.
    assert_eq!(scrape(&host, &host.token("op", &[Role::Operator])).await.0, StatusCode::OK);
    let (status, body) = scrape(&host, &host.token("v", &[Role::Viewer])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The metrics role reads nothing else.
    let answer =
        reqwest::Client::new().get(format!("{}/runtimes", host.base)).bearer_auth(&scraper).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);

    for id in [connected, stopped, failed] {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}

/// Reads server-sent events until `done` says enough: each as (event, data).
async fn read_events(
    mut stream: reqwest::Response,
    done: impl Fn(&str, &serde_json::Value) -> bool,
) -> Vec<(String, serde_json::Value)> {
    let (mut seen, mut buffer) = (Vec::new(), String::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk()).await.expect("events in time").unwrap();
        buffer += &String::from_utf8_lossy(&chunk.expect("the stream stays open"));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(str::to_string);
            let (Some(kind), Some(data)) = (field("event: "), field("data: ")) else { continue };
            let data: serde_json::Value = serde_json::from_str(&data).unwrap();
            let stop = done(&kind, &data);
            seen.push((kind, data));
            if stop {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_stream_shows_a_deploy_in_order() {
    let host = TestHost::start(|_| {}).await;
    let (status, stream) = host.get_stream("/runtimes/stream").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let id = host.deploy(json!({"slug": "fixture"})).await;
    let seen = read_events(stream, |kind, data| kind == "deployment.state" && data["data"]["to"] == "connected").await;
    let states: Vec<&str> = seen
        .iter()
        .filter(|(kind, data)| kind == "deployment.state" && data["deployment"] == id.as_str())
        .map(|(_, data)| data["data"]["to"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pulling", "starting", "running", "connected"]);
    assert_eq!(seen[0].0, "deployment.requested", "{seen:?}");

    // A bad filter is a JSON 422 naming it, not a stream.
    let (status, answer) = host.get("/runtimes/stream?deploymnet=x").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}
