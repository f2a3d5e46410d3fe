//! Cosign signatures verified against trusted keys before anything runs. A
//! key of the test's own signs the fixture into a real registry on loopback
//! (with the host's own OCI client, as `cosign sign --key` would), and each way
//! a signature can fail — none, another key, an altered payload, a signature
//! of other content — is refused under `require` (restricted) and warned
//! under `warn` (standard), where the default rule holds a missing one.

use crate::support;

use mcp_runtime::auth::Role;
use mcp_runtime::config::TrustedKeyConfig;
use mcp_runtime::oci::{self, Registry};
use mcp_runtime::supply_chain::cosign::{self, PrivateKey};
use mcp_runtime::supply_chain::signatures::attach;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{docker, TestHost};

/// The fixture pushed as `<registry>/<repository>:v1`; its manifest digest.
async fn push(registry: &support::Registry, repository: &str) -> (String, String) {
    let image = format!("{}/{repository}:v1", registry.address);
    docker(&["tag", support::fixture_image(), &image]);
    docker(&["push", &image]);
    docker(&["rmi", &image]);
    let client = Registry::new(reqwest::Client::new(), &registry.address, None);
    let manifest = client.manifest(repository, "v1").await.unwrap().expect("pushed");
    (image, manifest.digest)
}

/// Signs `signed_digest` as `image`'s content with `key` and attaches it to `digest`'s signatures.
async fn sign(registry: &support::Registry, image: &str, digest: &str, signed_digest: &str, key: &PrivateKey) {
    let payload = cosign::payload(image_ref::repository(image), signed_digest);
    attach_raw(registry, image, digest, &payload, &key.sign(&payload)).await;
}

async fn attach_raw(registry: &support::Registry, image: &str, digest: &str, payload: &[u8], signature: &str) {
    let client = Registry::new(reqwest::Client::new(), &registry.address, None);
    attach(&client, &oci::repository_path(image), digest, payload, signature).await.unwrap();
}

fn entry(slug: &str, image: &str) -> Value {
    json!({"name": slug, "slug": slug, "supported_backends": ["docker"], "source": {"type": "docker", "image": image}})
}

async fn deploy(host: &TestHost, token: &str, slug: &str, profile: &str) -> (StatusCode, Value) {
    let body = json!({"slug": slug, "profile": profile});
    host.request_as(Some(token), Method::POST, "/runtimes/deploy", Some(body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_valid_signature_by_a_trusted_key_passes_require_and_warn_says_what_is_wrong() {
    let registry = support::Registry::start().await;
    let trusted = PrivateKey::generate();
    let stranger = PrivateKey::generate();
    let (signed, digest) = push(&registry, "signed/fixture").await;
    sign(&registry, &signed, &digest, &digest, &trusted).await;
    let (unsigned, _) = push(&registry, "unsigned/fixture").await;
    let (wrong_key, _) = push(&registry, "wrong-key/fixture").await;
    sign(&registry, &wrong_key, &digest, &digest, &stranger).await;
    let (tampered, _) = push(&registry, "tampered/fixture").await;
    let payload = cosign::payload(image_ref::repository(&tampered), &digest);
    let signature = trusted.sign(&payload);
    let altered = cosign::payload("127.0.0.1:1/someone-else", &digest);
    attach_raw(&registry, &tampered, &digest, &altered, &signature).await;
    let (other_content, _) = push(&registry, "other-content/fixture").await;
    let elsewhere = oci::digest_of(b"another image's manifest");
    sign(&registry, &other_content, &digest, &elsewhere, &trusted).await;

    let (address, pem) = (registry.address.clone(), trusted.public().to_pem());
    let host = TestHost::start(|c| {
        let docker = c.backends.get_mut("docker").unwrap();
        docker.settings.insert("allowed_registries".into(), json!(["127.0.0.1:5000", address.clone()]));
        c.supply_chain.trusted_keys = vec![TrustedKeyConfig {
            name: "test-release".into(),
            key: Some(pem),
            key_file: None,
            images: vec![address],
            entries: vec![],
        }];
    })
    .await;
    for (slug, image) in [
        ("signed", &signed),
        ("unsigned", &unsigned),
        ("wrong-key", &wrong_key),
        ("tampered", &tampered),
        ("other-content", &other_content),
    ] {
        assert_eq!(host.post("/catalog", entry(slug, image)).await.0, StatusCode::CREATED);
    }
    let dave = host.token_in("dave", &[Role::Developer], &[]);

    // Valid: it runs, and its posture names the key.
    let (status, answer) = deploy(&host, &dave, "signed", "restricted").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let d = host.wait_for(&id, "connected").await;
    assert_eq!(
        d["request"]["evidence"]["signature"],
        json!({"mode": "require", "outcome": "valid", "key": "test-release"})
    );
    let (_, p) = host.get(&format!("/runtimes/{id}/posture")).await;
    assert_eq!(
        (p["signature"]["outcome"].as_str(), p["signature"]["key"].as_str()),
        (Some("valid"), Some("test-release"))
    );
    let page = host.admin_page(&format!("/admin/runtimes/{id}")).await;
    assert!(page.contains("valid (key test-release)"), "{page}");

    // Each failure is refused under require, naming the field and why, and nothing is stored.
    let refusals = [
        ("unsigned", "no signature was found"),
        ("wrong-key", "signed by none of the trusted keys (test-release)"),
        // An altered payload and another key's signature look the same to a verifier.
        ("tampered", "signed by none of the trusted keys (test-release)"),
        ("other-content", &format!("key test-release signed {elsewhere}, not this image's {digest}")),
    ];
    for (slug, why) in refusals {
        let (status, answer) = deploy(&host, &dave, slug, "restricted").await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("supply_chain.signature")),
            "{slug}: {answer}"
        );
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(why) && error.contains("profile 'restricted' requires a valid signature"),
            "{slug}: {error}"
        );
    }
    let (_, runtimes) = host.get("/runtimes").await;
    assert_eq!(runtimes.as_array().unwrap().len(), 1, "refused deploys store nothing: {runtimes}");

    // Under warn each one goes on with a warning; a missing one waits for the security team.
    let (status, held) = deploy(&host, &dave, "unsigned", "standard").await;
    assert_eq!((status, held["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{held}");
    let (_, a) = host.get(&format!("/approvals/{}", held["approval_id"].as_str().unwrap())).await;
    assert_eq!(a["approvers"], json!(["group:security-team"]), "{a}");
    assert!(
        a["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().starts_with("signature missing")),
        "{a}"
    );
    assert_eq!((a["signature"]["outcome"].as_str(), a["signature"]["mode"].as_str()), (Some("missing"), Some("warn")));
    let page = host.admin_page("/admin/approvals").await;
    assert!(page.contains("missing, mode warn"), "{page}");
    for (slug, why) in &refusals[1..] {
        let (status, answer) = deploy(&host, &dave, slug, "standard").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{slug}: {answer}");
        let warned =
            answer["guardrails_warnings"].as_array().unwrap().iter().find(|w| w["field"] == "supply_chain.signature");
        assert!(warned.is_some_and(|w| w["message"].as_str().unwrap().contains(why)), "{slug}: {answer}");
        assert_eq!(answer["status"], "pending", "an invalid signature warns; only a missing one is held: {answer}");
        host.delete(&format!("/runtimes/{}", answer["id"].as_str().unwrap())).await;
    }
    // Off: nothing is asked of it.
    let (status, answer) = deploy(&host, &dave, "unsigned", "unrestricted").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (_, d) = host.get(&format!("/runtimes/{}", answer["id"].as_str().unwrap())).await;
    assert_eq!(d["request"]["evidence"]["signature"]["outcome"], "not_checked", "{d}");
    for id in [id, held["id"].as_str().unwrap().to_string(), answer["id"].as_str().unwrap().to_string()] {
        host.delete(&format!("/runtimes/{id}")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_host_builds_carries_its_signature_and_require_holds_builds_to_it() {
    let mirrors = support::package_mirrors::PackageMirrors::start().await;
    let keys = tempfile::tempdir().unwrap();
    let signing = PrivateKey::generate();
    let key_file = keys.path().join("builds.key");
    std::fs::write(&key_file, signing.to_pem()).unwrap();
    let trusted = TrustedKeyConfig {
        name: "builds".into(),
        key: Some(signing.public().to_pem()),
        key_file: None,
        images: vec!["mcp-runtime.local".into()],
        entries: vec![],
    };
    let (npm, signed_by_host) = (mirrors.npm.clone(), trusted.clone());
    let host = TestHost::start(|c| {
        c.builders.npm.registry = npm;
        c.supply_chain.trusted_keys = vec![signed_by_host];
        c.supply_chain.signing_key =
            Some(mcp_runtime::config::SigningKeyConfig { name: "builds".into(), key_file: key_file.clone() });
    })
    .await;
    let entry = crate::supply_chain::package("mkdirp", "npm", support::package_mirrors::NPM_VULNERABLE);
    assert_eq!(host.post("/catalog", entry.clone()).await.0, StatusCode::CREATED);
    let id = host.deploy(json!({"slug": "mkdirp"})).await;
    let built = |d: &Value| !["pending", "building"].contains(&d["status"].as_str().unwrap_or("pending"));
    let d = crate::supply_chain::once(&host, &id, "", built).await;
    assert_eq!(
        d["request"]["evidence"]["signature"],
        json!({"mode": "require", "outcome": "valid", "key": "builds"}),
        "{d}"
    );
    let content = d["build"]["content"].as_str().expect("the built image's id");
    let (_, events) = host.get(&format!("/events?deployment={id}&type=image.signed")).await;
    let signed = &events[0]["data"];
    assert_eq!((signed["content"].as_str(), signed["kept_in"].as_str()), (Some(content), Some("store")), "{events}");
    host.delete(&format!("/runtimes/{id}")).await;
    drop(host);

    // A host that trusts the key but signs nothing: the build's signature is missing, and require refuses it.
    let npm = mirrors.npm.clone();
    let host = TestHost::start(|c| {
        c.builders.npm.registry = npm;
        c.supply_chain.trusted_keys = vec![trusted];
    })
    .await;
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let id = host.deploy(json!({"slug": "mkdirp"})).await;
    let d = crate::supply_chain::once(&host, &id, "", |d| d["status"] == "error").await;
    let why = d["status_message"].as_str().unwrap();
    assert!(
        why.starts_with("supply_chain.signature: no signature was found") && why.contains("requires a valid signature"),
        "{d}"
    );
    host.delete(&format!("/runtimes/{id}")).await;
}
