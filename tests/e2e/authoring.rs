//! Rules written outside this repository: `plugin new` projects in each
//! language build with their own tools and pass their own cases; the
//! pinned-images rule in Python and JavaScript passes the Rust rule's cases
//! and judges deploys in a running host; a rule built against an earlier
//! minor version of the contract still runs; MCP server projects in each
//! language are served by the `wasm` backend and answer the official SDK.

use crate::support;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{repo_root, TestHost};

/// Where tests keep compiled components: each is compiled once per machine.
fn cache_dir() -> PathBuf {
    repo_root().join("target/test-plugin-cache")
}

/// `mcp-runtime plugin ARGS…`: whether it succeeded, and what it printed.
fn plugin(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-runtime"))
        .arg("plugin")
        .args(args)
        .env("RUNTIME_PLUGIN_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), printed)
}

/// `mcp-runtime plugin new NAME --kind KIND --lang LANG --dir DIR`.
fn plugin_new(name: &str, kind: &str, lang: &str, dir: &Path) -> (bool, String) {
    let (name, kind, lang) = (name.as_ref(), kind.as_ref(), lang.as_ref());
    plugin(&["new".as_ref(), name, "--kind".as_ref(), kind, "--lang".as_ref(), lang, "--dir".as_ref(), dir.as_os_str()])
}

fn plugin_test(wasm: &Path, cases: &Path) -> (bool, String) {
    plugin(&["test".as_ref(), wasm.as_os_str(), "--cases".as_ref(), cases.as_os_str()])
}

/// Runs a build step; panics with its output when it fails.
fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{command:?} failed:\n{said}");
}

/// The project's component, built the way its README says, with the tools
/// `make rules` installed under `.venv/`; `world` is the WIT world it targets.
fn build(project: &Path, name: &str, world: &str, lang: &str) -> PathBuf {
    let crate_name = name.replace('-', "_");
    match lang {
        "rust" => {
            // One target directory for every scaffolded crate: wit-bindgen is built once.
            let target = repo_root().join("target/scaffold-rust");
            run(Command::new("cargo")
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(project));
            target.join(format!("wasm32-wasip2/release/{crate_name}.wasm"))
        }
        "python" => {
            run(Command::new(repo_root().join(".venv/authoring/bin/componentize-py"))
                .args(["-d", "wit", "-w", world, "componentize", "app", "-o"])
                .arg(format!("{crate_name}.wasm"))
                .current_dir(project));
            project.join(format!("{crate_name}.wasm"))
        }
        _ => {
            // `npm run build` finds componentize-js on PATH, as after `npm install`.
            let tools = repo_root().join(".venv/node/node_modules/.bin");
            let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap_or_default());
            run(Command::new("npm").args(["run", "--silent", "build"]).env("PATH", path).current_dir(project));
            project.join(format!("{crate_name}.wasm"))
        }
    }
}

#[test]
fn plugin_new_projects_in_every_language_build_and_pass_their_own_cases() {
    let dir = tempfile::tempdir().unwrap();
    for lang in ["rust", "python", "js"] {
        for kind in ["guardrail-policy", "approval-rule"] {
            let name = format!("{lang}-{kind}");
            let (created, printed) = plugin_new(&name, kind, lang, dir.path());
            assert!(created, "{printed}");
            let project = dir.path().join(&name);
            assert!(project.join("wit/worlds.wit").exists() && project.join("README.md").exists(), "{printed}");
            let wasm = build(&project, &name, kind, lang);
            let (passed, printed) = plugin_test(&wasm, &project.join("cases.yaml"));
            assert!(passed, "{lang} {kind}:\n{printed}");
            assert!(printed.contains(" passed, 0 failed") && !printed.contains("FAIL"), "{printed}");
        }
    }
    // A second `new` of the same name writes nothing over the first.
    let (created, printed) = plugin_new("rust-guardrail-policy", "guardrail-policy", "rust", dir.path());
    assert!(!created && printed.contains("exists"), "{printed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_server_projects_in_every_language_pass_their_cases_deploy_and_answer_the_official_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let components = tempfile::tempdir().unwrap();
    let mut built = Vec::new();
    for lang in ["rust", "python", "js"] {
        let name = format!("{lang}-tools");
        let (created, printed) = plugin_new(&name, "mcp-server", lang, dir.path());
        assert!(created, "{printed}");
        let project = dir.path().join(&name);
        assert!(project.join("wit/world.wit").exists() && !project.join("wit/host.wit").exists(), "{printed}");
        let wasm = build(&project, &name, "tools", lang);
        let (passed, printed) = plugin_test(&wasm, &project.join("cases.yaml"));
        assert!(passed && printed.contains("4 passed, 0 failed"), "{lang}:\n{printed}");
        let bytes = std::fs::read(&wasm).unwrap();
        std::fs::write(components.path().join(format!("{name}.wasm")), &bytes).unwrap();
        built.push((name, hex::encode(sha2::Sha256::digest(&bytes))));
    }

    let served_from = components.path().to_path_buf();
    let host = TestHost::start(move |c| c.components.dir = Some(served_from)).await;
    for (name, sha256) in built {
        let entry = json!({"name": name, "slug": name, "transport": "streamable-http", "supported_backends": ["wasm"],
                           "source": {"type": "wasm", "path": format!("{name}.wasm"), "sha256": format!("sha256:{sha256}")}});
        let (status, written) = host.post("/catalog", entry).await;
        assert_eq!(status, StatusCode::CREATED, "{written}");
        let id = host.deploy(json!({"slug": name, "backend": "wasm"})).await;
        host.wait_for(&id, "connected").await;
        let (url, token) = (host.proxy_url(&id), Some(host.admin_token.as_str()));
        let mut tools = support::mcp_sdk::list_tools(&url, token).await;
        tools.sort();
        assert_eq!(tools, ["count-words", "greet"], "{name}");
        let greeting = support::mcp_sdk::call_tool(&url, token, "greet", json!({"name": "Ada", "excited": true})).await;
        assert_eq!(greeting.trim(), "Hello, Ada!", "{name}");
        let counted = support::mcp_sdk::call_tool(&url, token, "count-words", json!({"text": "a b c"})).await;
        assert_eq!(counted.trim(), "3", "{name}");
    }
}

#[test]
fn pinned_images_in_python_and_javascript_pass_the_rust_rules_cases() {
    let cases = repo_root().join("policies/pinned-images/cases.yaml");
    for file in ["pinned_images.wasm", "pinned_images_py.wasm", "pinned_images_js.wasm"] {
        let (passed, printed) = plugin_test(&support::guest_dir().join(file), &cases);
        assert!(passed && printed.contains("7 passed, 0 failed"), "{file}:\n{printed}");
    }
    // The sandbox's limits hold for them too: a failure per case, not a crash.
    let wasm = support::guest_dir().join("pinned_images_py.wasm");
    let (passed, printed) = plugin(&[
        "test".as_ref(),
        wasm.as_os_str(),
        "--cases".as_ref(),
        cases.as_os_str(),
        "--memory-mb".as_ref(),
        "4".as_ref(),
    ]);
    assert!(!passed && printed.contains("exceeded its memory limit of 4 MB"), "{printed}");
    assert!(printed.contains("0 passed, 7 failed"), "{printed}");
}

fn upload(id: &str, file: &str, settings: Value) -> Value {
    let bytes = std::fs::read(support::guest_dir().join(file)).expect("built by `make guests rules`");
    json!({"manifest": {"id": id, "kind": "guardrail-policy", "grants": ["logging"],
                        "limits": {"memory_mb": 32, "cpu_ms": 100, "timeout_ms": 2000}, "settings": settings},
           "component": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_rules_judge_deploys_in_the_chain_of_a_running_host() {
    let host = TestHost::start(|_| {}).await;
    for (id, file) in [("digest-py", "pinned_images_py.wasm"), ("digest-js", "pinned_images_js.wasm")] {
        let (status, answer) = host.post("/plugins", upload(id, file, json!({"require_digest": true}))).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let chain = json!({"plugins": [id]});
        let (status, set) = host.request(Method::PUT, "/policy-chain", Some(chain)).await;
        assert_eq!(status, StatusCode::OK, "{set}");
        // The fixture is tagged, not pinned by digest.
        let (status, refused) = host.post("/runtimes/deploy", json!({"slug": "fixture"})).await;
        assert_eq!((status, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("source.image")));
        assert!(refused["error"].as_str().unwrap().contains("must be pinned by digest"), "{id}: {refused}");
    }
    let (_, plugins) = host.get("/plugins").await;
    let ids = support::pluck(&plugins, "/id");
    assert!(ids.contains(&"digest-py") && ids.contains(&"digest-js"), "{plugins}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_built_against_an_earlier_minor_version_of_the_contract_still_runs() {
    let wasm = support::guest_dir().join("compat_policy.wasm");
    let imports = std::fs::read(&wasm).unwrap();
    let built_against = String::from_utf8_lossy(&imports).contains("mcp-runtime:plugin/policy@1.0.0");
    assert!(built_against, "the fixture exports the 1.0.0 policy interface");
    assert_ne!(mcp_runtime::contract::WIT_VERSION, "1.0.0", "the host speaks a later minor version");

    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.yaml");
    let text = r#"
kind: guardrail-policy
runs: 2
cases:
  - name: judged by the 1.0.0 build
    entry: {name: app, slug: app, source: {type: docker, image: "ghcr.io/acme/app:1.2"}}
    expect: {allowed: true, warnings: [compat]}
"#;
    std::fs::write(&cases, text).unwrap();
    let (passed, printed) = plugin_test(&wasm, &cases);
    assert!(passed, "{printed}");

    let host = TestHost::start(|_| {}).await;
    let (status, answer) = host.post("/plugins", upload("compat", "compat_policy.wasm", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "a running host takes it too: {answer}");
}
