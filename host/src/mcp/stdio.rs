//! One long-lived MCP session with a server that speaks stdio in a container.
//!
//! The host attaches to the container's stdin and stdout through the
//! container engine (ownership checked there), writes one JSON-RPC message
//! per line, and routes every answer to whoever asked by its id: ids are the
//! bridge's own, so callers never collide. stdout is protocol only: a line
//! that is not JSON, or is longer than `MAX_LINE`, is logged and dropped. A
//! request the server makes of its client is answered with an error, since
//! no caller of the bridge holds a stream to receive it.

use bollard::container::LogOutput;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, oneshot, OnceCell};

use super::client::PROTOCOL_VERSION;
use crate::capabilities::ContainerEngine;
use crate::tasks::Supervisor;

/// Longest line read from a server's stdout; longer ones are dropped.
pub const MAX_LINE: usize = 4 << 20;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StdioError {
    #[error("no container engine is connected")]
    NoEngine,
    #[error("cannot attach to the server's container: {0}")]
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

type Stdin = std::pin::Pin<Box<dyn AsyncWrite + Send>>;

pub struct StdioServer {
    pub deployment: String,
    pub container: String,
    stdin: tokio::sync::Mutex<Stdin>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    next_id: AtomicU64,
    alive: AtomicBool,
    /// The server's answer to the bridge's one `initialize`.
    initialized: OnceCell<Value>,
    /// Notifications the server sends, for whoever listens.
    pub notifications: broadcast::Sender<Value>,
}

impl StdioServer {
    /// Attaches to `container` and starts reading what the server writes.
    pub async fn attach(
        engine: &ContainerEngine,
        tasks: &Supervisor,
        deployment: &str,
        container: &str,
    ) -> Result<Arc<StdioServer>, StdioError> {
        let attached = engine.attach(container).await.map_err(|e| StdioError::Attach(format!("{e:?}")))?;
        let server = Arc::new(StdioServer {
            deployment: deployment.into(),
            container: container.into(),
            stdin: tokio::sync::Mutex::new(attached.input),
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            alive: AtomicBool::new(true),
            initialized: OnceCell::new(),
            notifications: broadcast::channel(256).0,
        });
        let reader = server.clone();
        tasks.spawn("stdio reader", async move { reader.read(attached.output).await });
        Ok(server)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// The server's `initialize` result; the handshake happens once per process.
    pub async fn initialize(&self, deadline: Duration) -> Result<Value, StdioError> {
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
                Ok::<_, StdioError>(result)
            })
            .await?;
        Ok(init.clone())
    }

    /// A request of the bridge's own; its result.
    pub async fn request(&self, method: &str, params: Value, deadline: Duration) -> Result<Value, StdioError> {
        let answer =
            self.call(json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}), deadline).await?;
        if let Some(error) = answer.get("error") {
            return Err(StdioError::Rpc {
                method: method.into(),
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error.get("message").and_then(Value::as_str).unwrap_or("").into(),
            });
        }
        answer.get("result").cloned().ok_or_else(|| StdioError::Invalid(format!("{method}: answer has no result")))
    }

    /// Sends a request under a fresh bridge id and answers with the server's
    /// reply carrying the caller's id again.
    pub async fn call(&self, message: Value, deadline: Duration) -> Result<Value, StdioError> {
        self.call_as(self.reserve_id(), message, deadline).await
    }

    /// A bridge id for a request about to be sent (to forward its cancellation).
    pub fn reserve_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `call`, under an id from `reserve_id`.
    pub async fn call_as(&self, id: u64, mut message: Value, deadline: Duration) -> Result<Value, StdioError> {
        let caller_id = message.get("id").cloned().unwrap_or(Value::Null);
        message["id"] = json!(id);
        let (answer, waiting) = oneshot::channel();
        self.pending.lock().expect("pending map poisoned").insert(id, answer);
        // Forget the request however this call ends (answered, failed, or abandoned by its caller).
        let _forget = Forget { pending: &self.pending, id };
        self.send(&message).await?;
        let mut reply = match tokio::time::timeout(deadline, waiting).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err(StdioError::Ended),
            Err(_) => return Err(StdioError::Deadline(deadline)),
        };
        reply["id"] = caller_id;
        Ok(reply)
    }

    /// Writes one message as one line.
    pub async fn send(&self, message: &Value) -> Result<(), StdioError> {
        if !self.is_alive() {
            return Err(StdioError::Ended);
        }
        let mut line = serde_json::to_vec(message).map_err(|e| StdioError::Invalid(e.to_string()))?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        let written = async {
            stdin.write_all(&line).await?;
            stdin.flush().await
        };
        written.await.map_err(|_| {
            self.alive.store(false, Ordering::SeqCst);
            StdioError::Ended
        })
    }

    async fn read(
        self: Arc<Self>,
        mut output: impl futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
    ) {
        let mut lines = LineBuffer::default();
        while let Some(frame) = output.next().await {
            match frame {
                Ok(LogOutput::StdOut { message }) => {
                    for line in lines.push(&message, &self.deployment) {
                        self.dispatch(&line).await;
                    }
                }
                Ok(LogOutput::StdErr { message }) => {
                    tracing::debug!(target: "stdio", deployment = %self.deployment, "{}", String::from_utf8_lossy(&message).trim_end());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(deployment = %self.deployment, "stdio stream failed: {e}");
                    break;
                }
            }
        }
        self.alive.store(false, Ordering::SeqCst);
        // Dropping the senders tells every waiting caller the process is gone.
        self.pending.lock().expect("pending map poisoned").clear();
        tracing::info!(deployment = %self.deployment, "stdio server detached");
    }

    async fn dispatch(&self, line: &[u8]) {
        let message: Value = match serde_json::from_slice(line) {
            Ok(m @ Value::Object(_)) => m,
            _ => {
                let excerpt: String = String::from_utf8_lossy(line).chars().take(120).collect();
                tracing::warn!(deployment = %self.deployment, "dropped a line that is not a JSON-RPC message: {excerpt}");
                return;
            }
        };
        let is_answer = message.get("result").is_some() || message.get("error").is_some();
        match (message.get("id").and_then(Value::as_u64), message.get("method")) {
            (Some(id), None) if is_answer => {
                let waiting = self.pending.lock().expect("pending map poisoned").remove(&id);
                if let Some(waiting) = waiting {
                    let _ = waiting.send(message);
                }
            }
            (_, Some(method)) if message.get("id").is_some() => {
                // Sampling, elicitation, roots: nobody on this side can answer.
                let reply = json!({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601,
                    "message": format!("no client of this bridge can answer {method}")}});
                let _ = self.send(&reply).await;
            }
            (_, Some(_)) => {
                let _ = self.notifications.send(message);
            }
            _ => tracing::debug!(deployment = %self.deployment, "dropped an answer nobody waits for"),
        }
    }
}

struct Forget<'a> {
    pending: &'a Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pending.lock().expect("pending map poisoned").remove(&self.id);
    }
}

/// Splits a byte stream into lines, dropping any longer than `MAX_LINE`.
#[derive(Default)]
struct LineBuffer {
    partial: Vec<u8>,
    /// Inside an over-long line: skip to its end.
    skipping: bool,
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8], deployment: &str) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let ends = chunk.last() == Some(&b'\n');
            let body = if ends { &chunk[..chunk.len() - 1] } else { chunk };
            if !self.skipping {
                self.partial.extend_from_slice(body);
                if self.partial.len() > MAX_LINE {
                    tracing::warn!(deployment, "dropped a line longer than {} MiB from stdout", MAX_LINE >> 20);
                    self.partial = Vec::new();
                    self.skipping = true;
                }
            }
            if ends {
                if !self.skipping && !self.partial.iter().all(u8::is_ascii_whitespace) {
                    lines.push(std::mem::take(&mut self.partial));
                }
                self.partial.clear();
                self.skipping = false;
            }
        }
        lines
    }
}

/// The stdio servers the bridge is attached to, by deployment.
pub struct StdioServers {
    engine: Option<Arc<ContainerEngine>>,
    attached: tokio::sync::Mutex<HashMap<String, Arc<StdioServer>>>,
}

impl StdioServers {
    pub fn new(engine: Option<Arc<ContainerEngine>>) -> StdioServers {
        StdioServers { engine, attached: Default::default() }
    }

    /// The live session with a deployment's server, attaching when there is
    /// none (first use, a host restart, or a process that ended and restarted).
    pub async fn get(
        &self,
        tasks: &Supervisor,
        deployment: &str,
        container: &str,
    ) -> Result<Arc<StdioServer>, StdioError> {
        let mut attached = self.attached.lock().await;
        if let Some(server) = attached.get(deployment).filter(|s| s.is_alive() && s.container == container) {
            return Ok(server.clone());
        }
        let engine = self.engine.as_ref().ok_or(StdioError::NoEngine)?;
        let server = StdioServer::attach(engine, tasks, deployment, container).await?;
        attached.insert(deployment.into(), server.clone());
        Ok(server)
    }

    /// Detaches from a deployment that stopped or went away.
    pub async fn forget(&self, deployment: &str) {
        self.attached.lock().await.remove(deployment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_frames_and_long_ones_dropped() {
        let mut buffer = LineBuffer::default();
        assert!(buffer.push(b"{\"a\":", "t").is_empty());
        assert_eq!(buffer.push(b"1}\n{\"b\":2}\n\n{\"c\"", "t"), [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(buffer.push(&long, "t").is_empty(), "the over-long line is dropped, with what came before it");
        assert!(buffer.push(b"still the long one", "t").is_empty());
        assert_eq!(buffer.push(b"\n{\"d\":4}\n", "t"), [b"{\"d\":4}".to_vec()], "the next line reads normally");
    }
}
