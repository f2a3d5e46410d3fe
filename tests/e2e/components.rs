//! MCP servers shipped as WebAssembly components, served by the `wasm`
//! backend inside the host. Every host here has its Docker backend pointed
//! at a socket where nothing answers: a component needs no container engine.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{self, TestHost};

const COMPONENT: &str = "tool_component.wasm";

/// The hex SHA-256 of a component `make guests` built.
fn sha256_of(file: &str) -> String {
    let bytes = std::fs::read(support::guest_dir().join(file)).expect("built by `make guests`");
    hex::encode(Sha256::digest(bytes))
}

/// A host with no container engine, whose profile `wasm-test` lets a
/// component mount `mount` and reach nothing.
async fn host_without_engine(mount: &std::path::Path) -> (TestHost, tempfile::TempDir) {
    let nothing = tempfile::tempdir().unwrap();
    let socket = nothing.path().join("docker.sock").display().to_string();
    let mount = mount.display().to_string();
    let host = TestHost::start(move |c| {
        c.backends.get_mut("docker").unwrap().socket = Some(socket);
        c.components.dir = Some(support::guest_dir());
        // A tenth of a CPU: a call's deadline is a second.
        c.backends.get_mut("wasm").unwrap().default_limits.cpu = Some("0.1".into());
        let mut profile = mcp_runtime::guardrails::presets()["standard"].clone();
        profile.name = "wasm-test".into();
        profile.filesystem.allowed_mounts = vec![mount];
        c.guardrails.profiles.insert("wasm-test".into(), profile);
    })
    .await;
    (host, nothing)
}

fn entry(slug: &str, source: Value) -> Value {
    json!({
        "name": "Tools in a component", "slug": slug, "source": source,
        "supported_backends": ["wasm"], "guardrails_profile": "wasm-test", "transport": "streamable-http",
        "env_vars": [{"name": "GREETING"}],
    })
}

/// The component, asking for one directory and one variable.
fn tool_source(granted_dir: &std::path::Path) -> Value {
    let permissions = format!(
        "permissions:\n  storage:\n    allow:\n      - uri: \"fs://{}/**\"\n        access: [\"read\"]\n  \
         environment:\n    allow:\n      - key: GREETING\n",
        granted_dir.display().to_string().trim_start_matches('/')
    );
    json!({"type": "wasm", "path": COMPONENT, "sha256": format!("sha256:{}", sha256_of(COMPONENT)), "permissions": permissions})
}

async fn events(host: &TestHost, id: &str, kind: &str) -> Vec<Value> {
    let (_, events) = host.get(&format!("/events?deployment={id}&type={kind}")).await;
    events.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_deploys_without_an_engine_and_answers_the_official_sdk() {
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("note.txt"), "granted").unwrap();
    let (host, _nothing) = host_without_engine(shared.path()).await;
    let (status, written) = host.post("/catalog", entry("wasm-tools", tool_source(shared.path()))).await;
    assert_eq!(status, 201, "{written}");

    let id = host.deploy(json!({"slug": "wasm-tools", "backend": "wasm", "env": {"GREETING": "hi"}})).await;
    let d = host.wait_for(&id, "connected").await;
    let tools = d["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("add")) && tools.contains(&json!("read-file")), "{d}");
    assert_eq!(d["endpoint"], format!("component://{id}"), "{d}");

    let url = host.proxy_url(&id);
    let token = Some(host.admin_token.as_str());
    assert_eq!(support::mcp_sdk::call_tool(&url, token, "add", json!({"a": 2, "b": 40})).await.trim(), "42");
    let greeting = support::mcp_sdk::call_tool(&url, token, "env-var", json!({"name": "GREETING"})).await;
    assert_eq!(greeting.trim(), "hi", "a variable the component asked for and the deploy declared");
    let note = shared.path().join("note.txt").display().to_string();
    assert_eq!(support::mcp_sdk::call_tool(&url, token, "read-file", json!({"path": note})).await.trim(), "granted");

    let served = events(&host, &id, "component.served").await.first().cloned().unwrap_or_default();
    assert_eq!(served["data"]["digest"], format!("sha256:{}", sha256_of(COMPONENT)), "{served}");
    // Its SBOM: the component by its digest, and what its producers sections name.
    let (status, sbom) = host.get(&format!("/runtimes/{id}/sbom")).await;
    assert_eq!(status, 200, "{sbom}");
    assert_eq!(sbom["metadata"]["component"]["hashes"][0]["content"], sha256_of(COMPONENT), "{sbom}");
    let names: Vec<&str> = sbom["components"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"wit-bindgen-rust") && names.contains(&"wit-component"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_sandbox_refuses_or_stops_is_said_and_the_next_call_is_served() {
    let shared = tempfile::tempdir().unwrap();
    let (host, _nothing) = host_without_engine(shared.path()).await;
    // It asks for a directory the profile does not allow, and a variable the deploy does not declare.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("secret.txt"), "no").unwrap();
    let (status, written) = host.post("/catalog", entry("greedy-tools", tool_source(elsewhere.path()))).await;
    assert_eq!(status, 201, "{written}");
    let id = host.deploy(json!({"slug": "greedy-tools", "backend": "wasm"})).await;
    let d = host.wait_for(&id, "connected").await;
    let warned: Vec<&str> =
        d["guardrails_warnings"].as_array().unwrap().iter().filter_map(|w| w["field"].as_str()).collect();
    assert!(warned.contains(&"filesystem.allowed_mounts") && warned.contains(&"env"), "{d}");

    let mut session = host.mcp_session(&id).await;
    let secret = elsewhere.path().join("secret.txt").display().to_string();
    let read =
        session.request("tools/call", json!({"name": "read-file", "arguments": {"path": secret}})).await.unwrap();
    assert_eq!(read["isError"], true, "a file outside the preopens: {read}");
    let home = session.call_tool("env-var", json!({"name": "HOME"})).await.unwrap();
    assert_eq!(home, "null", "no variable it was not granted");
    for (tool, arguments, why) in
        [("spin", json!({"rounds": u64::MAX}), "deadline of 1000 ms"), ("hog", json!({"megabytes": 512}), "memory")]
    {
        let stopped = session.request("tools/call", json!({"name": tool, "arguments": arguments})).await.unwrap();
        assert_eq!(stopped["isError"], true, "{stopped}");
        assert!(stopped["content"][0]["text"].as_str().unwrap().contains(why), "{stopped}");
        assert_eq!(session.call_tool("add", json!({"a": 1, "b": 1})).await.unwrap(), "2", "served after {tool}");
    }
    let stops = events(&host, &id, "component.call_stopped").await;
    let tools: Vec<&str> = stops.iter().filter_map(|e| e["data"]["tool"].as_str()).collect();
    assert_eq!(tools, ["hog", "spin"], "newest first: {stops:?}");
    // Each stop discarded an instance: the health watch sees it as a crash, and the server still answers.
    let crashed = async {
        loop {
            if !events(&host, &id, "deployment.crashed").await.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), crashed).await.expect("a crash event");
    host.wait_for(&id, "connected").await;
}

/// Serves `bytes` at `/tool.wasm` on a free loopback port; its address.
async fn serve_file(bytes: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().route("/tool.wasm", axum::routing::get(move || async move { bytes.clone() }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// The component pushed as an OCI artifact (wasm-pkg's media types) with the host's own client.
async fn push_artifact(registry: &support::Registry, repository: &str, bytes: &[u8]) -> String {
    let client = mcp_runtime::oci::Registry::new(reqwest::Client::new(), &registry.address, None);
    let config = b"{}";
    let config_digest = client.push_blob(repository, config).await.unwrap();
    let layer_digest = client.push_blob(repository, bytes).await.unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mcp_runtime::oci::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/wasm", "digest": layer_digest, "size": bytes.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    client.push_manifest(repository, "1.0", &bytes, mcp_runtime::oci::OCI_MANIFEST).await.unwrap();
    format!("{}/{repository}:1.0", registry.address)
}

#[tokio::test(flavor = "multi_thread")]
async fn components_come_from_an_allowed_url_or_registry_and_only_with_their_digest() {
    let bytes = std::fs::read(support::guest_dir().join(COMPONENT)).unwrap();
    let sha256 = format!("sha256:{}", sha256_of(COMPONENT));
    let web = serve_file(bytes.clone()).await;
    let registry = support::Registry::start().await;
    let artifact = push_artifact(&registry, "tools/add", &bytes).await;
    let nothing = tempfile::tempdir().unwrap();
    let socket = nothing.path().join("docker.sock").display().to_string();
    let (allowed_web, allowed_registry) = (web.clone(), registry.address.clone());
    let mut host = TestHost::start(move |c| {
        c.backends.get_mut("docker").unwrap().socket = Some(socket);
        c.components.allowed_hosts = vec![allowed_web];
        c.components.allowed_registries = vec![allowed_registry];
    })
    .await;
    let sources = [
        ("from-url", json!({"type": "wasm", "url": format!("http://{web}/tool.wasm"), "sha256": sha256})),
        ("from-oci", json!({"type": "wasm", "oci": artifact, "sha256": sha256})),
    ];
    let mut ids = Vec::new();
    for (slug, source) in sources {
        let mut written = entry(slug, source);
        written["guardrails_profile"] = json!("standard");
        assert_eq!(host.post("/catalog", written).await.0, 201);
        let id = host.deploy(json!({"slug": slug, "backend": "wasm"})).await;
        host.wait_for(&id, "connected").await;
        let mut session = host.mcp_session(&id).await;
        assert_eq!(session.call_tool("add", json!({"a": 20, "b": 22})).await.unwrap(), "42", "{slug}");
        ids.push(id);
    }

    // Refused before anything runs, naming the field: other bytes, a host or a registry not allowed.
    let other = format!("sha256:{}", "0".repeat(64));
    let refused = [
        (
            "wrong-digest",
            json!({"type": "wasm", "url": format!("http://{web}/tool.wasm"), "sha256": other}),
            "source.sha256",
        ),
        ("other-host", json!({"type": "wasm", "url": "http://127.0.0.2:9/tool.wasm", "sha256": sha256}), "source.url"),
        ("other-registry", json!({"type": "wasm", "oci": "127.0.0.2:9/tools/add:1.0", "sha256": sha256}), "source.oci"),
    ];
    for (slug, source, field) in refused {
        let mut written = entry(slug, source);
        written["guardrails_profile"] = json!("standard");
        assert_eq!(host.post("/catalog", written).await.0, 201);
        let id = host.deploy(json!({"slug": slug, "backend": "wasm"})).await;
        let d = host.wait_for(&id, "error").await;
        assert!(d["status_message"].as_str().is_some_and(|m| m.contains(field)), "{slug}: {d}");
    }

    // A restarted host serves its components again, from what it kept.
    host.stop().await;
    host.resume().await;
    for id in &ids {
        host.wait_for(id, "connected").await;
        let mut session = host.mcp_session(id).await;
        assert_eq!(session.call_tool("greet", json!({"name": "Ada"})).await.unwrap(), "Hello, Ada.");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_http_server_component_answers_the_official_sdk_and_its_stderr_is_its_log() {
    let (host, _nothing) = host_without_engine(std::path::Path::new("/data")).await;
    let file = "http_component.wasm";
    let source = json!({"type": "wasm", "path": file, "sha256": sha256_of(file)});
    assert_eq!(host.post("/catalog", entry("wasm-http", source)).await.0, 201);
    let id = host.deploy(json!({"slug": "wasm-http", "backend": "wasm"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert_eq!(d["tools"], json!(["echo", "add"]), "listed by the server itself: {d}");

    let url = host.proxy_url(&id);
    let token = Some(host.admin_token.as_str());
    assert_eq!(
        support::mcp_sdk::call_tool(&url, token, "echo", json!({"text": "over wasi:http"})).await.trim(),
        "over wasi:http"
    );
    assert_eq!(support::mcp_sdk::call_tool(&url, token, "add", json!({"a": 2, "b": 3})).await.trim(), "5");
    let (_, logs) = host.get_text(&format!("/runtimes/{id}/logs")).await;
    assert!(logs.contains("called \"echo\"") && logs.contains("called \"add\""), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outgoing_http_reaches_only_the_allowlist_and_each_refusal_is_an_event() {
    let allowed = serve_file(b"allowed".to_vec()).await;
    let elsewhere = serve_file(b"elsewhere".to_vec()).await;
    let nothing = tempfile::tempdir().unwrap();
    let socket = nothing.path().join("docker.sock").display().to_string();
    let listed = allowed.clone();
    let host = TestHost::start(move |c| {
        c.backends.get_mut("docker").unwrap().socket = Some(socket);
        c.components.dir = Some(support::guest_dir());
        let mut open = mcp_runtime::guardrails::presets()["standard"].clone();
        open.name = "wasm-egress".into();
        open.network.allowed_hosts = vec![listed];
        c.guardrails.profiles.insert("wasm-egress".into(), open);
    })
    .await;
    let source = json!({"type": "wasm", "path": COMPONENT, "sha256": sha256_of(COMPONENT)});
    let mut written = entry("fetching-tools", source);
    written["guardrails_profile"] = json!("wasm-egress");
    assert_eq!(host.post("/catalog", written).await.0, 201);

    let id = host.deploy(json!({"slug": "fetching-tools", "backend": "wasm"})).await;
    host.wait_for(&id, "connected").await;
    let mut session = host.mcp_session(&id).await;
    let fetched = session.call_tool("fetch", json!({"url": format!("http://{allowed}/tool.wasm")})).await.unwrap();
    assert_eq!(fetched, "allowed");
    let url = format!("http://{elsewhere}/tool.wasm");
    let refused = session.request("tools/call", json!({"name": "fetch", "arguments": {"url": url}})).await.unwrap();
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(refused["content"][0]["text"].as_str().unwrap().contains("HttpRequestDenied"), "{refused}");
    let refusals = events(&host, &id, "egress.refused").await;
    let port: u16 = elsewhere.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!((refusals.len(), &refusals[0]["data"]["port"]), (1, &json!(port)), "{refusals:?}");

    // Egress off: nothing goes out, and that is said too.
    let off = host.deploy(json!({"slug": "fetching-tools", "backend": "wasm", "profile": "restricted"})).await;
    host.wait_for(&off, "connected").await;
    let mut session = host.mcp_session(&off).await;
    let url = format!("http://{allowed}/tool.wasm");
    let refused = session.request("tools/call", json!({"name": "fetch", "arguments": {"url": url}})).await.unwrap();
    assert_eq!(refused["isError"], true, "{refused}");
    let reasons: Vec<String> =
        events(&host, &off, "egress.refused").await.iter().map(|e| e["data"]["reason"].to_string()).collect();
    assert!(reasons.len() == 1 && reasons[0].contains("allows no egress"), "{reasons:?}");
    assert_eq!(session.call_tool("add", json!({"a": 1, "b": 2})).await.unwrap(), "3", "still serving");
}

#[test]
fn plugin_test_runs_a_tool_components_cases_and_fails_on_a_wrong_one() {
    let wasm = support::guest_dir().join(COMPONENT);
    let cases = support::repo_root().join("tests/tool-component/cases.yaml");
    let test = |cases: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-runtime"))
            .args(["plugin", "test", wasm.to_str().unwrap(), "--cases", cases.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = test(&cases);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("6 passed, 0 failed"), "{printed}");

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.yaml");
    let text = std::fs::read_to_string(&cases).unwrap().replace("expect: {text: \"42\"}", "expect: {text: \"41\"}");
    std::fs::write(&wrong, text).unwrap();
    let out = test(&wrong);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && printed.contains("FAIL  adds"), "{printed}");
    assert!(printed.contains("expected text \"41\", got \"42\""), "{printed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_catalogs_component_is_the_one_make_guests_builds_and_deploys_without_an_engine() {
    let nothing = tempfile::tempdir().unwrap();
    let socket = nothing.path().join("docker.sock").display().to_string();
    let host = TestHost::start(move |c| {
        c.catalog.seed_file = None;
        c.backends.get_mut("docker").unwrap().socket = Some(socket);
    })
    .await;
    let (_, entry) = host.get("/catalog/text-tools").await;
    let built = format!("sha256:{}", sha256_of("text_tools.wasm"));
    assert_eq!(
        entry["source"]["sha256"].as_str(),
        Some(built.as_str()),
        "host/defaults/catalog.yaml pins text-tools to another build than `make guests` made: pin {built}"
    );

    // It runs only on `wasm`: a deploy that names no backend goes there.
    let id = host.deploy(json!({"slug": "text-tools"})).await;
    let d = host.wait_for(&id, "connected").await;
    assert_eq!(d["backend"], "wasm", "{d}");
    let (url, token) = (host.proxy_url(&id), Some(host.admin_token.as_str()));
    let kebab = support::mcp_sdk::call_tool(&url, token, "convert-case", json!({"text": "Hello Wasm", "to": "kebab"}));
    assert_eq!(kebab.await.trim(), "hello-wasm");

    let cases = support::repo_root().join("servers/text-tools/cases.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-runtime"))
        .args(["plugin", "test"])
        .arg(support::guest_dir().join("text_tools.wasm"))
        .arg("--cases")
        .arg(cases)
        .env("RUNTIME_PLUGIN_CACHE_DIR", support::repo_root().join("target/test-plugin-cache"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && printed.contains("5 passed, 0 failed"), "{printed}");
}
