//! Plugins dropped in at runtime: uploaded, ordered into the chain, judging
//! the next deploy, upgraded while checks run, rolled back, kept across a
//! restart, and refused when they import what they were not granted.

use crate::support;

use base64::Engine;
use mcp_runtime::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::TestHost;

fn component(file: &str) -> String {
    let bytes = std::fs::read(support::guest_dir().join(file)).expect("built by `make guests`");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `pinned-images` rule, uploaded as `id`: with `require_digest`, only `@sha256:` images pass.
fn digest_rule(id: &str, require_digest: bool) -> Value {
    json!({"manifest": {"id": id, "kind": "guardrail-policy", "grants": ["logging"],
                        "limits": {"memory_mb": 16, "cpu_ms": 100, "timeout_ms": 1000},
                        "settings": {"require_digest": require_digest}},
           "component": component("pinned_images.wasm")})
}

async fn put(host: &TestHost, path: &str, body: Value) -> (StatusCode, Value) {
    host.request(Method::PUT, path, Some(body)).await
}

/// A deploy of the fixture (tagged, not pinned by digest): 202, or the refusal.
async fn try_deploy(host: &TestHost) -> (StatusCode, Value) {
    host.post("/runtimes/deploy", json!({"slug": "fixture"})).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_rule_judges_the_next_deploy_upgrades_rolls_back_and_survives_a_restart() {
    let mut host = TestHost::start(|_| {}).await;

    let (status, answer) = host.post("/plugins", digest_rule("digest-only", true)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!((answer["active"].as_u64(), answer["world"].as_str()), (Some(1), Some("guardrail-policy")));
    let (status, chain) = put(&host, "/policy-chain", json!({"plugins": ["pinned-images", "digest-only"]})).await;
    assert_eq!((status, &chain["plugins"]), (StatusCode::OK, &json!(["pinned-images", "digest-only"])), "{chain}");
    let (status, refused) = try_deploy(&host).await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("source.image")));
    assert!(refused["error"].as_str().unwrap().contains("digest"), "judged by the upload: {refused}");

    // Kept across a restart: the plugin, its version, and the chain.
    host.stop().await;
    host.resume().await;
    let (_, plugin) = host.get("/plugins/digest-only").await;
    assert_eq!((plugin["source"].as_str(), plugin["version"].as_u64()), (Some("upload"), Some(1)), "{plugin}");
    assert_eq!(try_deploy(&host).await.0, StatusCode::UNPROCESSABLE_ENTITY, "still in the chain");

    // A new version takes over; rolling back restores the old one.
    let (status, upgraded) = put(&host, "/plugins/digest-only", digest_rule("digest-only", false)).await;
    assert_eq!((status, upgraded["active"].as_u64()), (StatusCode::OK, Some(2)), "{upgraded}");
    let (status, accepted) = try_deploy(&host).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    let (status, back) = host.post("/plugins/digest-only/rollback", json!({})).await;
    assert_eq!((status, back["active"].as_u64()), (StatusCode::OK, Some(1)), "{back}");
    assert_eq!(try_deploy(&host).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, versions) = host.get("/plugins/digest-only/versions").await;
    let listed: Vec<(u64, bool)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(listed, [(1, true), (2, false)]);
    assert_eq!(versions["versions"][0]["uploaded_by"], "admin@example.com");

    // Not deleted while the chain uses it; then gone, and out of /plugins.
    assert_eq!(host.delete("/plugins/digest-only").await.0, StatusCode::CONFLICT);
    assert_eq!(put(&host, "/policy-chain", json!({"plugins": ["pinned-images"]})).await.0, StatusCode::OK);
    assert_eq!(host.delete("/plugins/digest-only").await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.get("/plugins/digest-only").await.0, StatusCode::NOT_FOUND);
    let (_, events) = host.get("/events?type=plugin").await;
    let kinds = support::pluck(&events, "/type");
    for kind in ["plugin.uploaded", "plugin.order_set", "plugin.upgraded", "plugin.rolled_back", "plugin.deleted"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_uploads_store_nothing_and_name_what_is_wrong() {
    let host = TestHost::start(|_| {}).await;
    // It imports wasi:http, which the manifest does not grant.
    let probe =
        json!({"manifest": {"id": "probe", "kind": "guardrail-policy"}, "component": component("http_probe.wasm")});
    let (status, answer) = host.post("/plugins", probe).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("component")), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("wasi:http"), "{answer}");
    assert_eq!(host.get("/plugins/probe").await.0, StatusCode::NOT_FOUND);
    let kept = std::fs::read_dir(host.config.data_dir.join("uploaded-plugins")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(kept, 0, "no component kept");

    let mut backend = digest_rule("my-backend", false);
    backend["manifest"]["kind"] = json!("runtime-backend");
    let mut garbled = digest_rule("garbled", false);
    garbled["component"] = json!("not base64!");
    let mut pinned = digest_rule("pinned", false);
    pinned["manifest"]["sha256"] = json!("00".repeat(32));
    // A rule is no backend: it does not export the world the kind names.
    for (body, field) in [(backend, "component"), (garbled, "component"), (pinned, "manifest.sha256")] {
        let (status, answer) = host.post("/plugins", body).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{answer}");
    }
    // A configured plugin is not replaced through the API; ids are unique.
    assert_eq!(host.post("/plugins", digest_rule("pinned-images", true)).await.0, StatusCode::CONFLICT);
    let (status, answer) = put(&host, "/policy-chain", json!({"plugins": ["approval-default"]})).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("policy_chain[0]")));
    // Only admins manage plugins.
    let developer = host.token("dev@example.com", &[Role::Developer]);
    let (status, _) = host.request_as(Some(&developer), Method::POST, "/plugins", Some(digest_rule("x", true))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_during_concurrent_checks_fails_none_and_splits_none() {
    let host = TestHost::start(|_| {}).await;
    assert_eq!(host.post("/plugins", digest_rule("swapped", true)).await.0, StatusCode::CREATED);
    assert_eq!(put(&host, "/policy-chain", json!({"plugins": ["swapped"]})).await.0, StatusCode::OK);
    let checks = (0..8).map(|_| try_deploy(&host));
    let upgrade = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        put(&host, "/plugins/swapped", digest_rule("swapped", false)).await
    };
    let (answers, (status, _)) = tokio::join!(futures_util::future::join_all(checks), upgrade);
    assert_eq!(status, StatusCode::OK);
    let mut accepted = Vec::new();
    for (status, answer) in answers {
        // Each answered by one version whole: refused by the first, or accepted by the second.
        match status {
            StatusCode::UNPROCESSABLE_ENTITY => assert!(answer["error"].as_str().unwrap().contains("digest")),
            StatusCode::ACCEPTED => accepted.push(answer["id"].as_str().unwrap().to_string()),
            other => panic!("a check failed during the upgrade: {other} {answer}"),
        }
    }
    // After the swap, every check is the new version's.
    let (status, answer) = try_deploy(&host).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    accepted.push(answer["id"].as_str().unwrap().to_string());
    for id in accepted {
        assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    }
}

/// `mcp-runtime plugin test` of a rule: whether it passed, and what it printed (stdout, then stderr).
fn plugin_test_of(rule: &str, cases: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-runtime"))
        .args(["plugin", "test"])
        .env("RUNTIME_PLUGIN_CACHE_DIR", support::repo_root().join("target/test-plugin-cache"))
        .arg(support::guest_dir().join(rule))
        .arg("--cases")
        .arg(cases)
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), printed)
}

fn plugin_test(cases: &std::path::Path) -> (bool, String) {
    plugin_test_of("pinned_images.wasm", cases)
}

#[test]
fn plugin_test_runs_a_rules_cases_in_the_sandbox_and_fails_ci_on_a_wrong_one() {
    let (passed, printed) = plugin_test(&support::repo_root().join("policies/pinned-images/cases.yaml"));
    assert!(passed, "{printed}");
    assert!(printed.contains("7 passed, 0 failed"), "{printed}");
    assert!(printed.contains("PASS  latest is refused  (p50 "), "{printed}");

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.yaml");
    let cases = r#"
kind: guardrail-policy
grants: [logging]
runs: 3
cases:
  - name: latest passes, says this author
    entry: {name: app, slug: app, source: {type: docker, image: "ghcr.io/acme/app:latest"}}
    expect: {allowed: true}
"#;
    std::fs::write(&wrong, cases).unwrap();
    let (passed, printed) = plugin_test(&wrong);
    assert!(!passed, "a failing case fails the run: {printed}");
    assert!(printed.contains("FAIL  latest passes, says this author"), "{printed}");
    assert!(printed.contains("expected allowed true, got a denial of Some(\"source.image\")"), "{printed}");
    assert!(printed.contains("0 passed, 1 failed"), "{printed}");

    // A rule that imports what the cases do not grant is refused as the host would.
    let (passed, printed) = plugin_test_of("http_probe.wasm", &wrong);
    assert!(!passed && printed.contains("wasi:http"), "{printed}");
}

#[test]
fn the_shipped_rules_judge_supply_chain_evidence_as_their_cases_say() {
    for (rule, cases, count) in [
        ("no_critical_vulns.wasm", "policies/no-critical-vulns/cases.yaml", 5),
        ("approval_default.wasm", "policies/approval-default/cases.yaml", 7),
    ] {
        let (passed, printed) = plugin_test_of(rule, &support::repo_root().join(cases));
        assert!(passed && printed.contains(&format!("{count} passed, 0 failed")), "{rule}: {printed}");
    }
}

/// Polls `GET /plugins/{id}` until `done` holds (15 s at most).
async fn wait_for_plugin(host: &TestHost, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, plugin) = host.get(&format!("/plugins/{id}")).await;
        if done(&plugin) {
            return plugin;
        }
        assert!(std::time::Instant::now() < deadline, "plugin '{id}' never got there: {plugin}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_dropped_in_a_directory_are_uploaded_then_upgraded_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().to_path_buf();
    let host = TestHost::start(move |c| c.plugin_dropin_dir = Some(watched)).await;
    let manifest = |require_digest: bool| {
        format!(
            "id: dropped\nkind: guardrail-policy\ngrants: [logging]\nsettings: {{require_digest: {require_digest}}}\n"
        )
    };
    // A broken pair next to it is refused and holds nothing up.
    std::fs::write(dir.path().join("broken.yaml"), "id: broken\nkind: guardrail-policy\n").unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"not a component").unwrap();
    let component = std::fs::read(support::guest_dir().join("pinned_images.wasm")).unwrap();
    std::fs::write(dir.path().join("digest.wasm"), &component).unwrap();
    std::fs::write(dir.path().join("digest.yaml"), manifest(true)).unwrap();

    let plugin = wait_for_plugin(&host, "dropped", |p| p["version"] == 1).await;
    assert_eq!(plugin["source"], "upload", "{plugin}");
    assert_eq!(put(&host, "/policy-chain", json!({"plugins": ["dropped"]})).await.0, StatusCode::OK);
    assert_eq!(try_deploy(&host).await.0, StatusCode::UNPROCESSABLE_ENTITY, "judged by the dropped-in rule");

    std::fs::write(dir.path().join("digest.yaml"), manifest(false)).unwrap();
    wait_for_plugin(&host, "dropped", |p| p["version"] == 2).await;
    let (status, accepted) = try_deploy(&host).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the new version judges: {accepted}");
    assert_eq!(host.get("/plugins/broken").await.0, StatusCode::NOT_FOUND);
    let (_, events) = host.get("/events?type=plugin.uploaded&actor=plugin-dropin-dir").await;
    assert_eq!(support::pluck(&events, "/subject"), ["plugin/dropped"]);
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
}

/// The Docker backend's own component, uploaded as a backend of another name.
fn docker_backend(id: &str, settings: Value) -> Value {
    json!({"manifest": {"id": id, "kind": "runtime-backend", "grants": ["logging", "key-value", "container-engine", "source"],
                        "limits": {"memory_mb": 64, "cpu_ms": 2000, "timeout_ms": 60000}, "settings": settings},
           "component": component("docker_backend.wasm")})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_backend_deploys_upgrades_survives_a_restart_and_is_not_deleted_while_used() {
    let mut host = TestHost::start(|_| {}).await;
    // A component that is no backend is refused as one, and nothing is offered.
    let mut not_a_backend = docker_backend("edge", json!({}));
    not_a_backend["component"] = json!(component("pinned_images.wasm"));
    let (status, refused) = host.post("/plugins", not_a_backend).await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("component")));
    assert!(refused["error"].as_str().unwrap().contains("runtime-backend"), "{refused}");
    // A backend's name is taken by the config's.
    assert_eq!(host.post("/plugins", docker_backend("docker", json!({}))).await.0, StatusCode::CONFLICT);

    let (status, uploaded) = host.post("/plugins", docker_backend("edge", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let (_, backends) = host.get("/backends").await;
    let edge = backends.as_array().unwrap().iter().find(|b| b["name"] == "edge").cloned();
    let edge = edge.unwrap_or_else(|| panic!("edge is offered: {backends}"));
    assert_eq!((edge["plugin"].as_str(), edge["available"].as_bool()), (Some("edge"), Some(true)), "{edge}");
    assert_eq!(edge["capabilities"]["supports_stdio"], true, "asked of the uploaded plugin: {edge}");

    let entry = json!({"name": "On edge", "slug": "on-edge", "source": {"type": "docker", "image": support::fixture_image()},
                       "guardrails_profile": "restricted", "supported_backends": ["edge"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let (status, accepted) = host.post("/runtimes/deploy", json!({"slug": "on-edge", "backend": "edge"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    host.wait_for(&id, "connected").await;

    // An upgrade takes over the backend; the deployment is still its own.
    let (status, upgraded) = put(&host, "/plugins/edge", docker_backend("edge", json!({}))).await;
    assert_eq!((status, upgraded["active"].as_u64()), (StatusCode::OK, Some(2)), "{upgraded}");
    host.stop().await;
    host.resume().await;
    let (_, after) = host.get(&format!("/runtimes/{id}")).await;
    assert_eq!((after["backend"].as_str(), after["status"].as_str()), (Some("edge"), Some("connected")), "{after}");

    let (status, refused) = host.delete("/plugins/edge").await;
    assert_eq!(status, StatusCode::CONFLICT, "a deployment runs on it: {refused}");
    assert_eq!(host.delete(&format!("/runtimes/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.delete("/plugins/edge").await.0, StatusCode::NO_CONTENT);
    let (_, backends) = host.get("/backends").await;
    assert!(!support::pluck(&backends, "/name").contains(&"edge"), "{backends}");
    let (_, events) = host.get("/events?type=backend").await;
    assert!(support::pluck(&events, "/type").contains(&"backend.removed"), "{events}");
    assert!(host.owned_containers().is_empty());
}
