//! The soak's load: each worker a loop until the deadline, each outcome
//! tallied. An error is a step that should have worked and did not; a
//! refusal the load asks for on purpose (a bad import) is counted apart.

use base64::Engine;
use mcp_runtime::auth::Role;
use mcp_runtime::mcp::client::McpSession;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

use crate::host_process::HostProcess;
use crate::support;

/// Clients calling tools through the host at once.
const CALLERS: usize = 8;
/// Live status listeners at once, each staying a few seconds.
const LISTENERS: usize = 3;
const APPROVAL_EVERY: Duration = Duration::from_secs(15);
const IMPORT_EVERY: Duration = Duration::from_secs(20);
const UPGRADE_EVERY: Duration = Duration::from_secs(180);

#[derive(Default)]
struct Counts {
    latencies: Vec<Duration>,
    minute_errors: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    /// Each error kind's first message, to say what went wrong.
    first_error: BTreeMap<String, String>,
    done: BTreeMap<&'static str, u64>,
}

#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<Counts>>);

impl Tally {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, took: Duration) {
        self.counts().latencies.push(took);
    }

    fn done(&self, what: &'static str) {
        *self.counts().done.entry(what).or_default() += 1;
    }

    fn error(&self, kind: &str, why: impl std::fmt::Display) {
        let mut counts = self.counts();
        *counts.minute_errors.entry(kind.into()).or_default() += 1;
        *counts.errors.entry(kind.into()).or_default() += 1;
        counts.first_error.entry(kind.into()).or_insert_with(|| why.to_string());
    }

    /// The minute's call latencies and errors by kind, starting the next minute.
    pub fn take_minute(&self) -> (Vec<Duration>, Vec<(String, u64)>) {
        let mut counts = self.counts();
        let latencies = std::mem::take(&mut counts.latencies);
        let errors = std::mem::take(&mut counts.minute_errors).into_iter().collect();
        (latencies, errors)
    }

    /// Every error, with the first message of its kind.
    pub fn unprovoked(&self) -> Vec<String> {
        let counts = self.counts();
        counts.errors.iter().map(|(kind, n)| format!("{kind} ×{n}: {}", counts.first_error[kind])).collect()
    }

    pub fn summary(&self) -> String {
        let done: Vec<String> = self.counts().done.iter().map(|(what, n)| format!("{what} {n}")).collect();
        done.join(", ")
    }
}

/// What the load works on: two servers called throughout (one proxied, one
/// bridged), a catalog entry that needs approval, an uploaded rule in the chain.
pub struct Load {
    proxied: String,
    bridged: String,
    approver: String,
    tally: Tally,
    base: String,
    token: String,
}

impl Load {
    pub async fn prepare(host: &HostProcess, tally: Tally) -> Load {
        let gated = json!({"name": "Gated", "slug": "gated", "requires_approval": true,
                           "guardrails_profile": "restricted", "supported_backends": ["docker"],
                           "source": {"type": "docker", "image": support::fixture_image()}});
        host.post("/catalog", gated).await;
        host.post("/plugins", rule(16)).await;
        let mut plugins = host.get("/policy-chain").await["plugins"].clone();
        plugins.as_array_mut().expect("the chain's plugins").push(json!("soak-rule"));
        let chain = json!({"plugins": plugins});
        let (status, answer) = host.call(reqwest::Method::PUT, "/policy-chain", Some(chain)).await;
        assert_eq!(status, 200, "{answer}");
        let proxied = host.deploy(json!({"slug": "fixture"})).await;
        let bridged = host.deploy(json!({"slug": "fixture-stdio"})).await;
        host.wait_connected(&proxied).await;
        host.wait_connected(&bridged).await;
        // The default approval rule names the security team as a held request's approvers.
        let approver = host.token_for("soak-approver", &[Role::Approver], &["security-team"]);
        Load { proxied, bridged, approver, tally, base: host.base.clone(), token: host.token.clone() }
    }

    /// Starts every worker; each ends at `until`.
    pub fn start(&self, until: Instant) -> Vec<JoinHandle<()>> {
        let mut workers = Vec::new();
        for n in 0..CALLERS {
            let target = if n % 2 == 0 { ("proxied", self.proxied.clone()) } else { ("bridged", self.bridged.clone()) };
            workers.push(tokio::spawn(self.worker().calls(target, until)));
        }
        for n in 0..LISTENERS {
            workers.push(tokio::spawn(self.worker().listens(n as u64, until)));
        }
        workers.push(tokio::spawn(self.worker().churns(until)));
        workers.push(tokio::spawn(self.worker().approves(self.approver.clone(), until)));
        workers.push(tokio::spawn(self.worker().imports(until)));
        workers.push(tokio::spawn(self.worker().upgrades(until)));
        workers
    }

    fn worker(&self) -> Worker {
        Worker { tally: self.tally.clone(), base: self.base.clone(), token: self.token.clone(), http: client() }
    }

    pub async fn clean_up(&self, host: &HostProcess) {
        for id in [&self.proxied, &self.bridged] {
            host.delete_deployment(id).await;
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().tcp_nodelay(true).build().unwrap()
}

/// The pinned-images rule as `soak-rule`, passing every image; its memory
/// limit changes from one version to the next.
fn rule(memory_mb: u32) -> Value {
    let bytes = std::fs::read(support::guest_dir().join("pinned_images.wasm")).expect("built by `make guests`");
    json!({"manifest": {"id": "soak-rule", "kind": "guardrail-policy", "grants": ["logging"],
                        "limits": {"memory_mb": memory_mb, "cpu_ms": 100, "timeout_ms": 1000},
                        "settings": {"require_digest": false}},
           "component": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

struct Worker {
    tally: Tally,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Worker {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> Result<(u16, Value), String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.map_err(|e| e.to_string())?;
        let status = answer.status().as_u16();
        Ok((status, answer.json().await.unwrap_or(Value::Null)))
    }

    /// A request that must answer `expected`; the answer's body.
    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Result<Value, String> {
        match self.send(method.clone(), path, body, &self.token).await? {
            (status, answer) if status == expected => Ok(answer),
            (status, answer) => Err(format!("{method} {path}: {status} {answer}")),
        }
    }

    /// Tool calls on one server through the host, a session kept while it works.
    async fn calls(self, (kind, id): (&'static str, String), until: Instant) {
        let url = format!("{}/servers/{id}/mcp", self.base);
        let kind = format!("call:{kind}");
        let mut session: Option<McpSession> = None;
        while Instant::now() < until {
            if session.is_none() {
                match McpSession::connect_with(&self.http, &url, Some(self.token.clone())).await {
                    Ok(s) => session = Some(s),
                    Err(e) => {
                        self.tally.error(&kind, e);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            let started = Instant::now();
            match session.as_mut().unwrap().call_tool("echo", json!({"text": "soak"})).await {
                Ok(text) if text == "soak" => self.tally.call(started.elapsed()),
                Ok(other) => self.tally.error(&kind, format!("echoed {other}")),
                Err(e) => {
                    self.tally.error(&kind, e);
                    session = None;
                }
            }
        }
    }

    /// `/runtimes/stream` listeners coming and going.
    async fn listens(self, n: u64, until: Instant) {
        let mut stay = 1 + n;
        while Instant::now() < until {
            let answer = self.http.get(format!("{}/runtimes/stream", self.base)).bearer_auth(&self.token).send().await;
            match answer {
                Ok(mut stream) if stream.status().is_success() => {
                    let end = Instant::now() + Duration::from_secs(stay);
                    while let Ok(Ok(Some(_))) = tokio::time::timeout_at(end.into(), stream.chunk()).await {}
                    self.tally.done("listeners");
                }
                Ok(answer) => self.tally.error("stream", answer.status()),
                Err(e) => self.tally.error("stream", e),
            }
            stay = stay % 8 + 1;
        }
    }

    /// Deploys, waits for `connected`, calls once, deletes: a proxied and a bridged server in turn.
    async fn churns(self, until: Instant) {
        let mut round = 0;
        while Instant::now() < until {
            let slug = if round % 2 == 0 { "fixture" } else { "fixture-stdio" };
            round += 1;
            if let Err(e) = self.deploy_call_delete(slug).await {
                self.tally.error("deploy", e);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn deploy_call_delete(&self, slug: &str) -> Result<(), String> {
        let answer = self.expect(reqwest::Method::POST, "/runtimes/deploy", Some(json!({"slug": slug})), 202).await?;
        let id = answer["id"].as_str().ok_or("no id")?.to_string();
        let outcome = self.connected_then_called(&id).await;
        self.expect(reqwest::Method::DELETE, &format!("/runtimes/{id}"), None, 204).await?;
        self.tally.done("deploys");
        outcome
    }

    async fn connected_then_called(&self, id: &str) -> Result<(), String> {
        self.wait_for(id, "connected").await?;
        let url = format!("{}/servers/{id}/mcp", self.base);
        let mut session =
            McpSession::connect_with(&self.http, &url, Some(self.token.clone())).await.map_err(|e| e.to_string())?;
        let echoed = session.call_tool("echo", json!({"text": "new"})).await.map_err(|e| e.to_string())?;
        session.close().await;
        (echoed == "new").then_some(()).ok_or_else(|| format!("echoed {echoed}"))
    }

    async fn wait_for(&self, id: &str, state: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let d = self.expect(reqwest::Method::GET, &format!("/runtimes/{id}"), None, 200).await?;
            if d["status"] == state {
                return Ok(());
            }
            if Instant::now() > deadline || d["status"] == "error" {
                return Err(format!("{id} not {state}: {d}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A deploy held for approval, approved (or, every other time, rejected).
    async fn approves(self, approver: String, until: Instant) {
        let mut round = 0u64;
        while Instant::now() + APPROVAL_EVERY < until {
            round += 1;
            if let Err(e) = self.one_approval(&approver, round.is_multiple_of(2)).await {
                self.tally.error("approval", e);
            }
            tokio::time::sleep(APPROVAL_EVERY).await;
        }
    }

    async fn one_approval(&self, approver: &str, approve: bool) -> Result<(), String> {
        let answer =
            self.expect(reqwest::Method::POST, "/runtimes/deploy", Some(json!({"slug": "gated"})), 202).await?;
        let (id, approval) =
            (answer["id"].as_str().ok_or("no id")?, answer["approval_id"].as_str().ok_or("no approval")?);
        let verb = if approve { "approve" } else { "reject" };
        let path = format!("/approvals/{approval}/{verb}");
        match self.send(reqwest::Method::POST, &path, Some(json!({"notes": "soak"})), approver).await? {
            (200, _) => {}
            (status, answer) => return Err(format!("{verb}: {status} {answer}")),
        }
        self.wait_for(id, if approve { "connected" } else { "rejected" }).await?;
        self.expect(reqwest::Method::DELETE, &format!("/runtimes/{id}"), None, 204).await?;
        self.tally.done("approvals");
        Ok(())
    }

    /// A ContextForge catalog imported again and again, its entries changing;
    /// now and then a document that must be refused.
    async fn imports(self, until: Instant) {
        let mut round = 0u64;
        while Instant::now() < until {
            round += 1;
            let entries: String = (0..10)
                .map(|n| format!("  - {{id: soak-{n}, name: Soak {n}, url: 'https://soak-{n}.example.com/mcp', description: round {round}}}\n"))
                .collect();
            let document = format!("catalog_servers:\n{entries}");
            let body = json!({"document": document, "format": "contextforge"});
            match self.expect(reqwest::Method::POST, "/catalog/import", Some(body), 200).await {
                Ok(_) => self.tally.done("imports"),
                Err(e) => self.tally.error("import", e),
            }
            if round.is_multiple_of(5) {
                let refused = self
                    .send(
                        reqwest::Method::POST,
                        "/catalog/import",
                        Some(json!({"document": "hello: world"})),
                        &self.token,
                    )
                    .await;
                match refused {
                    Ok((status, _)) if (400..500).contains(&status) => self.tally.done("refused imports (provoked)"),
                    other => self.tally.error("import", format!("a bad document was not refused: {other:?}")),
                }
            }
            tokio::time::sleep(IMPORT_EVERY).await;
        }
    }

    /// The uploaded rule upgraded to a new version every few minutes, while deploys go through it.
    async fn upgrades(self, until: Instant) {
        let mut memory_mb = 16;
        loop {
            tokio::time::sleep(UPGRADE_EVERY).await;
            if Instant::now() >= until {
                return;
            }
            memory_mb = if memory_mb == 16 { 17 } else { 16 };
            match self.expect(reqwest::Method::PUT, "/plugins/soak-rule", Some(rule(memory_mb)), 200).await {
                Ok(_) => self.tally.done("upgrades"),
                Err(e) => self.tally.error("upgrade", e),
            }
        }
    }
}
