//! The plugin host's refusals: grants are deny by default, pins are checked,
//! a plugin must export the world it claims, and the container engine
//! refuses objects the runtime does not own.

mod support;

use mcp_runtime::capabilities::ContainerEngine;
use mcp_runtime::plugins::bindings::container_engine::EngineError;
use mcp_runtime::plugins::{
    Grant, PluginError, PluginHost, PluginKind, PluginLimits, PluginManifest,
};
use mcp_runtime::store::Store;
use std::sync::Arc;

fn manifest(id: &str, kind: PluginKind, path: &str, grants: Vec<Grant>) -> PluginManifest {
    PluginManifest {
        id: id.into(),
        kind,
        path: path.into(),
        sha256: None,
        grants,
        limits: PluginLimits::default(),
        settings: serde_json::json!({}),
    }
}

fn plugin_host(dir: &tempfile::TempDir) -> PluginHost {
    let store = Arc::new(Store::open(&dir.path().join("db.redb")).unwrap());
    PluginHost::new(
        support::repo_root().join("target/test-plugin-cache"),
        store,
        None,
    )
    .unwrap()
}

#[test]
fn an_ungranted_import_is_refused_at_load_naming_the_interface() {
    let dir = tempfile::tempdir().unwrap();
    let host = plugin_host(&dir);
    let docker = manifest(
        "docker",
        PluginKind::RuntimeBackend,
        "docker_backend.wasm",
        vec![Grant::Logging],
    );
    match host.load(&docker, &support::guest_dir()) {
        Err(PluginError::NotGranted { interface, .. }) => assert!(
            interface.starts_with("mcp-runtime:plugin/container-engine"),
            "{interface}"
        ),
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("loaded without its grant"),
    }
    let granted = manifest(
        "docker",
        PluginKind::RuntimeBackend,
        "docker_backend.wasm",
        vec![Grant::Logging, Grant::ContainerEngine],
    );
    host.load(&granted, &support::guest_dir())
        .expect("loads with its grants");
}

#[test]
fn a_pin_mismatch_and_a_wrong_world_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = plugin_host(&dir);
    let mut pinned = manifest(
        "p",
        PluginKind::GuardrailPolicy,
        "pinned_images.wasm",
        vec![],
    );
    pinned.sha256 = Some("0".repeat(64));
    let err = host
        .load(&pinned, &support::guest_dir())
        .err()
        .expect("pin mismatch refused")
        .to_string();
    assert!(err.contains("the manifest pins"), "{err}");

    let wrong = manifest(
        "p",
        PluginKind::RuntimeBackend,
        "pinned_images.wasm",
        vec![],
    );
    let err = host
        .load(&wrong, &support::guest_dir())
        .err()
        .expect("wrong world refused")
        .to_string();
    assert!(
        err.contains("does not export the runtime-backend world"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_refuses_containers_it_does_not_own() {
    let image = support::fixture_image();
    let owner = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    // Carries the test label (for cleanup) but not this runtime's owner label.
    let foreign = support::docker(&[
        "create",
        "--label",
        &format!("{}=1", support::TEST_LABEL),
        image,
    ]);
    let engine = ContainerEngine::connect("/var/run/docker.sock", &owner)
        .await
        .unwrap();
    let refusals = [
        engine.stop_container(&foreign, 1).await,
        engine.start_container(&foreign).await,
        engine.remove_container(&foreign).await,
        engine.inspect_container(&foreign).await.map(drop),
        engine.container_logs(&foreign, 5).await.map(drop),
    ];
    support::docker(&["rm", "-f", &foreign]);
    for refusal in refusals {
        assert!(
            matches!(refusal, Err(EngineError::NotOwned(_))),
            "{refusal:?}"
        );
    }
}
