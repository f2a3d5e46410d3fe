//! Images the host makes for Code Engine, against the fake (which runs each
//! app's image on the local engine), a real registry on loopback and the
//! package mirrors: a stdio server gets the host's `mcp-stdio-bridge` as its
//! entrypoint, a package is built by the host, both are pushed and run by
//! digest, and real MCP clients reach them through the host and directly
//! over HTTP — the in-image bridge serving the same real servers as on Docker.

use std::time::Duration;

use crate::code_engine::{ce_app, new_owner};
use crate::support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::package_mirrors::{PackageMirrors, NPM_SERVER, PYPI_SERVER};
use support::{TestHost, CE_API_KEY};

/// A cold npm build on two cores installs a hundred packages.
const BUILD_TIME: Duration = Duration::from_secs(300);

fn package_on_code_engine(slug: &str, ecosystem: &str, (name, version): (&str, &str)) -> Value {
    json!({"name": slug, "slug": slug, "transport": "stdio", "guardrails_profile": "restricted",
           "supported_backends": ["docker", "ibm_code_engine"],
           "source": {"type": "package", "ecosystem": ecosystem, "name": name, "version": version}})
}

/// Calls a tool with the official SDK at `url`; what it answered.
async fn sdk(url: &str, token: Option<&str>, tool: &str, arguments: Value) -> String {
    support::mcp_sdk::call_tool(url, token, tool, arguments).await
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio_servers_and_packages_run_on_code_engine_through_the_in_image_bridge() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let registry = support::Registry::start().await;
    let mirrors = PackageMirrors::start().await;
    let (npm, pypi) = (mirrors.npm.clone(), mirrors.pypi.clone());
    let output_registry = format!("{}/mcp-images", registry.address);
    let build = json!({"output_registry": output_registry, "output_secret": "push-secret", "timeout_seconds": 60});
    let host = TestHost::start(|c| {
        c.owner = owner.clone();
        support::use_code_engine_building(c, &fake, CE_API_KEY, build);
        c.builders.npm.registry = npm;
        c.builders.pypi.index_url = pypi;
    })
    .await;

    // A stdio image: bridged, pushed, run by digest; its arguments reach the server.
    let id = host.deploy(json!({"slug": "fixture-stdio", "backend": "ibm_code_engine"})).await;
    let d = host.wait_for_within(&id, "connected", BUILD_TIME).await;
    let warned = d["guardrails_warnings"].as_array().unwrap().iter().find(|w| w["field"] == "transport");
    assert!(warned.is_some_and(|w| w["message"].as_str().unwrap().contains("mcp-stdio-bridge")), "{d}");
    let (_, app) = ce_app(&fake, &id).await;
    let image = app["image_reference"].as_str().unwrap();
    assert!(image.starts_with(&format!("{output_registry}/mcp-")) && image.contains("@sha256:"), "{app}");
    assert_eq!((app["image_port"].as_u64(), &app["image_secret"]), (Some(8080), &json!("push-secret")), "{app}");
    assert_eq!(app["run_arguments"], json!(["--stdio"]), "{app}");
    let entrypoint =
        support::docker(&["image", "inspect", "--format", "{{json .Config.Entrypoint}} {{.Config.User}}", image]);
    assert!(entrypoint.starts_with(r#"["/.mcp-runtime/mcp-stdio-bridge","--","#), "{entrypoint}");
    let mut session = host.mcp_session(&id).await;
    assert_eq!(
        session.call_tool("echo", json!({"text": "bridged in the image"})).await.unwrap(),
        "bridged in the image"
    );

    // The npm server: built by the host, bridged, pushed; the official SDK
    // gets the same answers through the host and straight from the bridge.
    let entry = package_on_code_engine("everything-ce", "npm", NPM_SERVER);
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let everything = host.deploy(json!({"slug": "everything-ce", "backend": "ibm_code_engine"})).await;
    let d = host.wait_for_within(&everything, "connected", BUILD_TIME).await;
    assert!(d["build"]["lock"].as_str().is_some_and(|l| l.starts_with("sha256:")), "{d}");
    assert!(d["bill_of_materials"]["packages"].as_array().is_some_and(|p| p.len() > 20), "{d}");
    let through_host = format!("{}/servers/{everything}/mcp", host.base);
    let echoed = sdk(&through_host, Some(&host.admin_token), "echo", json!({"message": "via the host"})).await;
    assert!(echoed.contains("via the host"), "{echoed}");
    let (_, app) = ce_app(&fake, &everything).await;
    let direct = format!("{}/mcp", app["endpoint"].as_str().unwrap());
    let echoed = sdk(&direct, None, "echo", json!({"message": "straight to the bridge"})).await;
    assert!(echoed.contains("straight to the bridge"), "{echoed}");

    // The PyPI server the same way.
    let entry = package_on_code_engine("time-ce", "pypi", PYPI_SERVER);
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let time = host.deploy(json!({"slug": "time-ce", "backend": "ibm_code_engine"})).await;
    host.wait_for_within(&time, "connected", BUILD_TIME).await;
    let (_, app) = ce_app(&fake, &time).await;
    let direct = format!("{}/mcp", app["endpoint"].as_str().unwrap());
    let now = sdk(&direct, None, "get_current_time", json!({"timezone": "UTC"})).await;
    assert!(now.contains("UTC"), "{now}");

    // Deployed again, nothing is built or bridged anew: the same digest runs.
    let again = host.deploy(json!({"slug": "everything-ce", "backend": "ibm_code_engine"})).await;
    let d = host.wait_for_within(&again, "connected", BUILD_TIME).await;
    assert_eq!(d["build"]["cache"], "hit", "{d}");
    let digest = |app: Value| app["image_reference"].as_str().unwrap().split('@').nth(1).unwrap().to_string();
    assert_eq!(digest(ce_app(&fake, &again).await.1), digest(ce_app(&fake, &everything).await.1));
    for id in [&everything, &time, &again] {
        host.delete(&format!("/runtimes/{id}")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_registry_to_push_to_stdio_and_package_entries_are_refused_by_name() {
    let owner = new_owner();
    let fake = support::code_engine(&owner).await;
    let mirrors = PackageMirrors::start().await;
    let npm = mirrors.npm.clone();
    let host = TestHost::start(|c| {
        c.owner = owner.clone();
        support::use_code_engine_building(c, &fake, CE_API_KEY, json!({}));
        c.builders.npm.registry = npm;
    })
    .await;
    let (status, answer) =
        host.post("/runtimes/deploy", json!({"slug": "fixture-stdio", "backend": "ibm_code_engine"})).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("transport")), "{answer}");
    assert!(answer.to_string().contains("build.output_registry"), "{answer}");

    // A package entry that serves HTTP itself needs no bridge, but still a registry.
    let mut entry = package_on_code_engine("everything-http", "npm", NPM_SERVER);
    entry["transport"] = json!("streamable-http");
    entry["args"] = json!(["streamableHttp"]);
    entry["port"] = json!(3001);
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let (status, answer) =
        host.post("/runtimes/deploy", json!({"slug": "everything-http", "backend": "ibm_code_engine"})).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("source.type")), "{answer}");
    assert!(!fake.requests().iter().any(|r| r.starts_with("POST") && r.ends_with("/apps")), "no app was created");
}
