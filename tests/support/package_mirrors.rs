//! Real package mirrors on loopback, as sites run them: Verdaccio serving
//! npm and pypiserver serving PyPI, each with no uplink, from what
//! `scripts/package-mirrors.sh` (run by the set-up) fetched once. A test that
//! deploys a package server reaches no public index.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, repo_root};

/// The pinned test packages (as `scripts/package-mirrors.sh` names them).
pub const NPM_SERVER: (&str, &str) = ("@modelcontextprotocol/server-everything", "2026.8.31");
pub const PYPI_SERVER: (&str, &str) = ("mcp-server-time", "2026.10.19");
/// Real packages whose trees hold versions with known advisories (see
/// `scripts/package-mirrors.sh`): minimist 0.0.8 and jinja2 3.1.2.
pub const NPM_VULNERABLE: (&str, &str) = ("mkdirp", "0.5.1");
pub const PYPI_VULNERABLE: (&str, &str) = ("jinja2-cli", "0.8.2");

pub struct PackageMirrors {
    /// `http://127.0.0.1:<port>`: an npm registry.
    pub npm: String,
    /// `http://127.0.0.1:<port>/simple/`: a PyPI index (PEP 503).
    pub pypi: String,
    servers: Vec<Child>,
    _config: tempfile::TempDir,
}

fn mirrored(relative: &str) -> PathBuf {
    let path = repo_root().join(relative);
    assert!(path.exists(), "{} missing: run scripts/package-mirrors.sh (the set-up of make test does)", path.display());
    path
}

impl PackageMirrors {
    pub async fn start() -> PackageMirrors {
        Self::start_with(&[]).await
    }

    /// The mirrors, pypiserver also serving the files in `more_pypi` (a
    /// test's own distributions).
    pub async fn start_with(more_pypi: &[&std::path::Path]) -> PackageMirrors {
        let storage = mirrored(".venv/package-mirror/npm");
        let wheels = mirrored(".venv/package-mirror/pypi");
        let config = tempfile::tempdir().unwrap();
        let verdaccio_config = config.path().join("verdaccio.yaml");
        let offline = format!(
            "storage: {}\nuplinks: {{}}\npackages:\n  '**':\n    access: $all\nlog: {{ type: stdout, format: pretty, level: warn }}\n",
            storage.display()
        );
        std::fs::write(&verdaccio_config, offline).unwrap();
        let (npm_port, pypi_port) = (free_port(), free_port());
        let verdaccio = Command::new("node")
            .arg(mirrored(".venv/package-mirror-tools/node_modules/verdaccio/bin/verdaccio"))
            .args(["--config", verdaccio_config.to_str().unwrap(), "--listen", &format!("127.0.0.1:{npm_port}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("verdaccio starts");
        let pypiserver = Command::new(mirrored(".venv/package-mirror-tools/py/bin/pypi-server"))
            .args(["run", "--host", "127.0.0.1", "--port", &pypi_port.to_string(), "--disable-fallback"])
            // Links carry `#sha256=…`, what hash-pinned requirements check.
            .args(["--hash-algo", "sha256"])
            .args(["--authenticate", ".", "--passwords", "."])
            .arg(&wheels)
            .args(more_pypi)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pypiserver starts");
        let mirrors = PackageMirrors {
            npm: format!("http://127.0.0.1:{npm_port}"),
            pypi: format!("http://127.0.0.1:{pypi_port}/simple/"),
            servers: vec![verdaccio, pypiserver],
            _config: config,
        };
        answers(&format!("{}/-/ping", mirrors.npm)).await;
        answers(&mirrors.pypi).await;
        mirrors
    }
}

/// Waits until `url` answers 200 (each mirror takes a moment to start).
async fn answers(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match reqwest::get(url).await {
            Ok(r) if r.status().is_success() => return,
            _ if Instant::now() > deadline => panic!("{url} never answered"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

impl Drop for PackageMirrors {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}
