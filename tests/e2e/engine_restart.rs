//! The container engine restarting under load. The test runs an engine of
//! its own — a second `dockerd` in a network namespace it creates, with its
//! own socket, data root and address pool, never the engine other tests
//! use — and the host in that namespace beside it, reached over a veth pair.
//! While 8 MCP clients call tools and deploys are in flight the engine is
//! stopped and started: calls in flight fail, new ones succeed once it is
//! back, deployments return to `connected` by themselves, and nothing is
//! left duplicated, orphaned or stuck.

use crate::support::{self, TEST_JWT_SECRET};
use mcp_runtime::auth::{AuthConfig, Authenticator, Role};
use mcp_runtime::mcp::client::McpSession;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A `dockerd` in a network namespace of its own, joined to this one by a veth pair.
struct OwnEngine {
    netns: String,
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    /// This side's address and the namespace's, on the veth pair.
    inside: String,
}

impl OwnEngine {
    fn start() -> OwnEngine {
        let mark = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let netns = format!("mcpt-{mark}");
        let subnet = 1 + (u32::from_str_radix(&mark[..2], 16).unwrap() % 250);
        let (outer, inner) = (format!("mcpt{mark}o"), format!("mcpt{mark}i"));
        let (outside, inside) = (format!("10.231.{subnet}.1"), format!("10.231.{subnet}.2"));
        run("ip", &["netns", "add", &netns]);
        let mut engine = OwnEngine { netns, dir: tempfile::tempdir().unwrap(), daemon: None, inside: inside.clone() };
        run("ip", &["link", "add", &outer, "type", "veth", "peer", "name", &inner]);
        run("ip", &["link", "set", &inner, "netns", &engine.netns]);
        run("ip", &["addr", "add", &format!("{outside}/30"), "dev", &outer]);
        run("ip", &["link", "set", &outer, "up"]);
        engine.inside(&["ip", "addr", "add", &format!("{inside}/30"), "dev", &inner]);
        engine.inside(&["ip", "link", "set", &inner, "up"]);
        engine.inside(&["ip", "link", "set", "lo", "up"]);
        engine.run_daemon();
        engine
    }

    fn inside(&self, command: &[&str]) -> String {
        let mut args = vec!["netns", "exec", &self.netns];
        args.extend(command);
        run("ip", &args)
    }

    /// `nsenter`'s argument into the namespace's network alone: `ip netns exec`
    /// would also mount a sysfs of its own, hiding the cgroups dockerd needs.
    fn enter_netns(&self) -> String {
        format!("--net=/run/netns/{}", self.netns)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn run_daemon(&mut self) {
        let dir = self.dir.path();
        let at = |name: &str| dir.join(name).display().to_string();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("dockerd.log")).unwrap();
        let daemon = Command::new("nsenter")
            .args([&self.enter_netns(), "dockerd"])
            .args(["--host", &format!("unix://{}", self.socket().display())])
            .args(["--data-root", &at("root"), "--exec-root", &at("exec"), "--pidfile", &at("docker.pid")])
            .args(["--default-address-pool", "base=10.232.0.0/16,size=24", "--bip", "10.233.0.1/24"])
            .args([
                "--containerd-namespace",
                &self.netns,
                "--containerd-plugins-namespace",
                &format!("{}-p", self.netns),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(daemon);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker_ok(&["version"]) {
            assert!(Instant::now() < deadline, "dockerd did not answer: {}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the daemon as an operator's `systemctl stop docker` does, and waits for it.
    fn stop_daemon(&mut self) {
        let Some(mut daemon) = self.daemon.take() else { return };
        let pid = std::fs::read_to_string(self.dir.path().join("docker.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: a signal to the daemon this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while daemon.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = daemon.kill();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn docker_ok(&self, args: &[&str]) -> bool {
        let host = format!("unix://{}", self.socket().display());
        Command::new("docker").args(["-H", &host]).args(args).output().is_ok_and(|o| o.status.success())
    }

    fn docker(&self, args: &[&str]) -> String {
        run("docker", &[&["-H", &format!("unix://{}", self.socket().display())], args].concat())
    }

    /// An image of the engine other tests use, loaded into this one.
    fn load(&self, image: &str) {
        let host = format!("unix://{}", self.socket().display());
        let script = format!("docker save {image} | docker -H {host} load");
        assert!(Command::new("sh").args(["-c", &script]).status().unwrap().success(), "{script}");
    }
}

impl Drop for OwnEngine {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let host = format!("unix://{}", self.socket().display());
            let listed = Command::new("docker").args(["-H", &host, "ps", "-aq"]).output();
            for container in listed.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().lines()
            {
                let _ = self.docker_ok(&["rm", "-f", container]);
            }
        }
        self.stop_daemon();
        for mounts in ["root", "exec"] {
            let _ = Command::new("umount").arg("-R").arg(self.dir.path().join(mounts)).output();
        }
        // The veth pair goes with the namespace.
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).output();
    }
}

/// The host binary, run inside the engine's namespace and reached over the veth pair.
struct HostInside {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl HostInside {
    async fn start(engine: &OwnEngine) -> HostInside {
        let data = tempfile::tempdir().unwrap();
        let catalog = data.path().join("catalog.yaml");
        std::fs::write(&catalog, support::test_catalog()).unwrap();
        let owner = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let env: [(&str, &Path); 7] = [
            ("RUNTIME_DATA_DIR", &data.path().join("data")),
            ("RUNTIME_DOCKER_SOCKET", &engine.socket()),
            ("RUNTIME_PLUGIN_DIR", &support::guest_dir()),
            ("RUNTIME_COMPONENTS_DIR", &support::guest_dir()),
            ("RUNTIME_PLUGIN_CACHE_DIR", &support::repo_root().join("target/test-plugin-cache")),
            ("RUNTIME_CATALOG_FILE", &catalog),
            ("RUNTIME_BUILDERS_STDIO_BRIDGE", &support::stdio_bridge()),
        ];
        let child = Command::new("nsenter")
            .args([&engine.enter_netns(), env!("CARGO_BIN_EXE_mcp-runtime"), "serve"])
            .envs(env)
            .env("RUNTIME_LISTEN", format!("{}:8080", engine.inside))
            .env("RUNTIME_OWNER", &owner)
            .env("RUNTIME_HEALTH_WATCH_INTERVAL_MS", "1000")
            .env("JWT_SECRET_KEY", TEST_JWT_SECRET)
            .env("RUST_LOG", "warn")
            // Its log is the test's to read, not the test run's output.
            .stderr(std::fs::File::create(data.path().join("host.log")).unwrap())
            .spawn()
            .unwrap();
        let auth = AuthConfig { jwt_secret: TEST_JWT_SECRET.into(), ..Default::default() };
        let token =
            Authenticator::new(&auth, data.path()).unwrap().mint("admin", &[Role::Admin], Duration::from_secs(3600));
        let host = HostInside {
            child,
            base: format!("http://{}:8080", engine.inside),
            token,
            http: reqwest::Client::new(),
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while host.http.get(format!("{}/health", host.base)).send().await.is_err() {
            assert!(Instant::now() < deadline, "the host did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        host
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
    }

    async fn deploy(&self, slug: &str) -> String {
        let (status, answer) = self.send(reqwest::Method::POST, "/runtimes/deploy", Some(json!({"slug": slug}))).await;
        assert_eq!(status, 202, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    async fn deployments(&self) -> Vec<Value> {
        self.send(reqwest::Method::GET, "/runtimes", None).await.1.as_array().cloned().unwrap_or_default()
    }

    /// Waits until every deployment is settled (`connected` or `error`) and `wanted` are connected.
    async fn settled(&self, wanted: &[&str], within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.deployments().await;
            let status = |id: &str| all.iter().find(|d| d["id"] == id).map(|d| d["status"].clone());
            let settled = all.iter().all(|d| d["status"] == "connected" || d["status"] == "error");
            if settled && wanted.iter().all(|id| status(id) == Some(json!("connected"))) {
                return all;
            }
            let states: Vec<String> = all.iter().map(|d| format!("{} {}", d["id"], d["status"])).collect();
            assert!(Instant::now() < deadline, "not settled within {within:?}: {states:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for HostInside {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One call's outcome: which server, when, whether it worked.
type Outcomes = Arc<Mutex<Vec<(usize, Instant, bool)>>>;

/// Calls `echo` on `url` until `stop`, keeping one session while it works.
async fn caller(
    http: reqwest::Client,
    url: String,
    token: String,
    target: usize,
    outcomes: Outcomes,
    stop: Arc<AtomicBool>,
) {
    let mut session: Option<McpSession> = None;
    while !stop.load(Ordering::Relaxed) {
        if session.is_none() {
            session = McpSession::connect_with(&http, &url, Some(token.clone())).await.ok();
        }
        let ok = match session.as_mut() {
            Some(s) => tokio::time::timeout(Duration::from_secs(5), s.call_tool("echo", json!({"text": "up"})))
                .await
                .is_ok_and(|r| r.is_ok_and(|t| t == "up")),
            None => false,
        };
        outcomes.lock().unwrap().push((target, Instant::now(), ok));
        if !ok {
            session = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_restarting_under_load_leaves_nothing_duplicated_orphaned_or_stuck() {
    let mut engine = OwnEngine::start();
    engine.load(support::fixture_image());
    let host = HostInside::start(&engine).await;
    let servers = [host.deploy("fixture").await, host.deploy("fixture-stdio").await];
    host.settled(&[servers[0].as_str(), servers[1].as_str()], Duration::from_secs(120)).await;

    let (outcomes, stop) = (Outcomes::default(), Arc::new(AtomicBool::new(false)));
    let callers: Vec<_> = (0..8)
        .map(|n| {
            let url = format!("{}/servers/{}/mcp", host.base, servers[n % 2]);
            let (http, token) = (reqwest::Client::new(), host.token.clone());
            tokio::spawn(caller(http, url, token, n % 2, outcomes.clone(), stop.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_flight = [host.deploy("fixture").await, host.deploy("fixture-stdio").await, host.deploy("fixture").await];
    engine.stop_daemon();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    engine.run_daemon();
    let back = Instant::now();

    let all = host.settled(&[servers[0].as_str(), servers[1].as_str()], Duration::from_secs(120)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let worked_again = |target| outcomes.lock().unwrap().iter().any(|(t, at, ok)| *t == target && *at > back && *ok);
    while !(worked_again(0) && worked_again(1)) {
        assert!(Instant::now() < deadline, "calls did not succeed again after the engine came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    let before = outcomes.iter().filter(|(_, at, ok)| *at < down && *ok).count();
    let failed_while_down = outcomes.iter().filter(|(_, at, ok)| *at >= down && *at <= back && !ok).count();
    assert!(before > 0 && failed_while_down > 0, "{before} calls before, {failed_while_down} failed while down");

    // Nothing duplicated, nothing orphaned, nothing stuck.
    let ids: Vec<&str> = all.iter().filter_map(|d| d["id"].as_str()).collect();
    for id in in_flight.iter().chain(&servers) {
        assert!(ids.contains(&id.as_str()), "{id} lost");
    }
    for d in all.iter().filter(|d| in_flight.iter().any(|id| d["id"] == id.as_str())) {
        let why = d["status_message"].as_str().unwrap_or_default();
        assert!(d["status"] == "connected" || why.contains("container engine"), "says the engine went away: {d}");
    }
    for d in &all {
        let id = d["id"].as_str().unwrap();
        let containers = engine.docker(&["ps", "-aq", "--filter", &format!("label=mcp-runtime.deployment={id}")]);
        let count = containers.lines().count();
        let expected = if d["status"] == "connected" { 1 } else { 0 };
        assert!(count <= 1 && (d["status"] != "connected" || count == expected), "{id} has {count} containers: {d}");
    }
    let labelled = engine.docker(&["ps", "-a", "--format", "{{.Label \"mcp-runtime.deployment\"}}"]);
    for claimed in labelled.lines().filter(|l| !l.is_empty()) {
        assert!(ids.contains(&claimed), "a container of {claimed}, which no deployment is");
    }
    for id in ids {
        let (status, _) = host.send(reqwest::Method::DELETE, &format!("/runtimes/{id}"), None).await;
        assert_eq!(status, 204, "delete {id}");
    }
}
