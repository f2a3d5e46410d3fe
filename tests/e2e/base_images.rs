//! The base images npm and PyPI servers build on, made from Debian packages
//! by `scripts/base-images.sh` (the set-up runs it; no Docker Hub): each has
//! its runtime, the CA bundle, and an unprivileged `mcp` user.

use crate::support::{docker, TEST_LABEL};

/// Runs `command` in a throwaway container of `image`, as its `mcp` user.
fn inside(image: &str, command: &[&str]) -> String {
    let label = format!("{TEST_LABEL}=1");
    let mut args = vec!["run", "--rm", "--label", &label, "--network", "none", "--user", "mcp", image];
    args.extend_from_slice(command);
    docker(&args)
}

#[test]
fn the_node_image_runs_node_20_and_npm_as_an_unprivileged_user() {
    let node = inside("mcp-runtime/node", &["node", "-p", "process.versions.node"]);
    assert!(node.starts_with("20."), "Node.js {node}");
    let npm = inside("mcp-runtime/node", &["npm", "--version"]);
    assert!(npm.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some(), "npm {npm}");
    assert_eq!(inside("mcp-runtime/node", &["id", "-u"]), "10001");
    assert!(!inside("mcp-runtime/node", &["ls", "/etc/ssl/certs/ca-certificates.crt"]).is_empty());
}

#[test]
fn the_python_image_runs_python_3_13_with_venv_as_an_unprivileged_user() {
    let version = inside("mcp-runtime/python", &["python3", "-c", "import sys; print(sys.version.split()[0])"]);
    assert!(version.starts_with("3.13."), "Python {version}");
    let venv = inside("mcp-runtime/python", &["sh", "-c", "python3 -m venv /tmp/v && /tmp/v/bin/python -c 'print(1)'"]);
    assert_eq!(venv, "1");
    assert_eq!(inside("mcp-runtime/python", &["id", "-un"]), "mcp");
}
