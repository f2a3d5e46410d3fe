//! The package builder's guarantees, against the real engine and the
//! mirrors: the lock pins every package (an altered hash fails the build
//! naming the package), a build reaches only the package index (another host
//! fails it, named), install scripts run only when allowed and then a person
//! approves, the image is reused until the base image changes, and a delete
//! during a build stops it and leaves nothing behind.

use std::time::Duration;

use crate::support;

use mcp_runtime::events::{EventData, PackageLock};
use mcp_runtime::packages::Lock;
use mcp_runtime::store::{NewEvent, Store, Table};
use serde_json::{json, Value};
use sha2::Digest;
use support::package_mirrors::{PackageMirrors, NPM_SERVER, PYPI_SERVER};
use support::{derived_base, TestHost};

const PYTHON_BASE: &str = "mcp-runtime/python:latest";

const BUILD_TIME: Duration = Duration::from_secs(300);

fn entry(slug: &str, ecosystem: &str, (name, version): (&str, &str)) -> Value {
    json!({"name": slug, "slug": slug, "transport": "stdio", "guardrails_profile": "restricted",
           "supported_backends": ["docker"],
           "source": {"type": "package", "ecosystem": ecosystem, "name": name, "version": version}})
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_reused_until_the_base_changes_and_an_altered_lock_fails_naming_the_package() {
    let mirrors = PackageMirrors::start().await;
    let owner = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let (first_base, second_base) = (derived_base(&owner, "a", PYTHON_BASE), derived_base(&owner, "b", PYTHON_BASE));
    let base = format!("mcp-runtime-test/python-base:{owner}");
    support::docker(&["tag", &first_base, &base]);
    let (pypi, base_image, label) = (mirrors.pypi.clone(), base.clone(), owner.clone());
    let mut host = TestHost::start(move |c| {
        c.owner = label;
        c.builders.pypi.index_url = pypi;
        c.builders.pypi.base_image = base_image;
    })
    .await;
    assert_eq!(host.post("/catalog", entry("time", "pypi", PYPI_SERVER)).await.0, 201);

    let first = host.deploy(json!({"slug": "time"})).await;
    let d = host.wait_for_within(&first, "connected", BUILD_TIME).await;
    let (image, lock) = (d["image"].as_str().unwrap().to_string(), d["build"]["lock"].clone());
    assert_eq!(d["build"]["cache"], "miss", "{d}");
    let again = host.deploy(json!({"slug": "time"})).await;
    let d = host.wait_for_within(&again, "connected", BUILD_TIME).await;
    assert_eq!((&d["build"]["cache"], &d["image"]), (&json!("hit"), &json!(image)), "{d}");

    // A new base image (its id changed under the same name): built again, on it.
    support::docker(&["tag", &second_base, &base]);
    let rebuilt = host.deploy(json!({"slug": "time"})).await;
    let d = host.wait_for_within(&rebuilt, "connected", BUILD_TIME).await;
    assert_eq!(d["build"]["cache"], "miss", "{d}");
    assert_ne!(d["image"], json!(image), "named by the new base: {d}");
    assert_eq!(d["build"]["lock"], lock, "the same tree, locked again on the new base");
    let built_on_b = d["image"].as_str().unwrap().to_string();

    // Someone alters a hash in the stored lock; the cached image is gone.
    host.stop().await;
    let store = Store::open(&host.config.data_dir.join(mcp_runtime::store::FILE_NAME)).unwrap();
    let locks: Vec<(String, Lock)> = store.list_keyed(Table::PackageLocks).unwrap();
    // Every lock of the package (one per base image it was built on).
    for (key, mut altered) in locks.into_iter().filter(|(k, _)| k.contains(PYPI_SERVER.0)) {
        let victim = altered.packages.iter_mut().find(|p| p.name == "tzdata").expect("tzdata is in the tree");
        let forged = format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"not tzdata")));
        altered.document = altered.document.replace(&victim.integrity, &forged);
        victim.integrity = forged;
        let event = NewEvent::new(
            "test".into(),
            EventData::PackageLocked(PackageLock {
                package: "altered by the test".into(),
                base_image: altered.base_image.clone(),
                digest: altered.digest.clone(),
                packages: altered.packages.len(),
            }),
        );
        store.put(Table::PackageLocks, &key, &altered, event).unwrap();
    }
    drop(store);
    support::docker(&["rmi", "-f", &built_on_b]);
    host.resume().await;
    let tampered = host.deploy(json!({"slug": "time"})).await;
    let failed = host.wait_for_within(&tampered, "error", Duration::from_secs(120)).await;
    let message = failed["status_message"].as_str().unwrap();
    assert!(message.contains("tzdata@") && message.contains("does not match the lock"), "{message}");
}

/// A PyPI index whose files are served from a second address, which the
/// build may not reach: the index's own host is all a build is allowed.
async fn index_with_files_elsewhere() -> String {
    use axum::routing::get;
    let wheel_name = format!("mcp_server_time-{}-py3-none-any.whl", PYPI_SERVER.1);
    let wheel = std::fs::read(support::repo_root().join(".venv/package-mirror/pypi").join(&wheel_name)).unwrap();
    let hash = hex::encode(sha2::Sha256::digest(&wheel));
    let files = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files_at = files.local_addr().unwrap();
    let served = wheel.clone();
    let files_app = axum::Router::new().route("/files/{name}", get(move || async move { served.clone() }));
    tokio::spawn(async move { axum::serve(files, files_app).await.unwrap() });
    let page = format!(
        "<html><body><a href=\"http://{files_at}/files/{wheel_name}#sha256={hash}\">{wheel_name}</a></body></html>"
    );
    let index = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let index_at = index.local_addr().unwrap();
    let index_app = axum::Router::new()
        .route("/simple/mcp-server-time/", get(move || async move { axum::response::Html(page.clone()) }));
    tokio::spawn(async move { axum::serve(index, index_app).await.unwrap() });
    format!("http://{index_at}/simple/")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_reaches_only_the_package_index() {
    let index = index_with_files_elsewhere().await;
    let files_host = {
        let page = reqwest::get(format!("{index}mcp-server-time/")).await.unwrap().text().await.unwrap();
        page.split("http://").nth(1).unwrap().split('/').next().unwrap().to_string()
    };
    let host = TestHost::start(move |c| c.builders.pypi.index_url = index).await;
    // The host reads the wheel's console scripts itself; only the build is confined.
    assert_eq!(host.post("/catalog", entry("time", "pypi", PYPI_SERVER)).await.0, 201);
    let id = host.deploy(json!({"slug": "time"})).await;
    let failed = host.wait_for_within(&id, "error", BUILD_TIME).await;
    let message = failed["status_message"].as_str().unwrap();
    assert!(message.contains(&files_host) && message.contains("not a package index"), "{message}");
    let (_, log) = host.get_text(&format!("/runtimes/{id}/build-logs")).await;
    assert!(log.contains("egress only to") && log.contains("build failed"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn install_scripts_run_only_when_allowed_and_then_a_person_approves() {
    // A project published only as sources: installing it runs its build.
    let sources = tempfile::tempdir().unwrap();
    std::fs::write(sources.path().join("built_from_source-1.0.0.tar.gz"), b"an sdist").unwrap();
    let mirrors = PackageMirrors::start_with(&[sources.path()]).await;
    let (npm, pypi) = (mirrors.npm.clone(), mirrors.pypi.clone());
    let host = TestHost::start(move |c| {
        c.builders.npm.registry = npm;
        c.builders.pypi.index_url = pypi;
    })
    .await;
    let (status, field) =
        support::refused(&host, "/catalog", entry("sdist", "pypi", ("built-from-source", "1.0.0"))).await;
    assert_eq!((status.as_u16(), field.as_str()), (422, "source.allow_install_scripts"));

    let mut allowed = entry("everything", "npm", NPM_SERVER);
    allowed["source"]["allow_install_scripts"] = json!(true);
    assert_eq!(host.post("/catalog", allowed).await.0, 201);
    let id = host.deploy(json!({"slug": "everything"})).await;
    let held = host.wait_for(&id, "awaiting_approval").await;
    assert_eq!(held["guardrails_applied"]["install_scripts"], true, "the deployment shows it: {held}");
    let (_, approvals) = host.get("/approvals").await;
    let reasons = approvals.to_string();
    assert!(reasons.contains("allow_install_scripts"), "{reasons}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_during_a_build_stops_it_and_leaves_nothing() {
    let mirrors = PackageMirrors::start().await;
    let npm = mirrors.npm.clone();
    let host = TestHost::start(move |c| c.builders.npm.registry = npm).await;
    assert_eq!(host.post("/catalog", entry("everything", "npm", NPM_SERVER)).await.0, 201);
    let id = host.deploy(json!({"slug": "everything"})).await;
    host.wait_for(&id, "building").await;
    // Once a step's container runs, the delete cuts the build short.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while host.owned_containers().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!host.owned_containers().is_empty(), "a build step runs");
    let status = host.request(reqwest::Method::DELETE, &format!("/runtimes/{id}"), None).await.0;
    assert!(status.is_success(), "{status}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(host.owned_containers().is_empty() && host.owned_networks().is_empty()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {:?} {:?}",
            host.owned_containers(),
            host.owned_networks()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_on_a_private_address_needs_index_addresses() {
    let mirrors = PackageMirrors::start().await;
    // The mirror by name, as a site runs one, pinned to where it listens.
    let port = mirrors.npm.rsplit(':').next().unwrap().to_string();
    let registry = format!("http://npm.mirror.test:{port}/");
    let site = |index_addresses: Vec<String>| {
        let registry = registry.clone();
        move |c: &mut mcp_runtime::config::RuntimeConfig| {
            c.egress.resolve.insert("npm.mirror.test".into(), "127.0.0.1".parse().unwrap());
            c.builders.npm.registry = registry;
            c.builders.index_addresses = index_addresses;
        }
    };
    let refused = TestHost::start(site(Vec::new())).await;
    assert_eq!(refused.post("/catalog", entry("everything", "npm", NPM_SERVER)).await.0, 201);
    let id = refused.deploy(json!({"slug": "everything"})).await;
    let failed = refused.wait_for_within(&id, "error", BUILD_TIME).await;
    let message = failed["status_message"].as_str().unwrap();
    assert!(message.contains(&format!("npm.mirror.test:{port}")) && message.contains("index_addresses"), "{message}");

    let allowed = TestHost::start(site(vec!["127.0.0.0/8".into()])).await;
    assert_eq!(allowed.post("/catalog", entry("everything", "npm", NPM_SERVER)).await.0, 201);
    let id = allowed.deploy(json!({"slug": "everything"})).await;
    allowed.wait_for_within(&id, "connected", BUILD_TIME).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_above_the_size_limit_is_refused_and_removed() {
    let mirrors = PackageMirrors::start().await;
    let pypi = mirrors.pypi.clone();
    // The Python base alone is larger than this.
    let host = TestHost::start(move |c| {
        c.builders.pypi.index_url = pypi;
        c.builders.max_image_mb = 64;
    })
    .await;
    assert_eq!(host.post("/catalog", entry("time", "pypi", PYPI_SERVER)).await.0, 201);
    let id = host.deploy(json!({"slug": "time"})).await;
    let failed = host.wait_for_within(&id, "error", BUILD_TIME).await;
    let message = failed["status_message"].as_str().unwrap();
    assert!(message.contains("runtime.builders.max_image_mb (64 MB)"), "{message}");
    let images = support::docker(&["images", "-q", "--filter", &format!("label=mcp-runtime.owner={}", host.owner)]);
    assert!(images.trim().is_empty(), "the oversized image is gone: {images}");
}
