//! Servers published as npm and PyPI packages, against the real Docker
//! engine and real mirrors (Verdaccio, pypiserver) of the pinned test
//! packages: versions resolved when the entry is written, the tree locked
//! at the first build and installed from the lock under guardrails, the
//! image cached, the server deployed under `restricted` and called.

use std::time::Duration;

use crate::support;

use serde_json::{json, Value};
use support::package_mirrors::{PackageMirrors, NPM_SERVER, PYPI_SERVER};
use support::{docker, refused, TestHost};

/// A cold build on two cores installs a hundred npm packages.
const BUILD_TIME: Duration = Duration::from_secs(300);

fn package_entry(slug: &str, ecosystem: &str, name: &str, version: &str) -> Value {
    json!({"name": slug, "slug": slug, "transport": "stdio", "guardrails_profile": "restricted",
           "supported_backends": ["docker"],
           "source": {"type": "package", "ecosystem": ecosystem, "name": name, "version": version}})
}

async fn host_on(mirrors: &PackageMirrors) -> TestHost {
    let (npm, pypi) = (mirrors.npm.clone(), mirrors.pypi.clone());
    TestHost::start(|c| {
        c.builders.npm.registry = npm;
        c.builders.pypi.index_url = pypi;
    })
    .await
}

fn container_of(d: &Value) -> String {
    d["endpoint"].as_str().unwrap().trim_start_matches("stdio://").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_npm_server_is_resolved_locked_built_once_and_served() {
    let mirrors = PackageMirrors::start().await;
    let host = host_on(&mirrors).await;
    let (name, version) = NPM_SERVER;

    // A range is resolved when the entry is written; what was asked is kept.
    let (status, written) = host.post("/catalog", package_entry("everything", "npm", name, "^2026.1.0")).await;
    assert_eq!(status, 201, "{written}");
    assert_eq!(written["source"]["version"], version, "{written}");
    assert_eq!(written["source"]["requested_version"], "^2026.1.0");
    assert_eq!(written["source"]["bin"], "mcp-server-everything", "the only executable it declares");

    // Mistakes name their field.
    for (entry, field) in [
        (package_entry("x1", "npm", name, "9.9.9"), "source.version"),
        (package_entry("x2", "npm", "Not A Name", "1.0.0"), "source.name"),
        (package_entry("x3", "npm", "@modelcontextprotocol/no-such-server", "1.0.0"), "source.name"),
        (package_entry("x4", "pypi", PYPI_SERVER.0, "0.0.1"), "source.version"),
    ] {
        assert_eq!(refused(&host, "/catalog", entry).await.1, field);
    }
    let mut wrong_bin = package_entry("x5", "npm", name, version);
    wrong_bin["source"]["bin"] = json!("nope");
    let (status, field) = refused(&host, "/catalog", wrong_bin).await;
    assert_eq!((status.as_u16(), field.as_str()), (422, "source.bin"));
    let (status, answer) = host.post("/catalog", package_entry("x6", "cargo", "x", "1.0.0")).await;
    assert_eq!(status.as_u16(), 422, "an unknown ecosystem: {answer}");

    let id = host.deploy(json!({"slug": "everything"})).await;
    let d = host.wait_for_within(&id, "connected", BUILD_TIME).await;
    let lock = d["build"]["lock"].as_str().expect("the lock the image was built from").to_string();
    assert!(lock.starts_with("sha256:") && d["build"]["cache"] == "miss", "{d}");
    let mut session = host.mcp_session(&id).await;
    let echoed = session.call_tool("echo", json!({"message": "from a package"})).await.unwrap();
    assert!(echoed.contains("from a package"), "{echoed}");

    // The server runs as the non-root user, on a read-only root.
    let inspect =
        docker(&["inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}", &container_of(&d)]);
    assert_eq!(inspect, "10001:10001 true");

    // The same entry again: the image is there, nothing is built.
    let again = host.deploy(json!({"slug": "everything"})).await;
    let d = host.wait_for_within(&again, "connected", BUILD_TIME).await;
    assert_eq!((d["build"]["cache"].as_str(), d["build"]["lock"].as_str()), (Some("hit"), Some(lock.as_str())), "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pypi_server_is_installed_from_hash_pinned_wheels() {
    let mirrors = PackageMirrors::start().await;
    let host = host_on(&mirrors).await;
    let (name, version) = PYPI_SERVER;
    let (status, written) = host.post("/catalog", package_entry("time", "pypi", name, "latest")).await;
    assert_eq!(status, 201, "{written}");
    assert_eq!((written["source"]["version"].as_str(), written["source"]["bin"].as_str()), (Some(version), Some(name)));

    let id = host.deploy(json!({"slug": "time"})).await;
    let d = host.wait_for_within(&id, "connected", BUILD_TIME).await;
    assert!(d["build"]["lock"].as_str().is_some_and(|l| l.starts_with("sha256:")), "{d}");
    let mut session = host.mcp_session(&id).await;
    let now = session.call_tool("get_current_time", json!({"timezone": "Europe/Warsaw"})).await.unwrap();
    assert!(now.contains("Europe/Warsaw"), "{now}");
}
