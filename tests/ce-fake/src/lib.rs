//! A local fake of IBM Cloud IAM and the Code Engine v2 API, faithful to
//! `shared/reference/code-engine-api.md`: the same paths, status codes
//! (201 create, 202 build runs and deletes, 200 reads and patches), entity
//! tags with `If-Match` (412 on mismatch), name-pattern and CPU/memory-pair
//! validation (400), duplicates (409), the Code Engine error body, opaque
//! pagination, and asynchronous status (`deploying` → `ready` after some
//! polls; `failed` for an image marked bad). Faults (429, 5xx, hangs) are
//! injected on demand. IBM Cloud Logs' query endpoint is there too, for app logs.

mod apps;
mod builds;
mod docker;
mod http;
mod iam;
mod logs;
mod monitoring;
mod validate;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use http::{ce_error, Fault};

#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// API keys IAM accepts.
    pub api_keys: Vec<String>,
    pub project_id: String,
    pub region: String,
    /// Lifetime of issued tokens (`expires_in`).
    pub token_ttl: Duration,
    /// GETs of a deploying app (or running build run) before it settles.
    pub polls_until_ready: u32,
    /// An image reference or source URL containing this fails to deploy or build.
    pub bad_marker: String,
    /// Run each app's image on the local Docker engine, so its endpoint answers.
    pub run_apps: Option<DockerRunner>,
    /// A local image a successful build run tags as its output, standing in for the pushed image.
    pub build_produces: Option<String>,
    /// The IBM Cloud Monitoring instance queries must name (`IBMInstanceID`).
    pub monitoring_instance_id: String,
}

/// Where the fake runs app images: a Docker network and labels for cleanup.
#[derive(Debug, Clone)]
pub struct DockerRunner {
    pub network: String,
    pub labels: Vec<String>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            api_keys: vec!["test-api-key".into()],
            project_id: "4e9c2d1a-7b3f-4c8e-9a1d-2f6b8c0e5d7a".into(),
            region: "us-south".into(),
            token_ttl: Duration::from_secs(3600),
            polls_until_ready: 2,
            bad_marker: "bad-image".into(),
            run_apps: None,
            build_produces: None,
            monitoring_instance_id: "7d2f0c4b-monitoring".into(),
        }
    }
}

/// One stored resource: its JSON as the API shows it, plus what drives it.
#[derive(Debug, Clone)]
struct Resource {
    body: Value,
    polls_left: u32,
    /// Set when it will end `failed`, with the reason.
    failure: Option<String>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Instant>,
    apps: BTreeMap<String, Resource>,
    builds: BTreeMap<String, Resource>,
    build_runs: BTreeMap<String, Resource>,
    secrets: BTreeMap<String, Resource>,
    faults: VecDeque<Fault>,
    next_etag: u64,
    /// Requests seen, by `METHOD path` (for tests of retries and token reuse).
    requests: Vec<String>,
}

struct Shared {
    config: FakeConfig,
    base: String,
    /// The project's subdomain in endpoints.
    subdomain: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_etag(&self) -> String {
        let mut state = self.lock();
        state.next_etag += 1;
        (2_385_407_409 + state.next_etag).to_string()
    }
}

/// A running fake on a loopback port.
pub struct FakeCodeEngine {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeCodeEngine {
    pub async fn start(config: FakeConfig) -> FakeCodeEngine {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let subdomain: String = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let shared = Arc::new(Shared { config, base: format!("http://{addr}"), subdomain, state: Mutex::default() });
        let router = http::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeCodeEngine { addr, shared, server }
    }

    /// Base URL of both IAM (`/identity/token`) and the API (`/v2`).
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn project_id(&self) -> &str {
        &self.shared.config.project_id
    }

    /// The next matching requests answer with this fault instead.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Every issued token stops working, as if it had expired.
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// `METHOD path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// The requests IBM Cloud Monitoring reports for an app.
    pub fn set_requests(&self, app: &str, requests: u64) {
        if let Some(a) = self.shared.lock().apps.get_mut(app) {
            a.body["x_fake_requests"] = requests.into();
        }
    }

    /// Marks a running app's instance as restarted `restarts` times.
    pub fn set_restarts(&self, app: &str, restarts: u32) {
        if let Some(a) = self.shared.lock().apps.get_mut(app) {
            a.body["x_fake_restarts"] = restarts.into();
        }
    }
}

impl Drop for FakeCodeEngine {
    fn drop(&mut self) {
        self.server.abort();
    }
}
