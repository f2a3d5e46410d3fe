//! A host without a listener, a container engine or a network: the real
//! router called in-process (`oneshot`), with the stub backend guest
//! (`tests/stub-backend`) as the default backend. The fast tier's router tests
//! (`tests/router/`) use it for input validation and the role matrix.

use axum::body::Body;
use mcp_runtime::config::{BackendConfig, RuntimeConfig};
use mcp_runtime::plugins::{Grant, PluginKind, PluginLimits, PluginManifest};
use reqwest::StatusCode;
use serde_json::json;
use tower::ServiceExt;

/// The backend the router tests deploy to.
pub const STUB_BACKEND: &str = "stub";

/// Points the config's Docker backend at a socket where nothing answers (it is
/// listed, with its capabilities, but unavailable) and adds the stub backend
/// as the default.
pub fn without_engine(config: &mut RuntimeConfig, data: &std::path::Path) {
    for backend in config.backends.values_mut() {
        if backend.socket.is_some() {
            backend.socket = Some(data.join("no-engine.sock").display().to_string());
        }
    }
    config.plugins.push(PluginManifest {
        id: "stub-backend".into(),
        kind: PluginKind::RuntimeBackend,
        path: "stub_backend.wasm".into(),
        sha256: None,
        grants: vec![Grant::Logging],
        allowed_hosts: vec![],
        limits: PluginLimits { memory_mb: 16, cpu_ms: 200, timeout_ms: 2000 },
        settings: json!({}),
    });
    // Nothing listens on the discard port: a deployment here never proves MCP.
    let settings = [("endpoint".to_string(), json!("http://127.0.0.1:9/mcp"))].into();
    let stub = BackendConfig {
        enabled: true,
        plugin: "stub-backend".into(),
        socket: None,
        default_limits: Default::default(),
        settings,
    };
    config.backends.insert(STUB_BACKEND.into(), stub);
    config.default_backend = STUB_BACKEND.into();
}

/// One request through the router; the answer's status and body as text.
pub async fn send(
    router: &axum::Router,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, String) {
    let answer = answer(router, method, path, token, body).await;
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX).await.expect("a body that ends");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The answer itself, its body unread (a stream may never end).
pub async fn answer(
    router: &axum::Router,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> axum::response::Response {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request.header("content-type", "application/json").body(Body::from(body)),
        None => request.body(Body::empty()),
    };
    router.clone().oneshot(request.expect("a well-formed request")).await.expect("routers never fail")
}
