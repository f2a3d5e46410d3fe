//! The Code Engine backend plugin end to end, against the Code Engine fake:
//! the fake runs each app's image on the local engine, so the app's endpoint
//! really answers MCP through the host's proxy.

use crate::support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{TestHost, CE_API_KEY};

pub fn new_owner() -> String {
    format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// A host whose `ibm_code_engine` backend talks to `fake` with `api_key`.
async fn host_for(fake: &ce_fake::FakeCodeEngine, owner: &str, api_key: &str) -> TestHost {
    let host = TestHost::start(|c| {
        c.owner = owner.to_string();
        support::use_code_engine(c, fake, api_key);
    })
    .await;
    let entry = json!({"name": "Fixture on CE", "slug": "fixture-ce", "guardrails_profile": "restricted",
                       "source": {"type": "docker", "image": support::fixture_image()},
                       "supported_backends": ["docker", "ibm_code_engine"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    host
}

/// The app as Code Engine (the fake) has it, read with a token of our own.
pub async fn ce_app(fake: &ce_fake::FakeCodeEngine, deployment: &str) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    let form = [("grant_type", "urn:ibm:params:oauth:grant-type:apikey"), ("apikey", CE_API_KEY)];
    let token: Value = http
        .post(format!("{}/identity/token", fake.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app = format!("mcp-{}", &deployment[..12]);
    let url = format!("{}/v2/projects/{}/apps/{app}", fake.base_url(), fake.project_id());
    let res = http.get(url).bearer_auth(token["access_token"].as_str().unwrap()).send().await.unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_engine_deployment_lives_and_dies_like_a_docker_one() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let host = host_for(&fake, &owner, CE_API_KEY).await;

    let id =
        host.deploy(json!({"slug": "fixture-ce", "backend": "ibm_code_engine", "resources": {"min_scale": 1}})).await;
    let d = host.wait_for(&id, "connected").await;
    assert!(d["endpoint"].as_str().unwrap().ends_with("/mcp"), "{d}");
    let d = host.wait_for_usage(&id, |u| !u.is_null()).await;
    assert!(d["usage"]["uptime_seconds"].as_i64().is_some_and(|s| s >= 0), "from the instance: {d}");
    assert!(d["usage"]["memory_bytes"].is_null(), "Code Engine's API reports none: {d}");
    // Code Engine reads no image here: its SBOM is unavailable, and the answer says so.
    let (status, answer) = host.get(&format!("/runtimes/{id}/sbom")).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("unavailable"), "{answer}");
    let warned = support::pluck(&d["guardrails_warnings"], "/field");
    for field in ["filesystem.read_only_root", "resources.max_pids", "apparmor", "network.egress_allowed", "resources"]
    {
        assert!(warned.contains(&field), "no warning for {field}: {warned:?}");
    }
    let rounded = d["guardrails_warnings"].as_array().unwrap().iter().find(|w| w["field"] == "resources").unwrap();
    assert!(rounded["message"].as_str().unwrap().contains("0.25 vCPU / 0.5G"), "{rounded}");

    // Limits and scale were set on the app itself.
    let (_, app) = ce_app(&fake, &id).await;
    assert_eq!(
        (app["scale_cpu_limit"].as_str(), app["scale_memory_limit"].as_str()),
        (Some("0.25"), Some("0.5G")),
        "{app}"
    );
    assert_eq!(
        (app["scale_min_instances"].as_i64(), app["managed_domain_mappings"].as_str()),
        (Some(1), Some("local_public"))
    );
    assert_eq!(app["probe_liveness"]["port"], 8080);

    let mut s = host.mcp_session(&id).await;
    assert_eq!(s.call_tool("echo", json!({"text": "from code engine"})).await.unwrap(), "from code engine");

    // A token that expires mid-life is renewed, and stop goes through.
    fake.expire_tokens();
    let (status, d) = host.post(&format!("/runtimes/{id}/stop"), json!({})).await;
    assert_eq!((status, d["status"].as_str()), (StatusCode::OK, Some("stopped")), "{d}");
    let (_, app) = ce_app(&fake, &id).await;
    assert_eq!(
        (app["scale_min_instances"].as_i64(), app["managed_domain_mappings"].as_str()),
        (Some(0), Some("local"))
    );
    assert_eq!(host.post(&format!("/servers/{id}/mcp"), json!({})).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let patches = fake.requests().iter().filter(|r| r.starts_with("PATCH")).count();
    assert_eq!(patches, 1, "stop is one PATCH (with If-Match)");
    assert!(fake.requests().iter().filter(|r| r.ends_with("/identity/token")).count() >= 2, "the token was renewed");

    let (status, d) = host.post(&format!("/runtimes/{id}/start"), json!({})).await;
    assert_eq!((status, d["status"].as_str()), (StatusCode::OK, Some("connected")), "{d}");
    let (_, app) = ce_app(&fake, &id).await;
    assert_eq!(
        (app["scale_min_instances"].as_i64(), app["managed_domain_mappings"].as_str()),
        (Some(1), Some("local_public"))
    );

    let (status, logs) = host.get(&format!("/runtimes/{id}/logs")).await;
    assert_eq!(status, StatusCode::OK);
    let logs = logs.as_str().unwrap();
    assert!(logs.contains("observability.cloud_logs_instance_id") && logs.contains("restarts"), "{logs}");

    // The API key appears nowhere the runtime answers or records.
    let (_, events) = host.get("/events?limit=1000").await;
    let (_, view) = host.get(&format!("/runtimes/{id}")).await;
    let (_, backends) = host.get("/backends").await;
    for text in [events.to_string(), view.to_string(), backends.to_string(), logs.to_string()] {
        assert!(!text.contains(CE_API_KEY), "the API key leaked: {text}");
    }

    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(ce_app(&fake, &id).await.0, StatusCode::NOT_FOUND);
    assert!(host.owned_containers().is_empty(), "{:?}", host.owned_containers());
}

#[tokio::test(flavor = "multi_thread")]
async fn compatibility_agrees_with_the_plugin_and_compose_is_refused() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let host = host_for(&fake, &owner, CE_API_KEY).await;

    let (status, compat) = host.get("/guardrails/restricted/compatibility?backend=ibm_code_engine").await;
    assert_eq!(status, StatusCode::OK, "{compat}");
    let fields = &compat["fields"];
    for ignored in ["filesystem.read_only_root", "resources.max_pids", "apparmor", "network.egress_allowed"] {
        assert_eq!(fields[ignored]["status"], "ignored", "{ignored}: {compat}");
    }
    for enforced in ["capabilities.drop_all", "resources.max_cpu", "resources.max_memory", "seccomp"] {
        assert_eq!(fields[enforced]["status"], "enforced", "{enforced}: {compat}");
    }
    // Learn mode asks for no host filtering: Code Engine cannot watch egress,
    // and says that, not that a filter it was never given is dropped.
    let learning = json!({"name": "learning", "network": {"egress_allowed": true, "egress_audit": true}});
    assert_eq!(host.post("/guardrails", learning).await.0, StatusCode::CREATED);
    let (_, compat_learning) = host.get("/guardrails/learning/compatibility?backend=ibm_code_engine").await;
    let fields = &compat_learning["fields"];
    assert_eq!(fields["network.egress_audit"]["status"], "ignored", "{compat_learning}");
    assert!(
        fields["network.egress_audit"]["reason"].as_str().unwrap().contains("records nothing"),
        "{compat_learning}"
    );
    assert_eq!(fields["network.allowed_hosts"]["status"], "not_set", "{compat_learning}");

    let (status, answer) =
        host.post("/runtimes/deploy", json!({"slug": "fixture-compose", "backend": "ibm_code_engine"})).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("backend")), "{answer}");
    // Code Engine itself serves HTTP only; its plugin has the host bridge a stdio server inside
    // the image (code_engine_builds.rs), and the compatibility answer says so.
    let (_, backends) = host.get("/backends").await;
    let ce = backends.as_array().unwrap().iter().find(|b| b["name"] == "ibm_code_engine").unwrap();
    assert_eq!(ce["capabilities"]["supports_stdio"], false, "{ce}");
    assert_eq!(compat["transports"]["stdio"]["status"], "supported", "{compat}");
    assert!(compat["transports"]["stdio"]["how"].as_str().unwrap().contains("inside the image"), "{compat}");
    assert!(!fake.requests().iter().any(|r| r.starts_with("POST") && r.ends_with("/apps")), "no app was created");
    let (status, answer) = host
        .post(
            "/runtimes/deploy",
            json!({"slug": "fixture-ce", "backend": "ibm_code_engine", "resources": {"cpu": "0.5"}}),
        )
        .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("resources.cpu")),
        "above the profile"
    );
    assert_eq!(host.get("/runtimes").await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_retried_within_bounds_and_never_leave_a_false_state() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let host = host_for(&fake, &owner, CE_API_KEY).await;

    // Rate limits, a server error and a hung call on the way: retried, and it deploys.
    fake.inject(ce_fake::Fault::Status { status: 429, path_contains: "/apps".into() });
    fake.inject(ce_fake::Fault::Hang { path_contains: "/apps".into() });
    fake.inject(ce_fake::Fault::Status { status: 503, path_contains: "/apps".into() });
    let id = host.deploy(json!({"slug": "fixture-ce", "backend": "ibm_code_engine"})).await;
    host.wait_for(&id, "connected").await;
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);

    // More failures than the retries allow: the deployment ends in error, saying why.
    for _ in 0..4 {
        fake.inject(ce_fake::Fault::Status { status: 503, path_contains: "/apps".into() });
    }
    let id = host.deploy(json!({"slug": "fixture-ce", "backend": "ibm_code_engine"})).await;
    let d = host.wait_for(&id, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("after 4 attempts"), "{d}");
    assert_eq!(ce_app(&fake, &id).await.0, StatusCode::NOT_FOUND, "no app was created");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);

    // A wrong API key: the backend's check says so at start, and a deploy is
    // refused at once with a clear error that does not repeat the key.
    let wrong = "wrong-key-do-not-print";
    let other = host_for(&fake, &new_owner(), wrong).await;
    let (_, backends) = other.get("/backends").await;
    let ce = backends.as_array().unwrap().iter().find(|b| b["name"] == "ibm_code_engine").unwrap().clone();
    assert_eq!(ce["available"], false, "{ce}");
    assert!(ce["last_check"].is_string(), "{ce}");
    let (status, answer) =
        other.post("/runtimes/deploy", json!({"slug": "fixture-ce", "backend": "ibm_code_engine"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("IAM refused the API key") && message.contains("BXNIM0415E"), "{message}");
    assert!(!answer.to_string().contains(wrong) && !ce.to_string().contains(wrong), "the key leaked: {answer}");
}

/// The backend is checked every pass: a project Code Engine cannot serve
/// makes it unavailable (an alert), and it comes back by itself (another).
#[tokio::test(flavor = "multi_thread")]
async fn code_engine_that_stops_answering_is_unavailable_then_back_with_alerts() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let receiver = support::webhook::Receiver::start(0).await;
    let url = receiver.url.clone();
    let host = TestHost::start(|c| {
        c.owner = owner.clone();
        support::use_code_engine(c, &fake, CE_API_KEY);
        c.alerts.webhook_url = Some(url);
        c.alerts.webhook_secret = Some(support::webhook::WEBHOOK_SECRET.into());
    })
    .await;
    // More failures than one check's retries: the project read fails once.
    let project = format!("/v2/projects/{}", fake.project_id());
    for _ in 0..4 {
        fake.inject(ce_fake::Fault::Status { status: 503, path_contains: project.clone() });
    }
    let lost = receiver.received_where("alert", "backend.unavailable", 1).await.remove(0);
    assert_eq!(lost["data"]["backend"], "ibm_code_engine", "{lost}");
    assert!(lost["data"]["error"].as_str().unwrap().contains("503"), "{lost}");
    let back = receiver.received_where("alert", "backend.recovered", 1).await.remove(0);
    assert_eq!(back["data"]["backend"], "ibm_code_engine", "{back}");
    let (_, health) = host.get("/health").await;
    let ce = health["backends"].as_array().unwrap().iter().find(|b| b["name"] == "ibm_code_engine").unwrap().clone();
    assert_eq!(ce["available"], true, "{health}");
}

#[tokio::test(flavor = "multi_thread")]
async fn github_sources_are_built_then_deployed_or_report_the_failed_build() {
    let owner = new_owner();
    let fake = support::code_engine_with(&owner, |c| {
        c.build_produces = Some(support::fixture_image().to_string());
        c.polls_until_ready = 1;
    })
    .await;
    let host = TestHost::start(|c| {
        c.owner = owner.clone();
        support::use_code_engine(c, &fake, CE_API_KEY);
        c.approval.enabled = false; // the defaults hold github sources for approval; builds are the point here
    })
    .await;
    for (slug, repo) in [("built", "org/echo-server"), ("broken", "org/bad-image-server")] {
        let entry = json!({"name": slug, "slug": slug, "guardrails_profile": "restricted", "supported_backends": ["ibm_code_engine"],
                           "source": {"type": "github", "repo": repo, "branch": "main", "dockerfile": "Dockerfile"}});
        assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    }

    let id = host.deploy(json!({"slug": "built", "backend": "ibm_code_engine"})).await;
    let d = host.wait_for(&id, "connected").await;
    let image = d["image"].as_str().unwrap();
    assert!(image.starts_with("private.us.icr.io/mcp-images/mcp-") && image.contains("@sha256:"), "{image}");
    let states = support::pluck(&d["recent_events"], "/data/to");
    assert!(states.contains(&"building"), "{states:?}");
    let no_cache = d["guardrails_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["message"].as_str().unwrap().contains("no cache"));
    assert!(no_cache, "{d}");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    let _ = std::process::Command::new("docker").args(["rmi", image.split('@').next().unwrap()]).output();

    let id = host.deploy(json!({"slug": "broken", "backend": "ibm_code_engine"})).await;
    let d = host.wait_for(&id, "error").await;
    assert!(
        d["status_message"].as_str().unwrap().contains("build run")
            && d["status_message"].as_str().unwrap().contains("failed"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_come_from_ibm_cloud_logs_when_an_instance_is_configured() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let base = fake.base_url();
    let host = TestHost::start(|c| {
        c.owner = owner.clone();
        support::use_code_engine(c, &fake, CE_API_KEY);
        let backend = c.backends.get_mut("ibm_code_engine").unwrap();
        let observability = json!({"cloud_logs_instance_id": "4b1c9d2e-logs",
                                   "cloud_monitoring_instance_id": "7d2f0c4b-monitoring"});
        backend.settings.insert("observability".into(), observability);
        backend.settings.insert("logs_url".into(), json!(base));
        backend.settings.insert("monitoring_url".into(), json!(base));
    })
    .await;
    let entry = json!({"name": "Fixture on CE", "slug": "fixture-ce", "source": {"type": "docker", "image": support::fixture_image()},
                       "supported_backends": ["ibm_code_engine"], "guardrails_profile": "restricted"});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let id = host.deploy(json!({"slug": "fixture-ce", "backend": "ibm_code_engine"})).await;
    host.wait_for(&id, "connected").await;

    let (status, logs) = host.get(&format!("/runtimes/{id}/logs?tail=20")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs.as_str().unwrap().contains("mcp-fixture listening"), "the app's own output, via Cloud Logs: {logs}");
    assert!(fake.requests().iter().any(|r| r == "POST /v1/query"));

    // With a Monitoring instance: the app's instances and requests from its platform metrics.
    fake.set_requests(&format!("mcp-{}", &id[..12]), 42);
    let d = host.wait_for_usage(&id, |u| u["requests_total"].as_u64() == Some(42)).await;
    assert_eq!(d["usage"]["instances"].as_u64(), Some(1), "{d}");
    assert!(fake.requests().iter().any(|r| r == "GET /prometheus/api/v1/query"));
    let (_, text) = host.get_text("/metrics").await;
    assert!(
        text.contains(&format!("mcp_runtime_deployment_platform_requests_total{{deployment=\"{id}\"}} 42")),
        "{text}"
    );
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_apps_and_instance_restarts_are_reported() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let host = host_for(&fake, &owner, CE_API_KEY).await;
    let entry = json!({"name": "Broken image", "slug": "broken-image", "guardrails_profile": "restricted",
                       "source": {"type": "docker", "image": "icr.io/ns/bad-image:1"}, "supported_backends": ["ibm_code_engine"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let broken = host.deploy(json!({"slug": "broken-image", "backend": "ibm_code_engine"})).await;
    let d = host.wait_for(&broken, "error").await;
    assert!(d["status_message"].as_str().unwrap().contains("failed: no_revision_ready"), "{d}");

    let id = host.deploy(json!({"slug": "fixture-ce", "backend": "ibm_code_engine"})).await;
    host.wait_for(&id, "connected").await;
    fake.set_restarts(&format!("mcp-{}", &id[..12]), 2);
    let deadline = std::time::Instant::now() + host.config.health.watch_interval() * 4;
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}")).await;
        if d["restart_count"] == 2 {
            // Seen restarted, the server is proven again (`running` a moment) and stays up.
            let d = host.wait_for(&id, "connected").await;
            assert_eq!(d["restart_count"], 2, "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "restarts never reported: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// An HTTP+SSE server on Code Engine is reached as streamable HTTP through
/// the host, and the entry's arguments reach the app.
#[tokio::test(flavor = "multi_thread")]
async fn an_sse_server_on_code_engine_is_bridged_with_its_arguments() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let host = host_for(&fake, &owner, CE_API_KEY).await;
    let entry = json!({"name": "SSE on CE", "slug": "fixture-ce-sse", "guardrails_profile": "restricted",
                       "transport": "sse", "mcp_path": "/sse", "args": ["--sse"],
                       "source": {"type": "docker", "image": support::fixture_image()},
                       "supported_backends": ["ibm_code_engine"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);

    let id = host
        .deploy(json!({"slug": "fixture-ce-sse", "backend": "ibm_code_engine", "resources": {"min_scale": 1}}))
        .await;
    let d = host.wait_for(&id, "connected").await;
    assert!(d["endpoint"].as_str().unwrap().starts_with("sse+http"), "{d}");
    let (_, app) = ce_app(&fake, &id).await;
    assert_eq!(app["run_arguments"], json!(["--sse"]), "{app}");
    let mut s = host.mcp_session(&id).await;
    assert_eq!(s.call_tool("echo", json!({"text": "over sse"})).await.unwrap(), "over sse");
    host.delete(&format!("/runtimes/{id}")).await;
}
