//! One long-lived MCP session with a server that does not speak streamable
//! HTTP: a stdio server in a container, or an HTTP+SSE (2024-11-05) server.
//!
//! For stdio the link writes one JSON-RPC message per line to the server's
//! stdin and reads its stdout, whichever way a `Connector` reached them (the
//! host attaches to a container through the engine; the standalone bridge
//! starts the process itself); for SSE it holds the server's event stream open and
//! posts each message to the endpoint the stream names. Either way every
//! answer is routed to whoever asked by its id: ids are the link's own, so
//! callers never collide. What the server writes that is not a JSON-RPC
//! message, or is longer than `MAX_LINE`, is logged and dropped. A request
//! the server makes of its client goes to whoever set a router (the bridge,
//! which knows the clients); with no one to take it, it is answered with an
//! error rather than left hanging.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, OnceCell};

use crate::{Spawner, PROTOCOL_VERSION};

mod answer;
mod framing;
mod stdin;
pub use answer::Answer;
use answer::Envelope;
use framing::{LineBuffer, SseEvent};
use stdin::SharedStdin;
pub use stdin::Stdin;

/// Longest line read from a server's stdout; longer ones are dropped.
pub const MAX_LINE: usize = 4 << 20;

/// How long an SSE server may take to name its message endpoint.
const ENDPOINT_DEADLINE: Duration = Duration::from_secs(10);

/// Where a server that needs a link is, as its deployment's endpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `stdio://<name>`: the stdin and stdout of a process the connector
    /// knows by that name (for the host, a container's id).
    Stdio(String),
    /// `sse+http://host:port/path`: the server's SSE stream (the URL without `sse+`).
    Sse(String),
}

impl Target {
    /// The link an endpoint asks for; `None` for a streamable-HTTP endpoint.
    pub fn of(endpoint: &str) -> Option<Target> {
        if let Some(container) = endpoint.strip_prefix("stdio://") {
            return Some(Target::Stdio(container.trim_end_matches('/').into()));
        }
        endpoint.strip_prefix("sse+").map(|url| Target::Sse(url.into()))
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("no container engine is connected")]
    NoEngine,
    #[error("cannot reach the server: {0}")]
    Attach(String),
    #[error("the server's process ended")]
    Ended,
    #[error("the server did not answer within {}s", .0.as_secs())]
    Deadline(Duration),
    #[error("{method}: server error {code}: {message}")]
    Rpc { method: String, code: i64, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// How messages reach the server.
enum Outbound {
    Stdin(SharedStdin),
    /// Posted to the endpoint the server's event stream named.
    Post {
        http: reqwest::Client,
        url: std::sync::OnceLock<String>,
    },
}

pub struct Link {
    pub deployment: String,
    pub target: Target,
    outbound: Outbound,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_id: AtomicU64,
    alive: AtomicBool,
    /// The server's answer to the bridge's one `initialize`.
    initialized: OnceCell<Value>,
    /// Notifications the server sends, for whoever listens.
    pub notifications: broadcast::Sender<Value>,
    /// Takes a request the server makes of its client; false when no client can.
    router: std::sync::OnceLock<RequestRouter>,
}

/// Delivers a server-to-client request to a client; false when none can take it.
pub type RequestRouter = Box<dyn Fn(Value) -> bool + Send + Sync>;

/// Opens links to servers: how a `Target` is reached is the connector's
/// business (the host's goes through the container engine).
pub trait Connector: Send + Sync {
    /// A link to the server at `target`, known as `key` in logs.
    fn open<'a>(
        &'a self,
        tasks: &'a dyn Spawner,
        key: &'a str,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<Arc<Link>, LinkError>>;
}

/// What a stdio server writes, as the connector reads it.
pub enum Output {
    Stdout(Bytes),
    /// Logged, never parsed.
    Stderr(Bytes),
}

impl Link {
    fn new(key: &str, target: &Target, outbound: Outbound) -> Arc<Link> {
        Arc::new(Link {
            deployment: key.into(),
            target: target.clone(),
            outbound,
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            alive: AtomicBool::new(true),
            initialized: OnceCell::new(),
            notifications: broadcast::channel(256).0,
            router: std::sync::OnceLock::new(),
        })
    }

    /// A link over a stdio server's `stdin` and what it writes (`output`,
    /// ending when the process does); starts reading.
    pub fn over_stdio(
        tasks: &dyn Spawner,
        key: &str,
        target: &Target,
        stdin: Stdin,
        output: impl futures_util::Stream<Item = Result<Output, String>> + Send + Unpin + 'static,
    ) -> Arc<Link> {
        let link = Link::new(key, target, Outbound::Stdin(SharedStdin::new(tasks, key, stdin)));
        let reader = link.clone();
        tasks.spawn("stdio reader", async move { reader.read_stdout(output).await });
        link
    }

    /// A link to an HTTP+SSE server: holds its event stream open and waits
    /// for it to name the endpoint messages are posted to.
    pub async fn over_sse(
        http: &reqwest::Client,
        tasks: &dyn Spawner,
        key: &str,
        target: &Target,
    ) -> Result<Arc<Link>, LinkError> {
        let Target::Sse(url) = target else {
            return Err(LinkError::Invalid(format!("{target:?} is not an SSE server")));
        };
        let events = http
            .get(url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| LinkError::Attach(e.to_string()))?;
        let link = Link::new(key, target, Outbound::Post { http: http.clone(), url: Default::default() });
        let (named, endpoint) = oneshot::channel();
        let (reader, base) = (link.clone(), url_base(url));
        tasks.spawn("sse reader", async move { reader.read_events(events, base, named).await });
        match tokio::time::timeout(ENDPOINT_DEADLINE, endpoint).await {
            Ok(Ok(())) => Ok(link),
            _ => {
                link.alive.store(false, Ordering::SeqCst); // the reader stops at the next event
                Err(LinkError::Attach(format!("{url} named no message endpoint")))
            }
        }
    }

    /// Who takes the server's requests of its client (set once).
    pub fn route_requests_with(&self, router: impl FnOnce() -> RequestRouter) {
        let _ = self.router.get_or_init(router);
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// The server's `initialize` result; the handshake happens once per process.
    pub async fn initialize(&self, deadline: Duration) -> Result<Value, LinkError> {
        let init = self
            .initialized
            .get_or_try_init(|| async {
                let params = json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "mcp-runtime-bridge", "version": env!("CARGO_PKG_VERSION")},
                });
                let result = self.request("initialize", params, deadline).await?;
                self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
                Ok::<_, LinkError>(result)
            })
            .await?;
        Ok(init.clone())
    }

    /// A request of the bridge's own; its result.
    pub async fn request(&self, method: &str, params: Value, deadline: Duration) -> Result<Value, LinkError> {
        let answer =
            self.call(json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}), deadline).await?;
        if let Some(error) = answer.get("error") {
            return Err(LinkError::Rpc {
                method: method.into(),
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error.get("message").and_then(Value::as_str).unwrap_or("").into(),
            });
        }
        answer.get("result").cloned().ok_or_else(|| LinkError::Invalid(format!("{method}: answer has no result")))
    }

    /// Sends a request under a fresh bridge id and answers with the server's
    /// reply carrying the caller's id again.
    pub async fn call(&self, message: Value, deadline: Duration) -> Result<Value, LinkError> {
        self.call_as(self.reserve_id(), message, deadline).await.map(Answer::into_message)
    }

    /// A bridge id for a request about to be sent (to forward its cancellation).
    pub fn reserve_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `call`, under an id from `reserve_id`: the answer as the server wrote it,
    /// to be read as a message or passed on as JSON under the caller's id.
    pub async fn call_as(&self, id: u64, mut message: Value, deadline: Duration) -> Result<Answer, LinkError> {
        let caller_id = message.get("id").cloned().unwrap_or(Value::Null);
        message["id"] = json!(id);
        let (answer, waiting) = oneshot::channel();
        self.pending.lock().expect("pending map poisoned").insert(id, answer);
        // Forget the request however this call ends (answered, failed, or abandoned by its caller).
        let _forget = Forget { pending: &self.pending, id };
        self.send(&message).await?;
        match tokio::time::timeout(deadline, waiting).await {
            Ok(Ok(reply)) => Ok(reply.for_caller(caller_id)),
            Ok(Err(_)) => Err(LinkError::Ended),
            Err(_) => Err(LinkError::Deadline(deadline)),
        }
    }

    /// Sends one message: a line queued for stdin, or a POST to the SSE server.
    pub async fn send(&self, message: &Value) -> Result<(), LinkError> {
        if !self.is_alive() {
            return Err(LinkError::Ended);
        }
        let mut line = serde_json::to_vec(message).map_err(|e| LinkError::Invalid(e.to_string()))?;
        let sent = match &self.outbound {
            Outbound::Stdin(stdin) => {
                line.push(b'\n');
                stdin.send(line).map_err(|_| "stdin closed".to_string())
            }
            Outbound::Post { http, url } => {
                let url = url.get().ok_or(LinkError::Ended)?;
                let posted = http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(line);
                match posted.send().await {
                    Ok(answer) if answer.status().is_success() => Ok(()),
                    // The server is there but refused this message: the link stays.
                    Ok(answer) => {
                        return Err(LinkError::Invalid(format!("the server answered HTTP {}", answer.status())))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        sent.map_err(|_| {
            self.alive.store(false, Ordering::SeqCst);
            LinkError::Ended
        })
    }

    async fn read_stdout(
        self: Arc<Self>,
        mut output: impl futures_util::Stream<Item = Result<Output, String>> + Unpin,
    ) {
        let mut lines = LineBuffer::default();
        while let Some(frame) = output.next().await {
            match frame {
                Ok(Output::Stdout(message)) => {
                    for line in lines.push(&message, &self.deployment).into_iter().filter(|l| !l.is_empty()) {
                        self.dispatch(line).await;
                    }
                }
                Ok(Output::Stderr(message)) => {
                    let text = String::from_utf8_lossy(&message);
                    tracing::debug!(target: "stdio", deployment = %self.deployment, "{}", text.trim_end());
                }
                Err(e) => {
                    tracing::warn!(deployment = %self.deployment, "stdio stream failed: {e}");
                    break;
                }
            }
        }
        self.detached();
    }

    /// Reads an SSE server's event stream: first where to post, then messages.
    async fn read_events(self: Arc<Self>, events: reqwest::Response, base: reqwest::Url, named: oneshot::Sender<()>) {
        let mut named = Some(named);
        let (mut lines, mut event) = (LineBuffer::default(), SseEvent::default());
        let mut stream = events.bytes_stream();
        while let Some(Ok(bytes)) = stream.next().await {
            if !self.is_alive() {
                break;
            }
            for line in lines.push(&bytes, &self.deployment) {
                let Some((kind, data)) = event.push(&line) else { continue };
                match kind.as_str() {
                    "endpoint" => {
                        let Outbound::Post { url, .. } = &self.outbound else { continue };
                        if let Ok(resolved) = base.join(data.trim()) {
                            let _ = url.set(resolved.to_string());
                            if let Some(named) = named.take() {
                                let _ = named.send(());
                            }
                        }
                    }
                    "" | "message" => self.dispatch(data.into_bytes()).await,
                    _ => {}
                }
            }
        }
        self.detached();
    }

    /// The server is gone: every caller still waiting learns it now.
    fn detached(&self) {
        self.alive.store(false, Ordering::SeqCst);
        // Dropping the senders tells every waiting caller the process is gone.
        self.pending.lock().expect("pending map poisoned").clear();
        tracing::info!(deployment = %self.deployment, "link to the server closed");
    }

    async fn dispatch(&self, line: Vec<u8>) {
        // Answers, nearly all of what a server writes, pass on unparsed beyond their envelope.
        let Some(envelope) = Envelope::read(&line) else {
            let excerpt: String = String::from_utf8_lossy(&line).chars().take(120).collect();
            tracing::warn!(deployment = %self.deployment, "dropped a line that is not a JSON-RPC message: {excerpt}");
            return;
        };
        if !envelope.has_method() {
            let (id, span) = (envelope.link_id().filter(|_| envelope.is_answer()), envelope.id_span(&line));
            let waiting = id.and_then(|id| self.pending.lock().expect("pending map poisoned").remove(&id));
            match waiting {
                Some(waiting) => {
                    let _ = waiting.send(Answer::new(line, span));
                }
                None => tracing::debug!(deployment = %self.deployment, "dropped an answer nobody waits for"),
            }
            return;
        }
        let Ok(message) = serde_json::from_slice::<Value>(&line) else { return };
        match message.get("method") {
            Some(method) if message.get("id").is_some() => {
                // Sampling, elicitation, roots: to the client that can answer, or an error.
                let method = method.as_str().unwrap_or_default().to_string();
                let id = message["id"].clone();
                if !self.router.get().is_some_and(|route| route(message)) {
                    let reply = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601,
                        "message": format!("no client of this bridge can answer {method}")}});
                    let _ = self.send(&reply).await;
                }
            }
            _ => {
                let _ = self.notifications.send(message);
            }
        }
    }
}

struct Forget<'a> {
    pending: &'a Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pending.lock().expect("pending map poisoned").remove(&self.id);
    }
}

/// An SSE URL as the base that a relative message endpoint is resolved against.
fn url_base(url: &str) -> reqwest::Url {
    reqwest::Url::parse(url).unwrap_or_else(|_| reqwest::Url::parse("http://invalid/").expect("a valid URL"))
}

/// The links the bridge holds, by deployment. Finding a live one is a map
/// lookup (every bridged request does it); opening one, which may take
/// seconds, holds up only other callers for the same deployment.
pub struct Links {
    connector: Arc<dyn Connector>,
    open: Mutex<HashMap<String, Arc<Link>>>,
    /// One opening at a time per deployment.
    opening: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Links {
    pub fn new(connector: Arc<dyn Connector>) -> Links {
        Links { connector, open: Default::default(), opening: Default::default() }
    }

    /// The live link to a deployment's server, opened when there is none
    /// (first use, a host restart, or a server that ended and restarted).
    pub async fn get(&self, tasks: &dyn Spawner, deployment: &str, target: &Target) -> Result<Arc<Link>, LinkError> {
        if let Some(link) = self.live(deployment, target) {
            return Ok(link);
        }
        let gate = self.opening.lock().expect("openings poisoned").entry(deployment.into()).or_default().clone();
        let _opening = gate.lock().await;
        // Another caller may have opened it while this one waited.
        if let Some(link) = self.live(deployment, target) {
            return Ok(link);
        }
        let link = self.connector.open(tasks, deployment, target).await?;
        self.open.lock().expect("links poisoned").insert(deployment.into(), link.clone());
        Ok(link)
    }

    /// Whether the link known as `key` was open and its server has gone.
    pub fn ended(&self, key: &str) -> bool {
        self.open.lock().expect("links poisoned").get(key).is_some_and(|l| !l.is_alive())
    }

    fn live(&self, deployment: &str, target: &Target) -> Option<Arc<Link>> {
        let open = self.open.lock().expect("links poisoned");
        open.get(deployment).filter(|l| l.is_alive() && l.target == *target).cloned()
    }

    /// Closes the link to a deployment that stopped or went away.
    pub fn forget(&self, deployment: &str) {
        self.open.lock().expect("links poisoned").remove(deployment);
        self.opening.lock().expect("openings poisoned").remove(deployment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_say_which_link_they_need() {
        assert_eq!(Target::of("stdio://abc123"), Some(Target::Stdio("abc123".into())));
        assert_eq!(Target::of("sse+http://10.0.0.2:8080/sse"), Some(Target::Sse("http://10.0.0.2:8080/sse".into())));
        assert_eq!(Target::of("http://10.0.0.2:8080/mcp"), None);
        let uri: axum::http::Uri = "sse+http://10.0.0.2:8080/sse".parse().expect("a route can hold it");
        assert_eq!(Target::of(&uri.to_string()), Some(Target::Sse("http://10.0.0.2:8080/sse".into())));
    }
}
