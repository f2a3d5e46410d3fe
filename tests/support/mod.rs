//! Test harness: real hosts on loopback against the real Docker engine, the
//! MCP fixture packaged `FROM scratch`, and cleanup of everything a test
//! created (by its own ownership label), even when the test fails.
#![allow(dead_code)]

pub mod browser;
pub mod contextforge;
pub mod git_server;
pub mod in_process;
pub mod mcp_sdk;
pub mod package_mirrors;
pub mod ssh_server;
pub mod webhook;

use mcp_runtime::app::RunningHost;
use mcp_runtime::auth::{Authenticator, Role};
use mcp_runtime::clock::ManualClock;
use mcp_runtime::config::{RuntimeConfig, EMBEDDED_CONFIG};
use mcp_runtime::plugins::{Grant, PluginKind, PluginLimits, PluginManifest};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Tagged as if from the loopback registry, which the default config allows.
pub const FIXTURE_IMAGE: &str = "127.0.0.1:5000/mcp-fixture:test";
pub const TEST_LABEL: &str = "mcp-runtime.test";

/// A loopback port nothing listens on now, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

pub fn guest_dir() -> PathBuf {
    let dir = repo_root().join("target/wasm32-wasip2/guest");
    assert!(dir.join("docker_backend.wasm").exists(), "guests missing in {}: run `make guests`", dir.display());
    dir
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// The running container of a deployment, by its label.
pub fn container_of(deployment: &str) -> String {
    let filter = format!("label=mcp-runtime.deployment={deployment}");
    docker(&["ps", "-q", "--filter", &filter]).lines().next().expect("the deployment's container").to_string()
}

/// Lines of `docker` output, or none when the command fails (cleanup paths).
fn docker_lines(args: &[&str]) -> Vec<String> {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect())
        .unwrap_or_default()
}

/// The static stdio bridge the host places in images (`make bridge`).
pub fn stdio_bridge() -> PathBuf {
    let binary = repo_root().join("target/x86_64-unknown-linux-gnu/release/mcp-stdio-bridge");
    assert!(binary.exists(), "{} missing: run `make bridge`", binary.display());
    binary
}

/// The fixture image, built once per test process from the static binary.
pub fn fixture_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let binary = repo_root().join("target/x86_64-unknown-linux-gnu/release/mcp-fixture");
        assert!(binary.exists(), "{} missing: run `make fixture`", binary.display());
        let context = tempfile::tempdir().unwrap();
        std::fs::copy(&binary, context.path().join("mcp-fixture")).unwrap();
        std::fs::copy(repo_root().join("tests/fixture/Dockerfile"), context.path().join("Dockerfile")).unwrap();
        docker(&[
            "build",
            "-q",
            "--label",
            &format!("{TEST_LABEL}=1"),
            "-t",
            FIXTURE_IMAGE,
            context.path().to_str().unwrap(),
        ]);
    });
    FIXTURE_IMAGE
}

/// The test catalog: the fixture under each profile, and entries that must be refused.
pub fn test_catalog() -> String {
    catalog_of(fixture_image())
}

/// The test catalog naming `image`, which nothing here builds or pulls.
pub fn catalog_of(image: &str) -> String {
    format!(
        r#"
- {{name: Fixture, slug: fixture, description: "MCP probe server", source: {{type: docker, image: "{image}"}}, guardrails_profile: restricted, supported_backends: [docker], tags: [test]}}
- {{name: Fixture standard, slug: fixture-standard, source: {{type: docker, image: "{image}"}}, guardrails_profile: standard, supported_backends: [docker]}}
- {{name: Fixture latest, slug: fixture-latest, source: {{type: docker, image: "127.0.0.1:5000/mcp-fixture:latest"}}, supported_backends: [docker]}}
- {{name: Fixture elsewhere, slug: fixture-elsewhere, source: {{type: docker, image: "registry.invalid/mcp/fixture:1"}}, guardrails_profile: restricted, supported_backends: [docker]}}
- {{name: Fixture on stdio, slug: fixture-stdio, source: {{type: docker, image: "{image}"}}, transport: stdio, args: ["--stdio"], guardrails_profile: restricted, supported_backends: [docker, ibm_code_engine]}}
- {{name: Fixture per session, slug: fixture-per-session, source: {{type: docker, image: "{image}"}}, transport: stdio, session_mode: per-session, args: ["--stdio"], guardrails_profile: restricted, supported_backends: [docker]}}
- {{name: Fixture on SSE, slug: fixture-sse, source: {{type: docker, image: "{image}"}}, transport: sse, mcp_path: /sse, args: ["--sse"], guardrails_profile: restricted, supported_backends: [docker]}}
- {{name: "Fixture, stateless only", slug: fixture-stateless, source: {{type: docker, image: "{image}"}}, args: ["--stateless"], guardrails_profile: restricted, supported_backends: [docker]}}
- {{name: Fixture compose, slug: fixture-compose, source: {{type: compose, compose_file: "services: {{m: {{image: \"127.0.0.1:5000/mcp-fixture:test\"}}}}", main_service: m}}, supported_backends: [docker]}}
"#
    )
}

pub fn fault_policy(id: &str, mode: &str) -> PluginManifest {
    PluginManifest {
        id: id.into(),
        kind: PluginKind::GuardrailPolicy,
        path: "fault_policy.wasm".into(),
        sha256: None,
        grants: vec![Grant::Logging],
        allowed_hosts: vec![],
        limits: PluginLimits { memory_mb: 16, cpu_ms: 50, timeout_ms: 2000 },
        settings: json!({"mode": mode}),
    }
}

/// The tests' JWT secret (as ContextForge's would be).
pub const TEST_JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

pub fn fault_approval(id: &str, mode: &str) -> PluginManifest {
    PluginManifest { kind: PluginKind::ApprovalRule, path: "fault_approval.wasm".into(), ..fault_policy(id, mode) }
}

pub struct TestHost {
    host: Option<RunningHost>,
    /// Set for a host served in-process (`TestHost::in_process`): no listener.
    router: Option<(axum::Router, std::sync::Arc<mcp_runtime::deployments::Runtime>)>,
    /// The host's clock: tests move it forward instead of waiting (approval deadlines).
    pub clock: std::sync::Arc<ManualClock>,
    auth: Authenticator,
    /// Sent with every request unless another token is given.
    pub admin_token: String,
    pub base: String,
    pub owner: String,
    pub config: RuntimeConfig,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl TestHost {
    /// A host on 127.0.0.1 with its own data dir and ownership label.
    pub async fn start(tweak: impl FnOnce(&mut RuntimeConfig)) -> TestHost {
        let data = tempfile::tempdir().unwrap();
        let config = Self::config(&data, &test_catalog(), tweak);
        let clock = std::sync::Arc::new(ManualClock::default());
        let host = mcp_runtime::app::start_with(config.clone(), clock.clone()).await.expect("host starts");
        let base = format!("http://{}", host.addr);
        Self::new(config, data, clock, Some(host), None, base)
    }

    /// A host whose router is called in-process, with no container engine:
    /// the stub backend is the default, the Docker backend is listed but
    /// unavailable, and no background loop runs.
    pub async fn in_process(tweak: impl FnOnce(&mut RuntimeConfig)) -> TestHost {
        let data = tempfile::tempdir().unwrap();
        let catalog = catalog_of(FIXTURE_IMAGE).replace(
            "supported_backends: [docker",
            &format!("supported_backends: [{}, docker", in_process::STUB_BACKEND),
        );
        let config = Self::config(&data, &catalog, |c| {
            in_process::without_engine(c, data.path());
            tweak(c)
        });
        let auth = std::sync::Arc::new(Authenticator::new(&config.auth, &config.data_dir).expect("test auth config"));
        let clock = std::sync::Arc::new(ManualClock::default());
        let built = mcp_runtime::app::build_with(config.clone(), clock.clone()).await.expect("host builds");
        let router = mcp_runtime::app::router(&built.services, &auth);
        let runtime = built.services.deployments.clone();
        Self::new(config, data, clock, None, Some((router, runtime)), "http://in-process".into())
    }

    /// The tests' config: its own data dir, ownership label, catalog and fault plugins.
    fn config(data: &tempfile::TempDir, catalog_text: &str, tweak: impl FnOnce(&mut RuntimeConfig)) -> RuntimeConfig {
        // `RUST_LOG=mcp_runtime=debug` shows the host's log in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let catalog = data.path().join("catalog.yaml");
        std::fs::write(&catalog, catalog_text).unwrap();
        let mut config = RuntimeConfig::parse(EMBEDDED_CONFIG, &|_| None).unwrap();
        config.listen = "127.0.0.1:0".into();
        config.data_dir = data.path().join("data");
        config.plugin_dir = guest_dir();
        config.components.dir = Some(guest_dir());
        config.plugin_cache_dir = Some(repo_root().join("target/test-plugin-cache"));
        config.owner = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        config.catalog.seed_file = Some(catalog);
        config.plugins.push(fault_policy("fault-trap", "trap"));
        config.plugins.push(fault_policy("fault-loop", "loop"));
        config.plugins.push(fault_policy("fault-memory", "memory"));
        config.plugins.push(fault_approval("fault-approval-trap", "trap"));
        config.plugins.push(fault_approval("fault-approval-loop", "loop"));
        config.auth.jwt_secret = TEST_JWT_SECRET.into();
        // A crash or a backend coming back is seen within a second, not five.
        config.health.watch_interval_ms = 1000;
        config.health.usage_interval_ms = 1000;
        // No public package index: a test that resolves packages starts the mirrors.
        config.builders.npm.registry = "http://127.0.0.1:9/".into();
        config.builders.pypi.index_url = "http://127.0.0.1:9/simple/".into();
        config.builders.stdio_bridge = Some(stdio_bridge());
        tweak(&mut config);
        config
    }

    fn new(
        config: RuntimeConfig,
        data: tempfile::TempDir,
        clock: std::sync::Arc<ManualClock>,
        host: Option<RunningHost>,
        router: Option<(axum::Router, std::sync::Arc<mcp_runtime::deployments::Runtime>)>,
        base: String,
    ) -> TestHost {
        let auth = Authenticator::new(&config.auth, &config.data_dir).expect("test auth config");
        let admin_token = auth.mint("admin@example.com", &[Role::Admin], Duration::from_secs(3600));
        TestHost {
            auth,
            admin_token,
            base,
            owner: config.owner.clone(),
            host,
            router,
            clock,
            config,
            // No idle connections: a restart must find the store closed.
            http: reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap(),
            _data: data,
        }
    }

    /// Stops the host; `resume` starts a new one on the same data and label.
    pub async fn stop(&mut self) {
        if let Some(host) = self.host.take() {
            host.shutdown().await;
        }
    }

    pub async fn resume(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let host = loop {
            match mcp_runtime::app::start_with(self.config.clone(), self.clock.clone()).await {
                Ok(host) => break host,
                // The previous host's last connections may still hold the store for a moment.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart: {e:#}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("host restarts: {e:#}"),
            }
        };
        self.base = format!("http://{}", host.addr);
        self.host = Some(host);
    }

    /// A token for `user` with `roles` and `groups`.
    pub fn token_in(&self, user: &str, roles: &[Role], groups: &[&str]) -> String {
        self.auth.mint_with_groups(user, roles, groups, Duration::from_secs(3600))
    }

    /// A token for `user` with `roles`, signed like the gateway's.
    pub fn token(&self, user: &str, roles: &[Role]) -> String {
        self.auth.mint(user, roles, Duration::from_secs(3600))
    }

    pub async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.request_as(Some(&self.admin_token), method, path, body).await
    }

    /// A request with `token` (none: unauthenticated).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, text) = self.send(token, method, path, body.map(|b| b.to_string())).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A request (a JSON body as text) over loopback, or through the router in-process.
    async fn send(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, String) {
        if let Some((router, _)) = &self.router {
            return in_process::send(router, method, path, token, body).await;
        }
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let res = req.send().await.expect("host answers");
        let status = res.status();
        (status, res.text().await.unwrap())
    }

    /// Only the status of a request with `token` (a streamed answer is not read).
    pub async fn status_as(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> StatusCode {
        if let Some((router, _)) = &self.router {
            return in_process::answer(router, method, path, Some(token), body.map(|b| b.to_string())).await.status();
        }
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("host answers").status()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    /// A text answer (logs), as admin.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let (status, body) = self.get_stream(path).await;
        (status, body.text().await.unwrap_or_default())
    }

    /// The answer itself, to read as it streams (server-sent events), as admin.
    pub async fn get_stream(&self, path: &str) -> (StatusCode, reqwest::Response) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("host answers");
        (res.status(), res)
    }

    /// Raw body, for malformed-input tests.
    pub async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let (status, text) =
            self.send(Some(&self.admin_token), reqwest::Method::POST, path, Some(body.to_string())).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Deploys and returns the id (asserting 202).
    pub async fn deploy(&self, body: Value) -> String {
        let (status, answer) = self.post("/runtimes/deploy", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    /// Waits until the deployment reaches `state` (failing fast on `error`),
    /// woken by the store's events rather than polling the API; answers the
    /// deployment as `GET /runtimes/{id}` shows it then.
    /// Polls `GET /runtimes/{id}` until its `usage` (as the sampler last
    /// read it, every second in tests) satisfies `ready`; the deployment.
    pub async fn wait_for_usage(&self, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, d) = self.get(&format!("/runtimes/{id}")).await;
            if ready(&d["usage"]) {
                return d;
            }
            assert!(tokio::time::Instant::now() < deadline, "no such usage sampled: {d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_for(&self, id: &str, state: &str) -> Value {
        self.wait_for_within(id, state, Duration::from_secs(90)).await
    }

    /// `wait_for` with a deadline of its own (a build from packages takes a while).
    pub async fn wait_for_within(&self, id: &str, state: &str, within: Duration) -> Value {
        use tokio::sync::broadcast::error::RecvError;
        let deadline = tokio::time::Instant::now() + within;
        // Subscribed before the first look: no change can fall between the two.
        let mut events = self.runtime().subscribe();
        loop {
            let now = self.runtime().get(id).ok().map(|d| serde_json::to_value(d.status).unwrap());
            let ended = ["error", "rejected", "awaiting_approval"].iter().find(|end| now == Some(json!(end)));
            if now == Some(json!(state)) {
                let d = self.get(&format!("/runtimes/{id}")).await.1;
                // It may have moved on between the two reads: its next event says where.
                if d["status"] == state {
                    return d;
                }
            }
            if let Some(end) = ended.filter(|end| **end != state) {
                let d = self.get(&format!("/runtimes/{id}")).await.1;
                panic!("deployment is {end}, not {state}: {d}");
            }
            let next = async {
                loop {
                    match events.recv().await {
                        Ok(event) if event.deployment.as_deref() != Some(id) => continue,
                        // A lagging receiver has missed events: look again.
                        Ok(_) | Err(RecvError::Lagged(_)) => return true,
                        Err(RecvError::Closed) => return false,
                    }
                }
            };
            match tokio::time::timeout_at(deadline, next).await {
                Ok(true) => {}
                // That host stopped: follow the one serving now.
                Ok(false) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    events = self.runtime().subscribe();
                }
                Err(_) => {
                    let d = self.get(&format!("/runtimes/{id}")).await.1;
                    panic!("deployment never reached {state}: {d}");
                }
            }
        }
    }

    pub fn runtime(&self) -> &std::sync::Arc<mcp_runtime::deployments::Runtime> {
        match (&self.host, &self.router) {
            (_, Some((_, runtime))) => runtime,
            (Some(host), None) => &host.runtime,
            (None, None) => panic!("host is not running"),
        }
    }

    /// An admin UI page's HTML, as the admin sees it (the session cookie is the token).
    pub async fn admin_page(&self, path: &str) -> String {
        let page = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("jwt_token={}", self.admin_token))
            .send()
            .await
            .unwrap();
        page.text().await.unwrap()
    }

    /// An MCP session with the deployment, through the host's proxy, as admin.
    pub async fn mcp_session(&self, id: &str) -> mcp_runtime::mcp::client::McpSession {
        let http = reqwest::Client::new();
        mcp_runtime::mcp::client::McpSession::connect_with(&http, &self.proxy_url(id), Some(self.admin_token.clone()))
            .await
            .expect("MCP session through the proxy")
    }

    pub fn proxy_url(&self, id: &str) -> String {
        format!("{}/servers/{id}/mcp", self.base)
    }

    /// Names of containers this host's label owns.
    pub fn owned_containers(&self) -> Vec<String> {
        docker_lines(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=mcp-runtime.owner={}", self.owner),
            "--format",
            "{{.Names}}",
        ])
    }

    pub fn owned_networks(&self) -> Vec<String> {
        docker_lines(&[
            "network",
            "ls",
            "--filter",
            &format!("label=mcp-runtime.owner={}", self.owner),
            "--format",
            "{{.Name}}",
        ])
    }

    pub fn owned_volumes(&self) -> Vec<String> {
        docker_lines(&[
            "volume",
            "ls",
            "--filter",
            &format!("label=mcp-runtime.owner={}", self.owner),
            "--format",
            "{{.Name}}",
        ])
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        remove_owned(&self.owner);
    }
}

/// Posts `body` to `path` and asserts it is refused with a JSON error; the
/// status and the field the answer names.
pub async fn refused(host: &TestHost, path: &str, body: Value) -> (StatusCode, String) {
    let (status, answer) = host.post(path, body.clone()).await;
    assert!(status.is_client_error(), "{path} accepted {body}: {status} {answer}");
    assert!(answer["error"].is_string(), "no JSON error body: {answer}");
    (status, answer["field"].as_str().unwrap_or_default().to_string())
}

/// Removes every container, network (with its host rule) and volume carrying `owner`.
pub fn remove_owned(owner: &str) {
    let filter = format!("label=mcp-runtime.owner={owner}");
    for c in docker_lines(&["ps", "-aq", "--filter", &filter]) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &c]).output();
    }
    for n in docker_lines(&["network", "ls", "--filter", &filter, "--format", "{{.Name}}"]) {
        for _ in 0..4 {
            let rule = ["-w", "-D", "INPUT", "-i", &n, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"];
            if !Command::new("iptables").args(rule).output().is_ok_and(|o| o.status.success()) {
                break;
            }
        }
        let _ = Command::new("docker").args(["network", "rm", &n]).output();
    }
    for v in docker_lines(&["volume", "ls", "-q", "--filter", &filter]) {
        let _ = Command::new("docker").args(["volume", "rm", "-f", &v]).output();
    }
    for i in docker_lines(&["images", "-q", "--filter", &filter]) {
        // Not its parent layers: another test's build may be using them as cache right now.
        let _ = Command::new("docker").args(["rmi", "-f", "--no-prune", &i]).output();
    }
}

/// An image `FROM` a builder's base image (`from`), distinct by `mark` and
/// labelled for the test's owner: what a test builds on it is its own.
pub fn derived_base(owner: &str, mark: &str, from: &str) -> String {
    let tag = format!("mcp-runtime-test/base:{owner}-{mark}");
    let mut build = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .args(owner_labels(owner))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dockerfile = format!("FROM {from}\nLABEL mcp-runtime-test.base={mark}\n");
    std::io::Write::write_all(&mut build.stdin.take().unwrap(), dockerfile.as_bytes()).unwrap();
    assert!(build.wait().unwrap().success(), "building {tag}");
    tag
}

/// Labels for objects a test creates itself, so `remove_owned` finds them.
pub fn owner_labels(owner: &str) -> Vec<String> {
    vec!["--label".into(), format!("mcp-runtime.owner={owner}"), "--label".into(), format!("{TEST_LABEL}=1")]
}

/// A real image registry (Debian's `docker-registry`) on a free loopback port.
pub struct Registry {
    pub address: String,
    child: std::process::Child,
    _storage: tempfile::TempDir,
}

impl Registry {
    pub async fn start() -> Registry {
        Self::start_with_login(None).await
    }

    /// A registry that lets in only `(user, password)` when given (htpasswd).
    pub async fn start_with_login(login: Option<(&str, &str)>) -> Registry {
        let storage = tempfile::tempdir().unwrap();
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: \"{address}\"}}\n",
            storage.path().join("data").display()
        );
        if let Some((user, password)) = login {
            let htpasswd = storage.path().join("htpasswd");
            let out =
                Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            yaml.push_str(&format!("auth: {{htpasswd: {{realm: test, path: {}}}}}\n", htpasswd.display()));
        }
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is installed (.ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        // Up once it answers at all (401 with a login).
        while reqwest::get(format!("http://{address}/v2/")).await.is_err() {
            assert!(Instant::now() < deadline, "registry did not start on {address}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Registry { address, child, _storage: storage }
    }

    /// Pushes the fixture as `<registry>/mcp-fixture:<tag>` and drops the local tag,
    /// so deploying it needs a real pull.
    pub fn push_fixture(&self, tag: &str) -> String {
        let image = format!("{}/mcp-fixture:{tag}", self.address);
        docker(&["tag", fixture_image(), &image]);
        docker(&["push", &image]);
        docker(&["rmi", &image]);
        image
    }
}

impl Drop for Registry {
    /// The registry goes, and every local reference to its images with it:
    /// pulled by digest they stay behind as `<address>/…:<none>`.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let prefix = format!("{}/", self.address);
        for line in docker_lines(&["images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"]) {
            let fields: Vec<&str> = line.split(' ').collect();
            let [repository, tag, digest] = fields[..] else { continue };
            if !repository.starts_with(&prefix) {
                continue;
            }
            let reference = match tag {
                "<none>" => format!("{repository}@{digest}"),
                _ => format!("{repository}:{tag}"),
            };
            let _ = Command::new("docker").args(["rmi", &reference]).output();
        }
    }
}

/// The string at `pointer` (e.g. `/type`, `/data/to`) in each element of a JSON array.
pub fn pluck<'a>(list: &'a Value, pointer: &str) -> Vec<&'a str> {
    list.as_array().map(|items| items.iter().filter_map(|i| i.pointer(pointer)?.as_str()).collect()).unwrap_or_default()
}

/// Removes everything labelled with an owner when dropped, even if the test
/// fails before a `TestHost` (which cleans up too) exists.
pub struct OwnedObjects(pub String);

impl Drop for OwnedObjects {
    fn drop(&mut self) {
        remove_owned(&self.0);
    }
}

/// A Code Engine fake that runs app images on a network this test owns.
pub struct CodeEngineFake {
    fake: ce_fake::FakeCodeEngine,
    _objects: OwnedObjects,
}

impl std::ops::Deref for CodeEngineFake {
    type Target = ce_fake::FakeCodeEngine;
    fn deref(&self) -> &Self::Target {
        &self.fake
    }
}

pub async fn code_engine(owner: &str) -> CodeEngineFake {
    code_engine_with(owner, |_| {}).await
}

pub async fn code_engine_with(owner: &str, tweak: impl FnOnce(&mut ce_fake::FakeConfig)) -> CodeEngineFake {
    let objects = OwnedObjects(owner.to_string());
    let network = format!("{owner}-ce");
    let mut create = vec!["network".to_string(), "create".into()];
    create.extend(owner_labels(owner));
    create.push(network.clone());
    run(Command::new("docker").args(&create));
    let labels = vec![format!("mcp-runtime.owner={owner}"), format!("{TEST_LABEL}=1")];
    let mut config = ce_fake::FakeConfig {
        run_apps: Some(ce_fake::DockerRunner { network, labels }),
        polls_until_ready: 2,
        ..Default::default()
    };
    tweak(&mut config);
    CodeEngineFake { fake: ce_fake::FakeCodeEngine::start(config).await, _objects: objects }
}

pub const CE_API_KEY: &str = "test-api-key";

/// Adds the Code Engine plugin and backend, aimed at `fake`, to a host config.
pub fn use_code_engine(config: &mut RuntimeConfig, fake: &ce_fake::FakeCodeEngine, api_key: &str) {
    let build =
        json!({"output_registry": "private.us.icr.io/mcp-images", "output_secret": "icr", "timeout_seconds": 60});
    use_code_engine_building(config, fake, api_key, build);
}

/// `use_code_engine` with the backend's `build` settings (where images it
/// builds, or the host makes for it, are pushed) as given.
pub fn use_code_engine_building(
    config: &mut RuntimeConfig,
    fake: &ce_fake::FakeCodeEngine,
    api_key: &str,
    build: Value,
) {
    let base = fake.base_url();
    config.plugins.push(PluginManifest {
        id: "code-engine".into(),
        kind: PluginKind::RuntimeBackend,
        path: "code_engine_backend.wasm".into(),
        sha256: None,
        // `source`: the host builds package entries and bridges stdio servers for it, and pushes them.
        grants: vec![Grant::Logging, Grant::KeyValue, Grant::OutgoingHttp, Grant::Source],
        allowed_hosts: vec![base.trim_start_matches("http://").to_string()],
        // prepare waits for the host's package builds, cold on two cores.
        limits: PluginLimits { memory_mb: 64, cpu_ms: 2000, timeout_ms: 900_000 },
        settings: json!({}),
    });
    let backend = json!({
        "plugin": "code-engine",
        "api_key": api_key,
        "region": "us-south",
        "project_id": fake.project_id(),
        "iam_url": base,
        "api_url": base,
        "per_deployment_limits": {"cpu": "0.25", "memory": "256m"},
        "request_timeout_ms": 2000,
        "max_retries": 3,
        "build": build,
    });
    config.backends.insert("ibm_code_engine".into(), serde_json::from_value(backend).unwrap());
}

/// A Unix socket that forwards to the real Docker engine and can be closed
/// and opened again: "the engine went away" without stopping the engine that
/// every other test uses.
pub struct EngineGate {
    pub socket: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl EngineGate {
    pub fn open() -> EngineGate {
        let dir = tempfile::tempdir().unwrap();
        let mut gate = EngineGate { socket: dir.path().join("docker.sock"), task: None, _dir: dir };
        gate.reopen();
        gate
    }

    /// Accepts and forwards again.
    pub fn reopen(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let listener = tokio::net::UnixListener::bind(&self.socket).unwrap();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut engine) = tokio::net::UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
            }
        }));
    }

    /// Stops accepting and cuts every forwarded connection.
    pub async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A listener on every host address that counts who reaches it.
pub struct Sentinel {
    pub port: u16,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Sentinel {
    pub async fn start() -> Sentinel {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Sentinel { port, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The host's address on a Docker deployment's own network.
pub fn gateway_of(deployment: &str) -> String {
    docker(&[
        "network",
        "inspect",
        &format!("mcprt-{}", &deployment[..8]),
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
    ])
}
