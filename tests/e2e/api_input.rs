//! Bad deploy requests, as the Docker backend checks them against a real
//! engine, are answered 4xx naming the field, and nothing is stored or created
//! (the rest of the input checks run in-process: `tests/router/input.rs`).

use crate::support;

use reqwest::StatusCode;
use serde_json::json;
use support::{refused, TestHost};

#[tokio::test(flavor = "multi_thread")]
async fn bad_deploy_requests_name_the_field_and_store_nothing() {
    let host = TestHost::start(|_| {}).await;

    let (status, answer) = host.post_raw("/runtimes/deploy", "{\"slug\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("malformed JSON"));

    let cases = [
        (json!({}), "slug"),
        (json!({"slug": "fixture", "colour": "red"}), "colour"),
        (json!({"slug": "no-such-entry"}), "slug"),
        (json!({"slug": "fixture", "profile": "no-such-profile"}), "profile"),
        (json!({"slug": "fixture", "backend": "ibm_code_engine"}), "backend"),
        (json!({"slug": "fixture", "resources": {"memory": "1g"}}), "resources.memory"),
        (json!({"slug": "fixture", "resources": {"cpu": "4"}}), "resources.cpu"),
        (json!({"slug": "fixture", "resources": {"memory": "lots"}}), "resources.memory"),
        (json!({"slug": "fixture", "resources": {"pids": "many"}}), "resources.pids"),
        (json!({"slug": "fixture", "env": {"BAD NAME": "x"}}), "env.BAD NAME"),
        (json!({"slug": "fixture-elsewhere"}), "source.image"),
        (json!({"slug": "fixture-latest"}), "source.image"),
    ];
    for (body, field) in cases {
        let (status, named) = refused(&host, "/runtimes/deploy", body.clone()).await;
        assert_eq!(named, field, "{body} → {status}");
    }

    let (_, list) = host.get("/runtimes").await;
    assert_eq!(list, json!([]), "a refused request stored a deployment");
    assert!(host.owned_containers().is_empty() && host.owned_networks().is_empty());
}

/// Docker settings that cannot be read refuse every deploy instead of
/// falling back to defaults (which would allow every registry).
#[tokio::test(flavor = "multi_thread")]
async fn unreadable_backend_settings_refuse_every_deploy() {
    let host = TestHost::start(|c| {
        let docker = c.backends.get_mut("docker").unwrap();
        docker.settings.insert("allowed_registries".into(), json!("docker.io"));
    })
    .await;
    let (status, answer) = host.post("/runtimes/deploy", json!({"slug": "fixture"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("settings cannot be read"), "{answer}");
    assert_eq!(host.get("/runtimes").await.1, json!([]));
}
