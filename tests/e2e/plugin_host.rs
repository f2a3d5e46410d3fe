//! The plugin host's refusals: grants are deny by default, pins are checked,
//! a plugin must export the world it claims, and the container engine
//! refuses objects the runtime does not own.

use crate::support;

use mcp_runtime::capabilities::ContainerEngine;
use mcp_runtime::contract::container_engine::EngineError;
use mcp_runtime::contract::types::LogQuery;
use mcp_runtime::plugins::{Grant, PluginError, PluginHost, PluginKind, PluginLimits, PluginManifest};
use mcp_runtime::store::Store;
use std::sync::Arc;

fn manifest(id: &str, kind: PluginKind, path: &str, grants: Vec<Grant>) -> PluginManifest {
    PluginManifest {
        id: id.into(),
        kind,
        path: path.into(),
        sha256: None,
        grants,
        allowed_hosts: vec![],
        limits: PluginLimits::default(),
        settings: serde_json::json!({}),
    }
}

fn plugin_host(dir: &tempfile::TempDir) -> PluginHost {
    let store = Arc::new(Store::open(&dir.path().join("db.redb")).unwrap());
    PluginHost::new(support::repo_root().join("target/test-plugin-cache"), store, None, None).unwrap()
}

#[test]
fn an_ungranted_import_is_refused_at_load_naming_the_interface() {
    let dir = tempfile::tempdir().unwrap();
    let host = plugin_host(&dir);
    let docker = manifest("docker", PluginKind::RuntimeBackend, "docker_backend.wasm", vec![Grant::Logging]);
    match host.load(&docker, &support::guest_dir()) {
        Err(PluginError::NotGranted { interface, .. }) => {
            assert!(interface.starts_with("mcp-runtime:plugin/container-engine"), "{interface}")
        }
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("loaded without its grant"),
    }
    // Each capability is denied until granted: building from source too.
    let no_source = vec![Grant::Logging, Grant::ContainerEngine];
    match host
        .load(&manifest("docker", PluginKind::RuntimeBackend, "docker_backend.wasm", no_source), &support::guest_dir())
    {
        Err(PluginError::NotGranted { interface, .. }) => {
            assert!(interface.starts_with("mcp-runtime:plugin/source"), "{interface}")
        }
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("loaded without the source grant"),
    }
    let granted = manifest(
        "docker",
        PluginKind::RuntimeBackend,
        "docker_backend.wasm",
        vec![Grant::Logging, Grant::ContainerEngine, Grant::Source],
    );
    host.load(&granted, &support::guest_dir()).expect("loads with its grants");
}

#[test]
fn a_pin_mismatch_and_a_wrong_world_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = plugin_host(&dir);
    let mut pinned = manifest("p", PluginKind::GuardrailPolicy, "pinned_images.wasm", vec![]);
    pinned.sha256 = Some("0".repeat(64));
    let err = host.load(&pinned, &support::guest_dir()).err().expect("pin mismatch refused").to_string();
    assert!(err.contains("the manifest pins"), "{err}");

    let wrong = manifest("p", PluginKind::RuntimeBackend, "pinned_images.wasm", vec![]);
    let err = host.load(&wrong, &support::guest_dir()).err().expect("wrong world refused").to_string();
    assert!(err.contains("does not export the runtime-backend world"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_refuses_containers_it_does_not_own() {
    let image = support::fixture_image();
    let owner = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    // Carries the test label (for cleanup) but not this runtime's owner label.
    let foreign = support::docker(&["create", "--label", &format!("{}=1", support::TEST_LABEL), image]);
    let engine = ContainerEngine::new("/var/run/docker.sock", &owner, Default::default()).unwrap();
    engine.check().await.expect("the engine answers");
    let refusals = [
        engine.stop_container(&foreign, 1).await,
        engine.start_container(&foreign).await,
        engine.remove_container(&foreign).await,
        engine.inspect_container(&foreign).await.map(drop),
        engine.container_logs(&foreign, &LogQuery { tail: 5, since: None, until: None }).await.map(drop),
    ];
    support::docker(&["rm", "-f", &foreign]);
    for refusal in refusals {
        assert!(matches!(refusal, Err(EngineError::NotOwned(_))), "{refusal:?}");
    }
}

fn sample_policy_input() -> mcp_runtime::contract::policy::PolicyInput {
    use mcp_runtime::contract::types::{
        BackendCapabilities, DeployRequest, IsolationLevel, ObservabilityType, RequestedResources,
    };
    let entry: mcp_runtime::catalog::CatalogEntry =
        serde_yaml_ng::from_str("{name: S, slug: s, source: {type: docker, image: 'x/y:1'}}").unwrap();
    let profile = mcp_runtime::guardrails::presets()["restricted"].clone();
    let resources = RequestedResources {
        cpu_millis: None,
        memory_bytes: None,
        pids: None,
        min_scale: None,
        max_scale: None,
        visibility: None,
    };
    mcp_runtime::contract::policy::PolicyInput {
        request: DeployRequest {
            deployment_id: "d".into(),
            backend: "docker".into(),
            entry: (&entry).into(),
            env: vec![],
            resources,
            requested_by: None,
        },
        profile: (&profile).into(),
        capabilities: BackendCapabilities {
            supports_compose: false,
            supports_readonly_fs: true,
            supports_custom_capabilities: true,
            supports_capability_add: true,
            supports_build_cache: true,
            supports_egress_host_filtering: false,
            supports_pid_limits: true,
            supports_stdio: true,
            network_isolation_level: IsolationLevel::Container,
            observability_type: ObservabilityType::Native,
            max_cpu_millis: 0,
            max_memory_bytes: 0,
            max_timeout_seconds: 0,
        },
        effective: mcp_runtime::contract::initial_guardrails(&profile),
        warnings: vec![],
    }
}

/// Loads the HTTP probe with `grants`/`allowed_hosts`, has it GET `url`; what it saw.
async fn probe_http(
    host: &PluginHost,
    grants: Vec<Grant>,
    allowed: &[String],
    url: &str,
) -> Result<String, PluginError> {
    let mut m = manifest("http-probe", PluginKind::GuardrailPolicy, "http_probe.wasm", grants);
    m.allowed_hosts = allowed.to_vec();
    m.settings = serde_json::json!({"url": url});
    let plugin = host.load(&m, &support::guest_dir())?;
    match plugin.evaluate(&sample_policy_input(), Default::default()).await? {
        Err(denial) => Ok(denial.reason),
        Ok(_) => panic!("the probe always reports through a denial"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outgoing_http_reaches_only_allowed_hosts() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello from loopback" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://127.0.0.1:{port}/hello");
    let dir = tempfile::tempdir().unwrap();
    let host = plugin_host(&dir);
    let http = vec![Grant::OutgoingHttp];

    let seen = probe_http(&host, http.clone(), &[format!("127.0.0.1:{port}")], &url).await.unwrap();
    assert_eq!(seen, "200 hello from loopback");

    let seen = probe_http(&host, http.clone(), &[format!("127.0.0.1:{}", port + 1)], &url).await.unwrap();
    assert!(seen.contains("HttpRequestDenied"), "another port is not allowed: {seen}");

    // An allowed name that resolves to an internal address is refused.
    let named = format!("http://localhost:{port}/hello");
    let seen = probe_http(&host, http.clone(), &[format!("localhost:{port}")], &named).await.unwrap();
    assert!(seen.contains("HttpRequestDenied"), "{seen}");

    match probe_http(&host, vec![], &[], &url).await {
        Err(PluginError::NotGranted { interface, .. }) => assert!(interface.starts_with("wasi:http/"), "{interface}"),
        other => panic!("loaded without the outgoing-http grant: {other:?}"),
    }
}
