//! The supply-chain gate against the real engine and a real registry on
//! loopback: an image is pinned to its content when the deploy is checked,
//! approvers see that content, the backend runs exactly it, and a tag that
//! moves between approval and start sends the deployment back to them. Package builds are
//! judged by an OSV directory of real advisories, offline.

use crate::support;

use mcp_runtime::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::package_mirrors::{PackageMirrors, NPM_SERVER, NPM_VULNERABLE, PYPI_VULNERABLE};
use support::{docker, TestHost};

/// A package build from the mirrors, from a cold cache.
const BUILD_TIME: std::time::Duration = std::time::Duration::from_secs(300);

/// `<registry>/mcp-fixture:<tag>` pushed again, as another image: the fixture with one label more.
fn push_other_content(image: &str) {
    let context = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {}\nLABEL mcp-runtime.test.variant=moved\n", support::fixture_image());
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    let label = format!("{}=1", support::TEST_LABEL);
    docker(&["build", "-q", "--label", &label, "-t", image, context.path().to_str().unwrap()]);
    docker(&["push", image]);
    docker(&["rmi", image]);
}

/// The manifest digest the registry serves for `image`, as the registry's own API says.
async fn registry_digest(registry: &str, image: &str) -> String {
    let (repository, tag) = image.trim_start_matches(&format!("{registry}/")).rsplit_once(':').unwrap();
    let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json";
    let answer = reqwest::Client::new()
        .head(format!("http://{registry}/v2/{repository}/manifests/{tag}"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    answer.headers()["docker-content-digest"].to_str().unwrap().to_string()
}

async fn held(host: &TestHost, token: &str, slug: &str) -> (String, String) {
    let body = json!({"slug": slug});
    let (status, answer) = host.request_as(Some(token), Method::POST, "/runtimes/deploy", Some(body)).await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{answer}");
    (answer["id"].as_str().unwrap().to_string(), answer["approval_id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_approved_is_the_digest_that_runs_and_a_moved_tag_stops_it() {
    let registry = support::Registry::start().await;
    let image = registry.push_fixture("v1");
    let first = registry_digest(&registry.address, &image).await;
    let address = registry.address.clone();
    let host = TestHost::start(|c| {
        let docker = c.backends.get_mut("docker").unwrap();
        docker.settings.insert("allowed_registries".into(), json!(["127.0.0.1:5000", address]));
    })
    .await;
    let entry = json!({"name": "Pinned", "slug": "pinned", "requires_approval": true, "guardrails_profile": "restricted",
                       "source": {"type": "docker", "image": image}, "supported_backends": ["docker"]});
    assert_eq!(host.post("/catalog", entry).await.0, StatusCode::CREATED);
    let dave = host.token_in("dave", &[Role::Developer], &[]);
    let carol = host.token_in("carol", &[Role::Approver], &["security-team"]);
    let approve = |approval: String| {
        let (host, carol) = (&host, carol.clone());
        async move {
            let path = format!("/approvals/{approval}/approve");
            let (status, answer) = host.request_as(Some(&carol), Method::POST, &path, Some(json!({}))).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    };

    // Approvers see the content the tag named when the deploy was asked for.
    let (id, approval) = held(&host, &dave, "pinned").await;
    let (_, a) = host.get(&format!("/approvals/{approval}")).await;
    assert_eq!(
        (a["pinned_image"]["requested"].as_str(), a["pinned_image"]["digest"].as_str()),
        (Some(image.as_str()), Some(first.as_str())),
        "{a}"
    );
    approve(approval).await;
    let d = host.wait_for(&id, "connected").await;
    let repository = image.rsplit_once(':').unwrap().0;
    assert_eq!(d["image"], format!("{repository}@{first}"), "it runs the digest: {d}");
    assert_eq!(d["request"]["pinned_image"]["digest"], first.as_str(), "{d}");
    assert_eq!(d["approved"]["by"], "carol", "{d}");
    let container = docker(&["ps", "-q", "--filter", &format!("label=mcp-runtime.deployment={id}")]);
    let ran = docker(&["inspect", "--format", "{{.Config.Image}}", container.lines().next().unwrap()]);
    assert_eq!(ran, format!("{repository}@{first}"));

    // Its posture, from what is stored: the content, the container as created, the approval.
    let (status, p) = host.get(&format!("/runtimes/{id}/posture")).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(
        (p["pinned_image"]["digest"].as_str(), p["approved"]["by"].as_str()),
        (Some(first.as_str()), Some("carol"))
    );
    assert_eq!(p["egress"], "blocked", "{p}");
    assert_eq!(p["signature"], json!({"mode": "require", "outcome": "not_configured"}), "no key covers it: {p}");
    let c = &p["containers"][0];
    assert_eq!(
        (c["read_only_root"].as_bool(), c["no_new_privileges"].as_bool(), c["user"].as_str()),
        (Some(true), Some(true), Some("root")),
        "the fixture's image names no user: {p}"
    );
    assert!(c["cap_drop"].as_array().unwrap().contains(&json!("ALL")), "{p}");
    assert_eq!(c["image"], format!("{repository}@{first}"));
    let page = host.admin_page(&format!("/admin/runtimes/{id}")).await;
    assert!(page.contains("Posture") && page.contains(&first) && page.contains("by carol"), "{page}");
    // A pulled image's SBOM is read from it: the fixture (FROM scratch) installs no package.
    let (status, sbom) = host.get(&format!("/runtimes/{id}/sbom")).await;
    assert_eq!((status, &sbom["components"]), (StatusCode::OK, &json!([])), "{sbom}");

    // The tag moves while a request waits: approving it starts nothing, and asks again.
    let (moved, approval) = held(&host, &dave, "pinned").await;
    push_other_content(&image);
    let second = registry_digest(&registry.address, &image).await;
    assert_ne!(first, second);
    approve(approval.clone()).await;
    let d = host.wait_for(&moved, "awaiting_approval").await;
    let why = d["status_message"].as_str().unwrap();
    assert!(why.contains("moved after carol approved it") && why.contains(&first) && why.contains(&second), "{why}");
    assert_eq!(
        (d["request"]["pinned_image"]["digest"].as_str(), &d["approved"]),
        (Some(second.as_str()), &Value::Null)
    );
    assert!(docker(&["ps", "-aq", "--filter", &format!("label=mcp-runtime.deployment={moved}")]).is_empty());
    let (_, pending) = host.get("/approvals?status=pending").await;
    let again = pending.as_array().unwrap().iter().find(|a| a["deployment_id"] == moved.as_str()).expect("asked again");
    assert_ne!(again["id"], approval.as_str());
    assert!(again["reasons"][0].as_str().unwrap().contains("moved after carol approved it"), "{again}");
    assert_eq!(again["pinned_image"]["digest"], second.as_str(), "approvers see the new content: {again}");
    approve(again["id"].as_str().unwrap().to_string()).await;
    let d = host.wait_for(&moved, "connected").await;
    assert_eq!(d["image"], format!("{repository}@{second}"), "{d}");
    for id in [&id, &moved] {
        host.delete(&format!("/runtimes/{id}")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_only_this_engine_holds_runs_by_its_id_and_one_nowhere_says_why() {
    let host = TestHost::start(|c| {
        let docker = c.backends.get_mut("docker").unwrap();
        docker.settings.insert("allowed_registries".into(), json!(["127.0.0.1:5000", "127.0.0.1:9"]));
    })
    .await;
    // The fixture is built here and never pushed: its registry (127.0.0.1:5000) does not answer.
    let id = host.deploy(json!({"slug": "fixture"})).await;
    let d = host.wait_for(&id, "connected").await;
    let local_id = docker(&["image", "inspect", "--format", "{{.Id}}", support::fixture_image()]);
    let pinned: &Value = &d["request"]["pinned_image"];
    assert_eq!((pinned["image_id"].as_str(), &pinned["digest"]), (Some(local_id.as_str()), &Value::Null), "{d}");
    assert_eq!(d["image"], local_id.as_str(), "{d}");

    let absent = json!({"name": "Absent", "slug": "absent", "supported_backends": ["docker"],
                        "source": {"type": "docker", "image": "127.0.0.1:9/mcp-runtime-absent:1"}});
    assert_eq!(host.post("/catalog", absent).await.0, StatusCode::CREATED);
    let failed = host.deploy(json!({"slug": "absent"})).await;
    let d = host.wait_for(&failed, "error").await;
    let warned = d["guardrails_warnings"].as_array().unwrap().iter().find(|w| w["field"] == "source.image");
    assert!(warned.is_some_and(|w| w["message"].as_str().unwrap().contains("runs by its tag")), "{d}");
    assert!(d["request"]["pinned_image"]["unresolved"].as_str().is_some(), "{d}");
    host.delete(&format!("/runtimes/{id}")).await;
}

/// The real advisories of `tests/fixtures/osv`, copied where an operator keeps them.
pub(crate) fn osv_directory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = support::repo_root().join("tests/fixtures/osv");
    for (from, to) in
        [("npm/GHSA-xvch-5gv4-984h.json", "a/minimist.json"), ("pypi/GHSA-h5c8-rqwp-cp95.json", "b/c/jinja.json")]
    {
        let to = dir.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixtures.join(from), to).unwrap();
    }
    dir
}

/// The deployment once `ready` says so of it (polled; these never connect, so no state says it).
pub(crate) async fn once(host: &TestHost, id: &str, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let (_, d) = host.get(&format!("/runtimes/{id}{path}")).await;
        if ready(&d) {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

pub(crate) fn package(slug: &str, ecosystem: &str, (name, version): (&str, &str)) -> Value {
    // Not MCP servers: they are built and judged, then fail to start, which is all this needs.
    json!({"name": slug, "slug": slug, "transport": "streamable-http", "guardrails_profile": "restricted",
           "supported_backends": ["docker"],
           "source": {"type": "package", "ecosystem": ecosystem, "name": name, "version": version}})
}

#[tokio::test(flavor = "multi_thread")]
async fn package_builds_are_judged_by_real_advisories_offline() {
    let mirrors = PackageMirrors::start().await;
    let osv = osv_directory();
    // A base of its own: other tests' builds of the same packages never retag what this one approves.
    let owner = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let base = support::derived_base(&owner, "approved", "mcp-runtime/node:latest");
    let (npm, pypi, dir) = (mirrors.npm.clone(), mirrors.pypi.clone(), osv.path().to_path_buf());
    let host = TestHost::start(|c| {
        c.owner = owner;
        c.builders.npm.registry = npm;
        c.builders.npm.base_image = base;
        c.builders.pypi.index_url = pypi;
        c.supply_chain.osv_dir = Some(dir);
    })
    .await;

    // mkdirp 0.5.1 installs minimist 0.0.8: critical, fixed in 0.2.4. Nothing
    // was known of it when the deploy was checked; once built, the findings
    // hold it for the security team (the default approval rule), build kept.
    assert_eq!(host.post("/catalog", package("mkdirp", "npm", NPM_VULNERABLE)).await.0, StatusCode::CREATED);
    let dave = host.token_in("dave", &[Role::Developer], &[]);
    let (status, answer) =
        host.request_as(Some(&dave), Method::POST, "/runtimes/deploy", Some(json!({"slug": "mkdirp"}))).await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::ACCEPTED, Some("pending")), "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let d = host.wait_for_within(&id, "awaiting_approval", BUILD_TIME).await;
    let why = d["status_message"].as_str().unwrap();
    assert_eq!(why, "held for approval: the image installs 1 known vulnerabilities (1 critical)", "{d}");
    let report = &d["vulnerabilities"];
    assert_eq!((report["database"]["records"].as_u64(), &report["counts"]), (Some(2), &json!({"critical": 1})), "{d}");
    let finding = &report["findings"][0];
    assert_eq!(
        (finding["advisory"].as_str(), finding["package"].as_str(), finding["version"].as_str()),
        (Some("GHSA-xvch-5gv4-984h"), Some("minimist"), Some("0.0.8")),
        "{d}"
    );
    assert_eq!((finding["fixed"].as_str(), finding["score"].as_f64()), (Some("0.2.4"), Some(9.8)), "{d}");
    assert_eq!(finding["aliases"], json!(["CVE-2021-44906"]));
    let built = d["build"]["content"].as_str().expect("the built image's id").to_string();
    assert_eq!(d["request"]["evidence"]["digest"], built.as_str(), "{d}");
    // The approval shows the scan: what approvers need to decide.
    let (_, pending) = host.get("/approvals?status=pending").await;
    let a = pending.as_array().unwrap().iter().find(|a| a["deployment_id"] == id.as_str()).expect("held").clone();
    assert_eq!(a["approvers"], json!(["group:security-team"]), "{a}");
    assert_eq!(a["reasons"][0], "the image installs 1 known vulnerabilities (1 critical)", "{a}");
    assert!(
        a["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "known vulnerabilities: critical GHSA-xvch-5gv4-984h in minimist 0.0.8"),
        "{a}"
    );
    assert_eq!(
        (a["scan_results"]["findings"][0]["advisory"].as_str(), a["content"].as_str()),
        (Some("GHSA-xvch-5gv4-984h"), Some(built.as_str())),
        "{a}"
    );
    assert_eq!(a["signature"], json!({"mode": "require", "outcome": "not_configured"}), "no key covers it: {a}");
    let page = host.admin_page("/admin/approvals").await;
    assert!(
        page.contains("GHSA-xvch-5gv4-984h") && page.contains("CVE-2021-44906") && page.contains("fixed in 0.2.4"),
        "{page}"
    );
    // Approved, it runs the image approvers saw: no second hold, the same content.
    let carol = host.token_in("carol", &[Role::Approver], &["security-team"]);
    let path = format!("/approvals/{}/approve", a["id"].as_str().unwrap());
    let (status, answer) = host.request_as(Some(&carol), Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let p = once(&host, &id, "/posture", |p| p["containers"].as_array().is_some_and(|c| !c.is_empty())).await;
    assert_eq!(
        (p["vulnerabilities"]["counts"].clone(), p["approved"]["by"].as_str()),
        (json!({"critical": 1}), Some("carol")),
        "{p}"
    );
    assert_eq!(p["containers"][0]["user"], "10001:10001", "packages run as the builder's user: {p}");
    let container = docker(&["ps", "-aq", "--filter", &format!("label=mcp-runtime.deployment={id}")]);
    let ran = docker(&["inspect", "--format", "{{.Image}}", container.lines().next().unwrap()]);
    assert_eq!(ran, built, "the content approved is the content that ran");
    // Its SBOM: the lock's packages in CycloneDX, each with its purl and published hash.
    let answer = reqwest::Client::new()
        .get(format!("{}/runtimes/{id}/sbom", host.base))
        .bearer_auth(&host.admin_token)
        .send()
        .await
        .unwrap();
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("application/vnd.cyclonedx+json"));
    let sbom: Value = answer.json().await.unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX", "{sbom}");
    let minimist = sbom["components"].as_array().unwrap().iter().find(|c| c["name"] == "minimist").expect("minimist");
    assert_eq!(minimist["purl"], "pkg:npm/minimist@0.0.8", "{sbom}");
    assert!(minimist["hashes"][0]["content"].as_str().is_some_and(|h| h.len() >= 40), "{sbom}");
    let purls = || sbom["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap());
    assert!(purls().any(|p| p.starts_with("pkg:deb/debian/libc6@")), "the base image's packages: {sbom}");
    // The audit trail names the records that judged it.
    let (_, events) = host.get(&format!("/events?deployment={id}")).await;
    let built = events.as_array().unwrap().iter().find(|e| e["type"] == "deployment.built").expect("a build event");
    assert_eq!(built["data"]["judged_by"], report["database"]["digest"], "{built}");
    // Deployed again, its kept lock is judged when the deploy is checked: held at once.
    let (status, again) =
        host.request_as(Some(&dave), Method::POST, "/runtimes/deploy", Some(json!({"slug": "mkdirp"}))).await;
    assert_eq!((status, again["status"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{again}");
    let (_, a) = host.get(&format!("/approvals/{}", again["approval_id"].as_str().unwrap())).await;
    assert_eq!(a["scan_results"]["counts"], json!({"critical": 1}), "{a}");
    host.delete(&format!("/runtimes/{}", again["id"].as_str().unwrap())).await;

    // jinja2-cli installs jinja2 3.1.2: medium (CVSS 5.4), fixed in 3.1.3: below the hold's threshold.
    assert_eq!(host.post("/catalog", package("jinja2-cli", "pypi", PYPI_VULNERABLE)).await.0, StatusCode::CREATED);
    let jinja = host.deploy(json!({"slug": "jinja2-cli"})).await;
    let d = once(&host, &jinja, "", |d| !d["vulnerabilities"].is_null() && d["status"] != "building").await;
    assert_ne!(d["status"], "awaiting_approval", "{d}");
    let finding = &d["vulnerabilities"]["findings"][0];
    assert_eq!(
        (finding["advisory"].as_str(), finding["version"].as_str(), finding["severity"].as_str()),
        (Some("GHSA-h5c8-rqwp-cp95"), Some("3.1.2"), Some("medium")),
        "{d}"
    );

    // A tree at fixed versions gets none, judged all the same.
    assert_eq!(host.post("/catalog", package("everything", "npm", NPM_SERVER)).await.0, StatusCode::CREATED);
    let everything = host.deploy(json!({"slug": "everything"})).await;
    let d = once(&host, &everything, "", |d| !d["vulnerabilities"].is_null()).await;
    assert_eq!(
        (&d["vulnerabilities"]["findings"], d["vulnerabilities"]["database"]["records"].as_u64()),
        (&json!([]), Some(2)),
        "{d}"
    );

    // Only an admin rereads the directory; a record removed there stops counting.
    let developer = host.token("dave", &[Role::Developer]);
    let (status, _) =
        host.request_as(Some(&developer), Method::POST, "/supply-chain/osv/reload", Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    std::fs::remove_file(osv.path().join("b/c/jinja.json")).unwrap();
    let (status, state) = host.post("/supply-chain/osv/reload", json!({})).await;
    assert_eq!((status, state["records"].as_u64()), (StatusCode::OK, Some(1)), "{state}");
    assert_ne!(state["digest"], report["database"]["digest"]);
    for id in [&id, &jinja, &everything] {
        host.delete(&format!("/runtimes/{id}")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_policy_refuses_a_critical_finding_once_the_build_shows_it() {
    let mirrors = PackageMirrors::start().await;
    let osv = osv_directory();
    let (npm, dir) = (mirrors.npm.clone(), osv.path().to_path_buf());
    let host = TestHost::start(|c| {
        c.builders.npm.registry = npm;
        c.supply_chain.osv_dir = Some(dir);
        let mut policy = support::fault_policy("no-critical-vulns", "");
        policy.path = "no_critical_vulns.wasm".into();
        policy.settings = json!({});
        c.plugins.push(policy);
        c.policy_chain.push("no-critical-vulns".into());
    })
    .await;
    assert_eq!(host.post("/catalog", package("mkdirp", "npm", NPM_VULNERABLE)).await.0, StatusCode::CREATED);
    let id = host.deploy(json!({"slug": "mkdirp"})).await;
    let d = once(&host, &id, "", |d| d["status"] == "error").await;
    let why = d["status_message"].as_str().unwrap();
    assert!(
        why.contains("supply_chain.vulnerabilities")
            && why.contains("GHSA-xvch-5gv4-984h in minimist 0.0.8 (fixed in 0.2.4)"),
        "{d}"
    );
    assert!(
        docker(&["ps", "-aq", "--filter", &format!("label=mcp-runtime.deployment={id}")]).is_empty(),
        "nothing ran"
    );
    // Known from its kept lock, the next deploy is refused when it is checked: 422, naming the field.
    let (status, answer) = host.post("/runtimes/deploy", json!({"slug": "mkdirp"})).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("supply_chain.vulnerabilities")),
        "{answer}"
    );
    host.delete(&format!("/runtimes/{id}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_osv_directory_nothing_is_judged_and_reloading_says_why() {
    let host = TestHost::start(|_| {}).await;
    let (status, answer) = host.post("/supply-chain/osv/reload", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("runtime.supply_chain.osv_dir"), "{answer}");
}
