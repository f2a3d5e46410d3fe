//! The guides in docs/guides/ cannot rot: every `sh` block runs, in order, in
//! one bash session against a real host and Docker engine, and when a `text`
//! block follows it, what the commands printed must be exactly that. Every
//! `yaml` block is checked by the tool that reads it: host configuration
//! laid over the embedded defaults by `mcp-runtime check-config`, Prometheus
//! files by `promtool`.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{TestHost, TEST_JWT_SECRET};

/// Printed between blocks, to split the session's output by block.
const BLOCK_END: &str = "--- end of guide block ---";

/// A fenced block of a guide: its info string and its text.
struct Block {
    lang: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in markdown.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some(Block { lang: lang.trim().to_string(), text: String::new() }),
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some(block), _) => block.text += &format!("{line}\n"),
            (None, None) => {}
        }
    }
    blocks
}

fn guide(name: &str) -> Vec<Block> {
    let path = support::repo_root().join("docs/guides").join(name);
    blocks(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// `mcp-runtime` (as the tests built it), the MCP SDK's Python, then the system's.
fn search_path() -> String {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_mcp-runtime"));
    let sdk = support::repo_root().join(".venv/mcp-sdk/bin");
    assert!(sdk.join("python3").exists(), "the MCP Python SDK is installed by `make mcp-sdk`");
    format!("{}:{}:{}", binary.parent().unwrap().display(), sdk.display(), std::env::var("PATH").unwrap())
}

fn command(program: &str, dir: &Path, host: &TestHost) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("PATH", search_path())
        .env("MCP_RUNTIME", &host.base)
        .env("ECHO_IMAGE", support::fixture_image())
        .env("JWT_SECRET_KEY", TEST_JWT_SECRET)
        .env("RUNTIME_IBM_API_KEY", "an-api-key-of-yours")
        .env_remove("RUST_BACKTRACE");
    command
}

/// The host as `make run` starts it: the sample catalog, and none of the
/// test suite's faulty plugins.
fn as_shipped(config: &mut mcp_runtime::config::RuntimeConfig) {
    config.catalog.seed_file = None;
    config.plugins.retain(|p| !p.id.starts_with("fault-"));
}

/// Runs the guide's `sh` blocks in one session and checks each `text` block
/// against what the `sh` block before it printed.
async fn run_shell_blocks(name: &str) {
    let host = TestHost::start(as_shipped).await;
    let blocks = guide(name);
    let shell: Vec<&Block> = blocks.iter().filter(|b| b.lang == "sh").collect();
    assert!(!shell.is_empty(), "{name} has commands");
    let mut script = String::from("set -euo pipefail\n");
    for block in &shell {
        script += &format!("{}echo '{BLOCK_END}'\n", block.text);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut bash = command("bash", dir.path(), &host);
    let output = tokio::task::spawn_blocking(move || bash.arg("-c").arg(script).output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let printed: Vec<&str> = stdout.split(&format!("{BLOCK_END}\n")).collect();
    // For whoever writes a guide: each block's output, to put in its `text` block.
    if std::env::var_os("GUIDES_SHOW").is_some() {
        for (block, out) in shell.iter().zip(&printed) {
            eprintln!("```sh\n{}```\n```text\n{out}```\n", block.text);
        }
    }
    assert!(
        output.status.success(),
        "{name}: block {} failed:\n{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        printed.len(),
        shell.get(printed.len() - 1).map_or("", |b| b.text.as_str())
    );
    // Each `text` block is the output of the `sh` block just before it; a
    // block that prints anything shows it, so nothing printed goes unchecked.
    let mut index = None;
    let mut shown = vec![false; shell.len()];
    for block in &blocks {
        match block.lang.as_str() {
            "sh" => index = Some(index.map_or(0, |i| i + 1)),
            "text" => {
                let i = index.expect("a text block follows a sh block");
                assert_eq!(printed[i], block.text, "{name}: what block {} prints:\n{}", i + 1, shell[i].text);
                shown[i] = true;
            }
            _ => {}
        }
    }
    for (i, block) in shell.iter().enumerate().filter(|(i, _)| !shown[*i]) {
        assert_eq!(printed[i], "", "{name}: block {} prints, and no text block shows it:\n{}", i + 1, block.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_guide_runs_as_written() {
    run_shell_blocks("api.md").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_guide_runs_as_written() {
    run_shell_blocks("user.md").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_guide_runs_as_written() {
    run_shell_blocks("admin.md").await;
}

/// Deep-merges `overlay` into `base`, as an admin adds a section to their
/// config: lists of items with an `id` (plugins) gain the overlay's items.
fn merge(base: &mut serde_yaml_ng::Value, overlay: serde_yaml_ng::Value) {
    use serde_yaml_ng::Value;
    match (base, overlay) {
        (Value::Sequence(base), Value::Sequence(overlay)) if overlay.iter().all(|v| v.get("id").is_some()) => {
            for item in overlay {
                base.retain(|existing| existing.get("id") != item.get("id"));
                base.push(item);
            }
        }
        (serde_yaml_ng::Value::Mapping(base), serde_yaml_ng::Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_configuration_in_the_guides_is_valid() {
    let host = TestHost::start(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("osv")).unwrap();
    let signing = mcp_runtime::supply_chain::cosign::PrivateKey::generate();
    std::fs::write(dir.path().join("builds.key"), signing.to_pem()).unwrap();
    for public in ["cosign.pub", "vendor.pub", "builds.pub"] {
        std::fs::write(dir.path().join(public), signing.public().to_pem()).unwrap();
    }
    let mut checked = 0;
    for name in ["api.md", "user.md", "admin.md"] {
        for block in guide(name).iter().filter(|b| b.lang == "yaml") {
            let file = dir.path().join(format!("block-{checked}.yml"));
            let (program, args): (&str, Vec<&str>) = if block.text.starts_with("# prometheus.yml") {
                std::fs::write(dir.path().join("mcp-runtime.token"), "a token").unwrap();
                let text = block.text.replace("/etc/prometheus/mcp-runtime.token", "mcp-runtime.token");
                std::fs::write(&file, text).unwrap();
                ("promtool", vec!["check", "config", "--syntax-only"])
            } else if block.text.starts_with("# alerts.yml") {
                std::fs::write(&file, &block.text).unwrap();
                ("promtool", vec!["check", "rules"])
            } else {
                // The files a configuration names exist where the operator keeps them: here, in the scratch dir.
                let text = block
                    .text
                    .replace("/etc/mcp-runtime/", &format!("{}/", dir.path().display()))
                    .replace("/var/lib/osv", &dir.path().join("osv").display().to_string());
                let mut config: serde_yaml_ng::Value =
                    serde_yaml_ng::from_str(mcp_runtime::config::EMBEDDED_CONFIG).unwrap();
                merge(&mut config, serde_yaml_ng::from_str(&text).unwrap());
                std::fs::write(&file, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
                ("mcp-runtime", vec!["--config", file.to_str().unwrap(), "check-config"])
            };
            let mut command = command(program, dir.path(), &host);
            command.args(&args);
            if program == "promtool" {
                command.arg(&file);
            }
            let output = command.output().unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(
                output.status.success(),
                "{name}: this configuration is refused:\n{}\n{}{}",
                block.text,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "the guides' configurations ({checked})");
}

/// Every error status the OpenAPI document says an operation can answer has
/// its rows in the user guide's troubleshooting table.
#[test]
fn troubleshooting_covers_every_error_the_api_documents() {
    let root = support::repo_root();
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("docs/openapi.json")).unwrap()).unwrap();
    let guide = std::fs::read_to_string(root.join("docs/guides/user.md")).unwrap();
    let troubleshooting = guide.split("## Troubleshooting").nth(1).expect("a troubleshooting section");
    let mut statuses: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .flat_map(|operation| operation["responses"].as_object().unwrap().keys())
        .map(String::as_str)
        .filter(|status| status.starts_with('4') || status.starts_with('5'))
        .collect();
    statuses.sort();
    statuses.dedup();
    assert!(statuses.len() >= 8, "{statuses:?}");
    for status in statuses {
        assert!(troubleshooting.contains(&format!("\n| {status} |")), "no troubleshooting row for {status}");
    }
}
