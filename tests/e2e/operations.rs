//! Operations against the real engine: Prometheus metrics scraped live and
//! checked by `promtool`, the live status stream, log search, health checks,
//! restart policies and alerts.

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use support::webhook::{Receiver, WEBHOOK_SECRET};
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
    // A request a policy refuses (pinned-images: `latest`) counts as a policy decision, and stores nothing.
    let (status, _) = host.post("/runtimes/deploy", json!({"slug": "fixture-latest"})).await;
    assert!(status.is_client_error(), "{status}");

    let mut s = host.mcp_session(&connected).await;
    for _ in 0..3 {
        s.call_tool("echo", json!({"text": "counted"})).await.unwrap();
    }

    // What it uses, as the sampler read it from the engine: CPU once there are two samples.
    let d = host
        .wait_for_usage(&connected, |u| u["cpu_percent"].is_f64() && u["network_rx_bytes"].as_u64() > Some(0))
        .await;
    let usage = &d["usage"];
    assert!(usage["age_seconds"].as_f64().is_some_and(|a| a < 5.0) && usage["sampled_at"].is_string(), "{d}");
    assert!(usage["uptime_seconds"].as_i64().is_some_and(|s| s >= 0), "{d}");
    assert!(usage["memory_bytes"].as_u64().is_some_and(|m| m > 0), "{d}");
    assert_eq!(usage["memory_limit_bytes"], d["guardrails_applied"]["memory_bytes"], "{d}");
    assert!(usage["cpu_percent"].as_f64().is_some_and(|p| p >= 0.0), "{d}");
    assert!(usage["network_rx_bytes"].as_u64().is_some_and(|b| b > 0), "MCP traffic came in: {d}");
    assert!(host.get(&format!("/runtimes/{stopped}")).await.1["usage"].is_null(), "nothing runs");

    let scraper = host.token("prometheus", &[Role::Metrics]);
    let (status, text) = scrape(&host, &scraper).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(promtool_check(&text), "", "{text}");
    let expect = |prefix: &str| value(&text, prefix).unwrap_or_else(|| panic!("no {prefix}:\n{text}"));
    assert_eq!(expect("mcp_runtime_deployments{backend=\"docker\",state=\"connected\"}"), 1.0);
    assert_eq!(expect("mcp_runtime_deployments{backend=\"docker\",state=\"stopped\"}"), 1.0);
    assert_eq!(expect("mcp_runtime_deployments{backend=\"docker\",state=\"error\"}"), 1.0);
    assert_eq!(expect("mcp_runtime_backend_up{backend=\"docker\"}"), 1.0);
    assert!(expect("mcp_runtime_background_tasks") >= 1.0, "the health watch at least");
    let calls =
        format!("mcp_runtime_mcp_requests_total{{deployment=\"{connected}\",method=\"tools/call\",outcome=\"ok\"}}");
    assert_eq!(expect(&calls), 3.0);
    assert!(expect("mcp_runtime_deploy_phase_duration_seconds_count{phase=\"pull\"}") >= 1.0);
    assert!(expect("mcp_runtime_deploy_phase_duration_seconds_count{phase=\"connect\"}") >= 2.0);
    assert!(expect("mcp_runtime_plugin_calls_total{plugin=\"docker\",function=\"deploy\",outcome=\"ok\"}") >= 2.0);
    assert!(text.contains("mcp_runtime_policy_decisions_total{"), "{text}");
    assert!(text.contains("mcp_runtime_approvals{status=\"pending\"} 0"), "{text}");
    assert!(expect(&format!("mcp_runtime_deployment_memory_bytes{{deployment=\"{connected}\"}}")) > 0.0);
    assert!(expect(&format!("mcp_runtime_deployment_network_receive_bytes_total{{deployment=\"{connected}\"}}")) > 0.0);
    assert!(expect(&format!("mcp_runtime_deployment_cpu_percent{{deployment=\"{connected}\"}}")) >= 0.0);

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

/// A host whose alerts go to `receiver`, signed with the shared secret.
async fn alerting_host(receiver: &Receiver, tweak: impl FnOnce(&mut mcp_runtime::config::RuntimeConfig)) -> TestHost {
    let url = receiver.url.clone();
    TestHost::start(move |c| {
        c.alerts.webhook_url = Some(url);
        c.alerts.webhook_secret = Some(WEBHOOK_SECRET.into());
        tweak(c);
    })
    .await
}

/// Adds a catalog entry for the fixture with `extra` fields.
async fn fixture_entry(host: &TestHost, slug: &str, extra: serde_json::Value) {
    let mut entry = json!({"name": slug, "slug": slug, "supported_backends": ["docker"], "guardrails_profile": "restricted",
                           "source": {"type": "docker", "image": support::fixture_image()}});
    entry.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, answer) = host.post("/catalog", entry).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// Calls a tool that does not answer (it ends or freezes the server) in the background.
fn call_and_forget(host: &TestHost, id: &str, tool: &'static str, arguments: serde_json::Value) {
    let (http, url) = (reqwest::Client::new(), host.proxy_url(id));
    let token = host.admin_token.clone();
    tokio::spawn(async move {
        let Ok(mut session) = mcp_runtime::mcp::client::McpSession::connect_with(&http, &url, Some(token)).await else {
            return;
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), session.call_tool(tool, arguments)).await;
    });
}

/// Waits up to `seconds` for the deployment to be connected again, restarted once.
async fn back_after_one_restart(host: &TestHost, id: &str, seconds: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if d["status"] == "connected" && d["restart_count"] == 1 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not back within {seconds}s: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_server_is_restarted_and_the_signed_alert_says_so() {
    let receiver = Receiver::start(0).await;
    let host = alerting_host(&receiver, |_| {}).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;
    call_and_forget(&host, &id, "exit_process", json!({"count": 3}));

    let alert = receiver.received_where("alert", "deployment.crashed", 1).await.remove(0);
    assert_eq!(alert["deployment"], id.as_str(), "{alert}");
    assert_eq!(alert["data"]["restart_count"], 1, "{alert}");
    back_after_one_restart(&host, &id, 30).await;
    let mut s = host.mcp_session(&id).await;
    assert_eq!(s.call_tool("echo", json!({"text": "back"})).await.unwrap(), "back");
    let (_, events) = host.get(&format!("/events?type=alert.sent&deployment={id}")).await;
    assert!(!events.as_array().unwrap().is_empty(), "delivery recorded: {events}");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

/// The engine's events, not the watch's next pass, bring a crash to light:
/// with the watch a minute apart, it is seen in seconds.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_is_heard_from_the_engine_before_the_watch_comes_round() {
    let receiver = Receiver::start(0).await;
    let host = alerting_host(&receiver, |c| c.health.watch_interval_ms = 60_000).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;
    let crashed_at = std::time::Instant::now();
    call_and_forget(&host, &id, "exit_process", json!({"count": 1}));

    let alert = receiver.received_where("alert", "deployment.crashed", 1).await.remove(0);
    assert_eq!(alert["deployment"], id.as_str(), "{alert}");
    let heard_in = crashed_at.elapsed();
    assert!(heard_in < std::time::Duration::from_secs(20), "heard {heard_in:?} after: the watch's pass, not an event");
    back_after_one_restart(&host, &id, 20).await;
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_hog_is_reported_oom_killed_and_alerted() {
    let receiver = Receiver::start(0).await;
    let host = alerting_host(&receiver, |_| {}).await;
    fixture_entry(&host, "hog", json!({"restart_policy": "never"})).await;
    let id = host.deploy(json!({"slug": "hog", "resources": {"memory": "32m"}})).await;
    host.wait_for(&id, "connected").await;
    call_and_forget(&host, &id, "hog_memory", json!({"megabytes": 256}));

    let alert = receiver.received_where("alert", "deployment.oom_killed", 1).await.remove(0);
    assert_eq!(alert["deployment"], id.as_str(), "{alert}");
    let d = host.wait_for(&id, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("out of memory"), "{d}");
    let (_, text) = scrape(&host, &host.admin_token).await;
    assert_eq!(value(&text, &format!("mcp_runtime_oom_kills_total{{deployment=\"{id}\"}}")), Some(1.0), "{text}");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_stops_answering_is_restarted_or_under_never_left_in_error() {
    let receiver = Receiver::start(0).await;
    let host = alerting_host(&receiver, |_| {}).await;
    let check = json!({"interval_seconds": 1, "timeout_seconds": 1, "failure_threshold": 2});
    fixture_entry(&host, "watched", json!({"health_check": check})).await;
    fixture_entry(&host, "watched-never", json!({"health_check": check, "restart_policy": "never"})).await;
    let restarted = host.deploy(json!({"slug": "watched"})).await;
    let left = host.deploy(json!({"slug": "watched-never"})).await;
    for id in [&restarted, &left] {
        host.wait_for(id, "connected").await;
    }
    let (_, d) = host.get(&format!("/runtimes/{restarted}")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host.get(&format!("/runtimes/{restarted}")).await.1["health"]["last_check"].is_null() {
        assert!(std::time::Instant::now() < deadline, "no check recorded: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, d) = host.get(&format!("/runtimes/{restarted}")).await;
    assert_eq!(d["health"]["last_check"]["healthy"], true, "{d}");
    assert_eq!(d["health"]["last_check"]["probe"], "mcp-ping", "{d}");

    // The process lives; it just no longer answers.
    for id in [&restarted, &left] {
        call_and_forget(&host, id, "freeze", json!({"count": 600}));
    }
    let failing = receiver.received_where("alert", "health.failing", 2).await;
    assert!(failing.iter().any(|a| a["deployment"] == restarted.as_str()), "{failing:?}");
    let d = host.wait_for(&left, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("restart policy is never"), "{d}");

    back_after_one_restart(&host, &restarted, 60).await;
    let states: Vec<String> = host
        .get(&format!("/events?deployment={restarted}&type=deployment.state"))
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["data"]["to"].as_str().unwrap().to_string())
        .collect();
    let after_connected: Vec<&str> = states.iter().map(String::as_str).skip_while(|s| *s != "unhealthy").collect();
    assert_eq!(after_connected, ["unhealthy", "starting", "running", "connected"], "{states:?}");
    let mut s = host.mcp_session(&restarted).await;
    assert_eq!(s.call_tool("echo", json!({"text": "answering"})).await.unwrap(), "answering");
    for id in [restarted, left] {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_goes_and_comes_back_is_alerted_both_ways_and_reconciled() {
    let receiver = Receiver::start(0).await;
    let mut gate = support::EngineGate::open();
    let socket = gate.socket.display().to_string();
    let host = alerting_host(&receiver, |c| c.backends.get_mut("docker").unwrap().socket = Some(socket.clone())).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;

    gate.close().await;
    let lost = receiver.received_where("alert", "backend.unavailable", 1).await.remove(0);
    assert_eq!(lost["data"]["backend"], "docker", "{lost}");
    assert!(lost["data"]["error"].as_str().unwrap().contains(&socket), "{lost}");
    gate.reopen();
    let back = receiver.received_where("alert", "backend.recovered", 1).await.remove(0);
    assert_eq!(back["data"]["backend"], "docker", "{back}");

    assert_eq!(host.get(&format!("/runtimes/{id}")).await.1["status"], "connected");
    assert_eq!(host.owned_containers().len(), 1, "no orphan, nothing lost");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    assert!(host.owned_containers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_searched_by_level_time_and_text_and_followed() {
    let host = TestHost::start(|_| {}).await;
    let id = host.deploy(json!({"slug": "fixture"})).await;
    host.wait_for(&id, "connected").await;
    let mut s = host.mcp_session(&id).await;
    let lines = [
        r#"{"level":"info","msg":"warming up","time":"2030-01-01T00:00:01Z"}"#,
        r#"{"severity":"ERROR","message":"cache unreachable","ts":"2030-01-01T00:00:02Z"}"#,
        r#"{"level":"fatal","msg":"giving up","time":"2030-01-01T00:00:03Z"}"#,
    ];
    s.call_tool("log_lines", json!({"lines": lines})).await.unwrap();
    s.call_tool("log_lines", json!({"lines": ["a plain complaint"], "stderr": true})).await.unwrap();

    let search = |query: &'static str| {
        let host = &host;
        let id = id.clone();
        async move {
            let (status, answer) = host.get(&format!("/runtimes/{id}/logs?format=json&{query}")).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            answer.as_array().unwrap().clone()
        }
    };
    let messages = |entries: &[serde_json::Value]| -> Vec<String> {
        entries.iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
    };
    let errors = search("level=error").await;
    assert_eq!(messages(&errors), ["cache unreachable", "giving up"]);
    assert_eq!(errors[0]["level"], "error");
    assert_eq!(errors[0]["stream"], "stdout");
    assert_eq!(errors[0]["time"], "2030-01-01T00:00:02Z", "the line's own time");
    let window = search("since=2030-01-01T00:00:01Z&until=2030-01-01T00:00:02Z").await;
    assert_eq!(messages(&window), ["warming up", "cache unreachable"]);
    let plain = search("q=PLAIN").await;
    assert_eq!(messages(&plain), ["a plain complaint"]);
    assert_eq!(plain[0]["stream"], "stderr");
    assert!(plain[0]["time"].as_str().unwrap().starts_with("20"), "the engine's time: {plain:?}");
    let (_, text) = host.get_text(&format!("/runtimes/{id}/logs?level=fatal")).await;
    assert_eq!(text, format!("{}\n", lines[2]));
    for (query, field) in [("level=loud", "level"), ("since=yesterday", "since"), ("format=xml", "format")] {
        let (status, answer) = host.get(&format!("/runtimes/{id}/logs?{query}")).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{answer}");
    }

    // Followed: the matching lines so far, then each new one as it is written.
    let (status, stream) = host.get_stream(&format!("/runtimes/{id}/logs?follow=true&q=marker")).await;
    assert_eq!(status, StatusCode::OK);
    s.call_tool("log_lines", json!({"lines": ["marker one", "noise", "marker two"]})).await.unwrap();
    let seen = read_events(stream, |_, data| data["message"] == "marker two").await;
    let followed: Vec<&str> = seen.iter().map(|(_, data)| data["message"].as_str().unwrap()).collect();
    assert_eq!(followed, ["marker one", "marker two"]);
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_and_http_checks_probe_the_servers_port() {
    let host = TestHost::start(|_| {}).await;
    let fast = |extra: serde_json::Value| {
        let mut check = json!({"interval_seconds": 1, "timeout_seconds": 1, "failure_threshold": 2});
        check.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        check
    };
    fixture_entry(&host, "tcp-checked", json!({"health_check": fast(json!({"type": "tcp"}))})).await;
    let absent = fast(json!({"type": "http", "path": "/absent"}));
    fixture_entry(&host, "http-checked", json!({"health_check": absent, "restart_policy": "never"})).await;
    let tcp = host.deploy(json!({"slug": "tcp-checked"})).await;
    let http = host.deploy(json!({"slug": "http-checked"})).await;
    host.wait_for(&tcp, "connected").await;

    // The fixture answers 404 off its MCP path: failing twice is unhealthy, and `never` leaves it in error.
    let d = host.wait_for(&http, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("HTTP 404"), "{d}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{tcp}")).await;
        let check = &d["health"]["last_check"];
        if check["probe"] == "tcp" && check["healthy"] == true {
            assert_eq!(d["status"], "connected", "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no passing tcp check: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, text) = scrape(&host, &host.admin_token).await;
    let passed = format!("mcp_runtime_health_checks_total{{deployment=\"{tcp}\",kind=\"tcp\",result=\"healthy\"}}");
    assert!(value(&text, &passed).is_some_and(|n| n >= 1.0), "{text}");
    // A check that asks for what cannot be is refused when the entry is stored.
    let bad = json!({"name": "bad", "slug": "bad-check", "source": {"type": "docker", "image": support::fixture_image()},
                     "health_check": {"type": "tcp", "path": "/x"}});
    let (status, answer) = host.post("/catalog", bad).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("health_check.path")));
    for id in [tcp, http] {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}
