//! What a pulled image installs, read from its package databases through the
//! backend (the engine capability streams the image's files; nothing runs)
//! and judged offline by real advisories before it starts: an image carrying
//! minimist 1.2.5 (critical) and Jinja2 3.1.2 (medium) is held for the
//! security team with its findings on the approval and its SBOM served; the
//! same content deployed again is held when the deploy is checked (kept by
//! digest); the fixed versions run.

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{docker, TestHost};

/// The fixture with an npm package, a Python distribution and a dpkg database
/// inside (their real metadata files), pushed as `<registry>/contents/<name>:v1`.
fn push_image_installing(registry: &str, name: &str, minimist: &str, jinja: &str) -> String {
    let context = tempfile::tempdir().unwrap();
    let root = context.path().join("rootfs");
    let files = [
        ("app/node_modules/minimist/package.json".to_string(), format!(r#"{{"name": "minimist", "version": "{minimist}", "main": "index.js"}}"#)),
        (
            format!("usr/lib/python3/dist-packages/Jinja2-{jinja}.dist-info/METADATA"),
            format!("Metadata-Version: 2.1\nName: Jinja2\nVersion: {jinja}\nSummary: A very fast and expressive template engine.\n\nJinja is a fast...\n"),
        ),
        (
            "var/lib/dpkg/status".to_string(),
            "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nArchitecture: amd64\n\n".to_string(),
        ),
        ("etc/os-release".to_string(), "ID=debian\nVERSION_ID=\"12\"\n".to_string()),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let dockerfile = format!("FROM {}\nCOPY rootfs/ /\n", support::fixture_image());
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    let image = format!("{registry}/contents/{name}:v1");
    let label = format!("{}=1", support::TEST_LABEL);
    docker(&["build", "-q", "--label", &label, "-t", &image, context.path().to_str().unwrap()]);
    docker(&["push", &image]);
    docker(&["rmi", &image]);
    image
}

async fn deploy(host: &TestHost, token: &str, slug: &str) -> Value {
    let body = json!({"slug": slug});
    let (status, answer) = host.request_as(Some(token), Method::POST, "/runtimes/deploy", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pulled_images_packages_are_read_judged_and_listed_before_it_runs() {
    let registry = support::Registry::start().await;
    let vulnerable = push_image_installing(&registry.address, "vulnerable", "1.2.5", "3.1.2");
    let fixed = push_image_installing(&registry.address, "fixed", "1.2.6", "3.1.3");
    let osv = crate::supply_chain::osv_directory();
    let (address, dir) = (registry.address.clone(), osv.path().to_path_buf());
    let host = TestHost::start(|c| {
        let docker = c.backends.get_mut("docker").unwrap();
        docker.settings.insert("allowed_registries".into(), json!(["127.0.0.1:5000", address]));
        c.supply_chain.osv_dir = Some(dir);
    })
    .await;
    for (slug, image) in [("vulnerable", &vulnerable), ("fixed", &fixed)] {
        let entry = json!({"name": slug, "slug": slug, "supported_backends": ["docker"], "guardrails_profile": "restricted",
                           "source": {"type": "docker", "image": image}});
        assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    }
    let dave = host.token_in("dave", &[Role::Developer], &[]);

    // Nothing is known of it when checked; once pulled, what it installs holds it.
    let answer = deploy(&host, &dave, "vulnerable").await;
    assert_eq!(answer["status"], "pending", "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let d = host.wait_for(&id, "awaiting_approval").await;
    assert_eq!(
        d["status_message"],
        "held for approval: the image installs 2 known vulnerabilities (1 critical, 1 medium)"
    );
    let findings: Vec<(&str, &str, &str)> = d["vulnerabilities"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["advisory"].as_str().unwrap(), f["package"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(
        findings,
        [("GHSA-xvch-5gv4-984h", "minimist", "critical"), ("GHSA-h5c8-rqwp-cp95", "jinja2", "medium")]
    );
    let (_, pending) = host.get("/approvals?status=pending").await;
    let a = pending.as_array().unwrap().iter().find(|a| a["deployment_id"] == id.as_str()).expect("held").clone();
    assert_eq!(
        (&a["approvers"], &a["scan_results"]["counts"]),
        (&json!(["group:security-team"]), &json!({"critical": 1, "medium": 1}))
    );
    // Its SBOM, from the image's own databases, each package with its purl.
    let (status, sbom) = host.get(&format!("/runtimes/{id}/sbom")).await;
    assert_eq!(status, StatusCode::OK, "{sbom}");
    let purls: Vec<&str> = sbom["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap()).collect();
    assert_eq!(purls, ["pkg:deb/debian/bash@5.2.15-2+b2", "pkg:npm/minimist@1.2.5", "pkg:pypi/jinja2@3.1.2"], "{sbom}");
    // Approvers read it on the request too, and the audit trail names the records that judged it.
    let (status, on_request) = host.get(&format!("/approvals/{}/sbom", a["id"].as_str().unwrap())).await;
    assert_eq!((status, &on_request["components"]), (StatusCode::OK, &sbom["components"]));
    let (_, events) = host.get(&format!("/events?deployment={id}&type=deployment.judged")).await;
    assert_eq!(events[0]["data"]["database"], a["scan_results"]["database"]["digest"], "{events}");
    // Approved, it runs the digest that was read.
    let carol = host.token_in("carol", &[Role::Approver], &["security-team"]);
    let path = format!("/approvals/{}/approve", a["id"].as_str().unwrap());
    assert_eq!(host.request_as(Some(&carol), Method::POST, &path, Some(json!({}))).await.0, StatusCode::OK);
    let d = host.wait_for(&id, "connected").await;
    assert!(d["image"].as_str().unwrap().contains("@sha256:"), "{d}");

    // The same content again: known by its digest, held when the deploy is checked.
    let again = deploy(&host, &dave, "vulnerable").await;
    assert_eq!(again["status"], "awaiting_approval", "{again}");
    let (_, a) = host.get(&format!("/approvals/{}", again["approval_id"].as_str().unwrap())).await;
    assert_eq!(a["scan_results"]["counts"], json!({"critical": 1, "medium": 1}), "{a}");

    // The fixed versions: judged, nothing found, and it runs.
    let fine = deploy(&host, &dave, "fixed").await;
    let fine = fine["id"].as_str().unwrap().to_string();
    let d = host.wait_for(&fine, "connected").await;
    assert_eq!(
        (&d["vulnerabilities"]["findings"], d["vulnerabilities"]["database"]["records"].as_u64()),
        (&json!([]), Some(2)),
        "{d}"
    );
    let (_, p) = host.get(&format!("/runtimes/{fine}/posture")).await;
    assert_eq!(p["vulnerabilities"]["counts"], json!({}), "{p}");
    for id in [id, again["id"].as_str().unwrap().to_string(), fine] {
        host.delete(&format!("/runtimes/{id}")).await;
    }
}
