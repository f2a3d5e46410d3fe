//! The OpenAPI document checked against the running host: schemathesis
//! (installed by `make schemathesis`) generates requests from the document —
//! its examples, the edges of every schema, random and broken input, and
//! stateful chains along the document's links (deploy → get → stop → delete)
//! — against a host with the real Docker backend. No answer may be a server
//! error or break the document; afterwards nothing the run deployed may be
//! left in the engine once its deployments are deleted.

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use std::process::Command;
use support::TestHost;

/// Test cases per operation and phase: enough to reach every schema's edges,
/// few enough for CI (the whole run takes a few minutes on two cores).
const MAX_EXAMPLES: &str = "30";

#[tokio::test(flavor = "multi_thread")]
async fn the_running_host_keeps_to_its_openapi_document() {
    // Package entries the fuzzer writes are resolved against loopback mirrors, never a public index.
    let mirrors = support::package_mirrors::PackageMirrors::start().await;
    let (npm, pypi) = (mirrors.npm.clone(), mirrors.pypi.clone());
    let host = TestHost::start(|c| {
        c.builders.npm.registry = npm;
        c.builders.pypi.index_url = pypi;
    })
    .await;
    // The document's deploy example names the sample catalog's reference
    // server: here it is the MCP fixture on stdio, so the example deploys for real.
    let entry = json!({"name": "Everything (fixture)", "slug": "everything",
        "source": {"type": "docker", "image": support::fixture_image()}, "transport": "stdio",
        "args": ["--stdio"], "guardrails_profile": "restricted", "supported_backends": ["docker"]});
    assert_eq!(host.post("/catalog", entry).await.0, 201);

    let schemathesis = support::repo_root().join(".venv/schemathesis/bin/schemathesis");
    assert!(schemathesis.exists(), "schemathesis is installed by `make schemathesis`");
    let report = support::repo_root().join("target/schemathesis");
    std::fs::create_dir_all(&report).unwrap();
    let token = host.token("fuzz-admin@example.com", &[Role::Admin, Role::Approver]);
    let base = host.base.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all"])
            // Which valid-looking input the host must accept depends on what
            // exists (an entry, a profile), which the document cannot say.
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["--max-examples", MAX_EXAMPLES, "--seed", "19"])
            // Nothing kept between runs; what it writes stays under target/.
            .args(["--generation-database", "none"])
            .current_dir(&report)
            .args(["--workers", "2", "--request-timeout", "30", "--no-color"])
            // The MCP data path forwards to servers whose answers are theirs
            // (tests/stdio_e2e.rs and docker_e2e.rs cover it); the streams never end.
            .args(["--exclude-tag", "mcp", "--exclude-path", "/runtimes/stream"])
            .args(["--report", "junit", "--report-dir"])
            .arg(&report)
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let output = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found answers that break the document:\n{output}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(output.contains("passed"), "schemathesis ran operations:\n{output}");

    // Whatever the run deployed goes when its deployment is deleted.
    let (_, deployments) = host.get("/runtimes").await;
    for d in deployments.as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        let status = host.request(Method::DELETE, &format!("/runtimes/{id}"), None).await.0;
        assert!(status == 204 || status == 404, "deleting {id}: {status}");
    }
    assert_eq!(host.get("/runtimes").await.1, Value::Array(vec![]));
    assert_eq!(host.owned_containers(), Vec::<String>::new(), "containers left in the engine");
    assert_eq!(host.owned_networks(), Vec::<String>::new(), "networks left in the engine");
    assert_eq!(host.owned_volumes(), Vec::<String>::new(), "volumes left in the engine");
}
