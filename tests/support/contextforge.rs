//! A real ContextForge gateway (`mcp-contextforge-gateway` 1.1.0, installed
//! by `make contextforge` into `.venv/contextforge`) on loopback: one process
//! per test binary, started on first use, dying with the binary. Tests that
//! stop or restart it hold `exclusive()`; the others `shared()`.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::repo_root;

pub const ADMIN: &str = "admin@example.com";
const SECRET: &str = "contextforge-test-secret-0123456789abcdefghij";

pub struct ContextForge {
    pub url: String,
    pub secret: &'static str,
    orders: std::sync::Mutex<mpsc::Sender<(Order, mpsc::Sender<()>)>>,
    /// Held shared by tests that use the gateway, exclusively by one that restarts it.
    turn: tokio::sync::RwLock<()>,
}

enum Order {
    Start { fresh: bool },
    Stop,
}

static GATEWAY: OnceLock<ContextForge> = OnceLock::new();

/// The binary's gateway, started (and healthy) on first use.
pub async fn contextforge() -> &'static ContextForge {
    let gateway = GATEWAY.get_or_init(|| {
        let port = super::free_port();
        let dir = tempfile::tempdir().unwrap().keep();
        let (orders, received) = mpsc::channel();
        // The process is spawned from this thread, which lives as long as the
        // binary: its parent-death signal fires when the binary ends, not before.
        std::thread::spawn(move || keeper(received, dir, port));
        let gateway = ContextForge {
            url: format!("http://127.0.0.1:{port}"),
            secret: SECRET,
            orders: std::sync::Mutex::new(orders),
            turn: tokio::sync::RwLock::new(()),
        };
        gateway.order(Order::Start { fresh: true });
        gateway
    });
    gateway.wait_healthy().await;
    gateway
}

impl ContextForge {
    pub async fn shared(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.turn.read().await
    }

    pub async fn exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.turn.write().await
    }

    fn order(&self, order: Order) {
        let (done, finished) = mpsc::channel();
        self.orders.lock().unwrap().send((order, done)).unwrap();
        finished.recv().unwrap();
    }

    pub fn stop(&self) {
        self.order(Order::Stop);
    }

    /// Starts it again, on its old database or a fresh one.
    pub async fn start(&self, fresh: bool) {
        self.order(Order::Start { fresh });
        self.wait_healthy().await;
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let http = reqwest::Client::new();
        loop {
            let answer = http.get(format!("{}/health", self.url)).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "ContextForge did not answer /health at {}", self.url);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A token of the gateway's admin, as the gateway itself would mint it.
    pub fn admin_token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"sub": ADMIN, "iss": "mcpgateway", "aud": "mcpgateway-api", "iat": now, "exp": now + 3600,
                            "jti": uuid::Uuid::new_v4().to_string()});
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
    }

    /// A call to the gateway's API as its admin: (status, JSON body).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (reqwest::StatusCode, Value) {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.url)).bearer_auth(self.admin_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// The names of the tools the gateway lists (active ones only, as clients see them).
    pub async fn tool_names(&self) -> Vec<String> {
        let (_, tools) = self.call(reqwest::Method::GET, "/v1/tools", None).await;
        tools.as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(String::from)).collect()
    }
}

fn keeper(orders: mpsc::Receiver<(Order, mpsc::Sender<()>)>, dir: PathBuf, port: u16) {
    // The gateway and its watchdog.
    let mut child: Option<(Child, Child)> = None;
    for (order, done) in orders {
        stop(&mut child);
        if let Order::Start { fresh } = order {
            if fresh {
                for name in ["mcp.db", "mcp.db-wal", "mcp.db-shm"] {
                    let _ = std::fs::remove_file(dir.join(name));
                }
            }
            child = Some(spawn(&dir, port));
        }
        let _ = done.send(());
    }
    stop(&mut child);
}

/// Kills the gateway and every process it started (its process group).
fn stop(child: &mut Option<(Child, Child)>) {
    if let Some((mut gateway, mut watchdog)) = child.take() {
        // SAFETY: a plain syscall on a process group this harness created.
        unsafe { libc::kill(-(gateway.id() as i32), libc::SIGKILL) };
        let _ = gateway.wait();
        let _ = watchdog.wait();
    }
}

fn spawn(dir: &std::path::Path, port: u16) -> (Child, Child) {
    use std::os::unix::process::CommandExt;
    let bin = repo_root().join(".venv/contextforge/bin/mcpgateway");
    assert!(bin.exists(), "{} is missing: `make contextforge` installs it", bin.display());
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
        .current_dir(dir)
        .env("JWT_SECRET_KEY", SECRET)
        .env("AUTH_ENCRYPTION_SECRET", "contextforge-test-encryption-0123456789abcdef")
        .env("PLATFORM_ADMIN_EMAIL", ADMIN)
        .env("PLATFORM_ADMIN_PASSWORD", "Adm1n-Passw0rd!x")
        .env("DEFAULT_USER_PASSWORD", "Us3r-Passw0rd!xy")
        .env("DATABASE_URL", format!("sqlite:///{}", dir.join("mcp.db").display()))
        .env("AUTH_REQUIRED", "true")
        .env("MCPGATEWAY_UI_ENABLED", "false")
        .env("MCPGATEWAY_ADMIN_API_ENABLED", "false")
        .env("SSRF_ALLOW_LOCALHOST", "true")
        .env("RATE_LIMITING_ENABLED", "false")
        .env("TMPDIR", &tmp)
        // A group of its own: its helper processes are stopped with it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("ContextForge starts");
    // Whatever ends the test binary, the group goes too: a watchdog in the
    // group polls the binary and kills the group once it is gone.
    let watchdog = format!(
        "while kill -0 {binary} 2>/dev/null; do sleep 1; done; kill -9 -{group}",
        binary = std::process::id(),
        group = child.id()
    );
    let group = child.id() as i32;
    let watchdog = Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(group)
        .spawn()
        .expect("the gateway's watchdog starts");
    (child, watchdog)
}
