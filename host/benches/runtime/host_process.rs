//! The host under measurement: the release binary in its own process, so its
//! CPU time and RSS are its own and not the load generator's.

use mcp_runtime::auth::{AuthConfig, Authenticator, Role};
use serde_json::{json, Value};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support;

const JWT_SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
/// `restricted` with room for two cores (`deploy_roomy`).
const ROOMY_PROFILE: &str = "restricted-roomy";

pub struct HostProcess {
    pub base: String,
    pub owner: String,
    pub token: String,
    http: reqwest::Client,
    child: Child,
    /// The data directory the host was started with, when it made its own.
    data: Option<tempfile::TempDir>,
}

impl HostProcess {
    /// Starts `target/release/mcp-runtime` with the test catalog and waits for `/health`.
    pub async fn start() -> HostProcess {
        Self::start_binary(support::repo_root().join("target/release/mcp-runtime")).await
    }

    /// Like `start`, for another build of the host.
    pub async fn start_binary(binary: std::path::PathBuf) -> HostProcess {
        let data = tempfile::tempdir().unwrap();
        let mut host = Self::start_in(binary, data.path()).await;
        host.data = Some(data);
        host
    }

    /// Like `start`, on the data a host left in `dir` (its store under `dir/data`).
    pub async fn start_on(dir: &std::path::Path) -> HostProcess {
        Self::start_in(support::repo_root().join("target/release/mcp-runtime"), dir).await
    }

    /// Like `start_on`, with `env` set for the host as well.
    #[allow(dead_code)] // The soak's (`benches/soak`), which shares this file.
    pub async fn start_on_with(dir: &std::path::Path, env: &[(&str, &str)]) -> HostProcess {
        Self::start_in_with(support::repo_root().join("target/release/mcp-runtime"), dir, env).await
    }

    /// Stops the host; the data directory it made itself, kept.
    pub fn stop_keeping_data(mut self) -> Option<tempfile::TempDir> {
        self.data.take()
    }

    /// Like `start`, with `env` set for the host as well.
    pub async fn start_with_env(env: &[(&str, &str)]) -> HostProcess {
        let data = tempfile::tempdir().unwrap();
        let binary = support::repo_root().join("target/release/mcp-runtime");
        let mut host = Self::start_in_with(binary, data.path(), env).await;
        host.data = Some(data);
        host
    }

    async fn start_in(binary: std::path::PathBuf, dir: &std::path::Path) -> HostProcess {
        Self::start_in_with(binary, dir, &[]).await
    }

    async fn start_in_with(binary: std::path::PathBuf, dir: &std::path::Path, env: &[(&str, &str)]) -> HostProcess {
        assert!(
            binary.exists(),
            "{} missing: `make bench` builds this build's (BENCH_BASELINE_BINARY names another)",
            binary.display()
        );
        let catalog = dir.join("catalog.yaml");
        std::fs::write(&catalog, support::test_catalog()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let owner = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let child = Command::new(&binary)
            .env("RUNTIME_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUNTIME_DATA_DIR", dir.join("data"))
            .env("RUNTIME_PLUGIN_DIR", support::guest_dir())
            .env("RUNTIME_COMPONENTS_DIR", support::guest_dir())
            .env("RUNTIME_PLUGIN_CACHE_DIR", support::repo_root().join("target/test-plugin-cache"))
            .env("RUNTIME_CATALOG_FILE", &catalog)
            .env("RUNTIME_OWNER", &owner)
            .env("JWT_SECRET_KEY", JWT_SECRET)
            .env("RUST_LOG", "warn")
            // Where `make bridge` puts the static stdio bridge the host places in images.
            .env("RUNTIME_BUILDERS_STDIO_BRIDGE", support::stdio_bridge())
            .envs(env.iter().copied())
            .spawn()
            .unwrap();
        let auth = AuthConfig { jwt_secret: JWT_SECRET.into(), ..Default::default() };
        let token = Authenticator::new(&auth, dir).unwrap().mint(
            "bench@example.com",
            &[Role::Admin],
            Duration::from_secs(4 * 3600),
        );
        let host = HostProcess {
            base: format!("http://127.0.0.1:{port}"),
            owner,
            token,
            http: reqwest::Client::new(),
            child,
            data: None,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while host.http.get(format!("{}/health", host.base)).send().await.is_err() {
            assert!(Instant::now() < deadline, "host did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        host
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("host answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// A token for `user` with `roles` and `groups`, signed as the host's are.
    #[allow(dead_code)] // The soak's (`benches/soak`), which shares this file.
    pub fn token_for(&self, user: &str, roles: &[Role], groups: &[&str]) -> String {
        let auth = AuthConfig { jwt_secret: JWT_SECRET.into(), ..Default::default() };
        let authenticator = Authenticator::new(&auth, std::path::Path::new("/nonexistent")).unwrap();
        authenticator.mint_with_groups(user, roles, groups, Duration::from_secs(4 * 3600))
    }

    /// A text answer (`/metrics`), as the admin.
    #[allow(dead_code)] // The soak's (`benches/soak`), which shares this file.
    pub async fn get_text(&self, path: &str) -> String {
        let answer = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await;
        answer.expect("host answers").text().await.unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {answer}");
        answer
    }

    pub async fn deploy(&self, body: Value) -> String {
        self.post("/runtimes/deploy", body).await["id"].as_str().unwrap().to_string()
    }

    pub async fn delete_deployment(&self, id: &str) {
        self.call(reqwest::Method::DELETE, &format!("/runtimes/{id}"), None).await;
    }

    /// Deploys `body`: the answer's round trip plus the gap between the
    /// deployment's recorded `requested` and `connected` events; its id.
    pub async fn timed_deploy(&self, body: Value) -> (Duration, String) {
        let start = Instant::now();
        let id = self.deploy(body).await;
        let accepted = start.elapsed();
        let d = self.wait_connected(&id).await;
        let at = |pred: &dyn Fn(&Value) -> bool| {
            let e = d["recent_events"].as_array().unwrap().iter().find(|e| pred(e)).expect("event recorded");
            chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap()
        };
        let requested = at(&|e| e["type"] == "deployment.requested");
        let connected = at(&|e| e["data"]["to"] == "connected");
        ((connected - requested).to_std().unwrap() + accepted, id)
    }

    /// Polls until the deployment is connected; its record.
    pub async fn wait_connected(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let d = self.get(&format!("/runtimes/{id}")).await;
            match d["status"].as_str() {
                Some("connected") => return d,
                Some("error" | "rejected") => panic!("deployment failed: {d}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "never connected: {d}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deploys catalog entry `slug` under `restricted` but with room for two
    /// cores, so the host, not the server's CPU quota, is what is measured: its id.
    pub async fn deploy_roomy(&self, slug: &str) -> String {
        self.roomy_restricted_profile().await;
        self.deploy(json!({"slug": slug, "profile": ROOMY_PROFILE, "resources": {"cpu": "2", "memory": "256m"}})).await
    }

    /// A guardrail profile like `restricted` but with room for two cores.
    async fn roomy_restricted_profile(&self) {
        let mut profile = self.get("/guardrails/restricted").await;
        profile["name"] = json!(ROOMY_PROFILE);
        profile["resources"]["max_cpu"] = json!("2");
        // Several figures ask for it: the first one creates it.
        let (status, answer) = self.call(reqwest::Method::POST, "/guardrails", Some(profile)).await;
        assert!(status == 201 || status == 409, "POST /guardrails: {status} {answer}");
    }

    /// User plus system CPU time the host process has used.
    pub fn cpu_time(&self) -> Duration {
        process_cpu_time(self.pid()).expect("the host runs")
    }

    /// Resident set size in MB.
    pub fn rss_mb(&self) -> f64 {
        process_rss_mb(self.pid())
    }
}

/// What the host's resident memory is made of, MB by kind of mapping, largest first.
pub fn rss_breakdown(pid: u32) -> Vec<(&'static str, f64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut kinds: std::collections::BTreeMap<&'static str, f64> = Default::default();
    let mut kind = "other";
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first().is_some_and(|f| f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')) {
            let path = fields.get(5).copied().unwrap_or("");
            kind = match path {
                p if p.ends_with("/mcp-runtime") => "its code and constants (file-backed, clean)",
                p if p.ends_with(".cwasm") => "compiled plugins (mapped from the cache)",
                p if p.contains(".so") => "shared libraries",
                "" | "[heap]" => "heap: allocations (mimalloc, libc)",
                p if p.starts_with("[stack") => "stacks",
                _ => "other",
            };
        } else if let Some(kb) = line.strip_prefix("Rss:") {
            *kinds.entry(kind).or_default() += kb.trim().trim_end_matches(" kB").parse::<f64>().unwrap_or(0.0) / 1024.0;
        }
    }
    let mut kinds: Vec<(&'static str, f64)> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    kinds
}

/// User plus system CPU time a process has used; `None` once it is gone.
/// A process's resident set size in MB (0 for one that is gone).
fn process_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_default();
    kb / 1024.0
}

fn process_cpu_time(pid: u32) -> Option<Duration> {
    task_cpu_time(&format!("/proc/{pid}"))
}

/// CPU time of the process or thread at `/proc/...` (`task`).
pub fn task_cpu_time(task: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("{task}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = 100; // USER_HZ, fixed on Linux for /proc
    Some(Duration::from_millis(ticks * 1000 / hz))
}

/// CPU time of the container engine's processes together: the daemon and
/// every container's shim (what relays a stdio server's stdin and stdout);
/// a shim that exits meanwhile takes its share with it.
pub fn engine_cpu_time() -> Duration {
    let engine = |name: &str| name == "dockerd" || name.starts_with("containerd-shim");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|name| engine(name.trim())))
        .filter_map(process_cpu_time)
        .sum()
}

/// The cgroup `container` runs in under `controller` (cgroup v1), or its v2 path.
fn cgroup_of(container: &str, controller: &str) -> (Option<String>, String) {
    let pid = support::docker(&["inspect", "--format", "{{.State.Pid}}", container]);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("the container runs");
    let v1 = cgroups.lines().find_map(|l| {
        let (_, rest) = l.split_once(':')?;
        let (controllers, path) = rest.split_once(':')?;
        controllers.split(',').any(|c| c == controller).then(|| path.to_string())
    });
    let v2 = cgroups.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or_default().to_string();
    (v1, v2)
}

/// Resident set size of every process in `container`, in MB.
pub fn container_rss_mb(container: &str) -> f64 {
    let procs = match cgroup_of(container, "memory") {
        (Some(path), _) => format!("/sys/fs/cgroup/memory{path}/cgroup.procs"),
        (None, path) => format!("/sys/fs/cgroup{path}/cgroup.procs"),
    };
    let pids = std::fs::read_to_string(procs).unwrap();
    pids.lines().filter_map(|pid| pid.parse().ok()).map(process_rss_mb).sum()
}

/// CPU time of every process in `container` (its cgroup's account: cgroup
/// v1's `cpuacct`, or v2's `cpu.stat`).
pub fn container_cpu_time(container: &str) -> Duration {
    let (v1, v2) = cgroup_of(container, "cpuacct");
    if let Some(path) = v1 {
        let ns = std::fs::read_to_string(format!("/sys/fs/cgroup/cpuacct{path}/cpuacct.usage")).unwrap();
        return Duration::from_nanos(ns.trim().parse().unwrap());
    }
    let stat = std::fs::read_to_string(format!("/sys/fs/cgroup{v2}/cpu.stat")).unwrap();
    let usec = stat.lines().find_map(|l| l.strip_prefix("usage_usec ")).unwrap();
    Duration::from_micros(usec.trim().parse().unwrap())
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        support::remove_owned(&self.owner);
    }
}
