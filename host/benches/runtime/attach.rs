//! tools/call written straight to a stdio server's stdin through the
//! engine's attach stream, with no bridge: the floor under the bridge's ratio
//! (each message crosses the engine and the container's shim both ways),
//! as the bare TCP relay is the proxy's.

use bollard::container::LogOutput;
use bollard::query_parameters::AttachContainerOptions;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use crate::load::Caller;

type Waiting = Mutex<HashMap<String, oneshot::Sender<()>>>;

/// One of several callers sharing one attachment, telling answers apart by id.
pub struct Attached {
    input: Arc<tokio::sync::Mutex<std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>>>,
    waiting: Arc<Waiting>,
    name: String,
    calls: u64,
    _attachment: Arc<Attachment>,
}

/// Ends the attachment with its last caller. Left attached, the engine would
/// copy every later answer of the server to it too, and this process would
/// read them all: a cost the bridge's figures, measured next, would carry.
struct Attachment(tokio::task::AbortHandle);

impl Drop for Attachment {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `clients` callers attached to `container` (the server the host's bridge
/// initialized: its session is the one they share, under ids of their own).
pub async fn callers(container: &str, clients: usize) -> Vec<Attached> {
    let docker = bollard::Docker::connect_with_local_defaults().expect("the engine answers");
    let options = AttachContainerOptions { stdin: true, stdout: true, stream: true, ..Default::default() };
    let attached = docker.attach_container(container, Some(options)).await.expect("attaches");
    let waiting: Arc<Waiting> = Arc::default();
    let answered = waiting.clone();
    let mut output = attached.output;
    let reader = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(Ok(LogOutput::StdOut { message })) = output.next().await {
            pending.extend_from_slice(&message);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let id = serde_json::from_slice::<Value>(&line).ok().and_then(|m| m["id"].as_str().map(String::from));
                // Answers to the host's own requests (numeric ids) are not ours.
                if let Some(waiter) = id.and_then(|id| answered.lock().unwrap().remove(&id)) {
                    let _ = waiter.send(());
                }
            }
        }
    });
    let input = Arc::new(tokio::sync::Mutex::new(attached.input));
    let attachment = Arc::new(Attachment(reader.abort_handle()));
    (0..clients)
        .map(|n| Attached {
            input: input.clone(),
            waiting: waiting.clone(),
            name: format!("attach-{n}"),
            calls: 0,
            _attachment: attachment.clone(),
        })
        .collect()
}

impl Caller for Attached {
    async fn echo(&mut self) {
        self.calls += 1;
        let id = format!("{}-{}", self.name, self.calls);
        let (answer, answered) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id.clone(), answer);
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": "echo", "arguments": {"text": "bench"}}});
        let mut line = serde_json::to_vec(&call).unwrap();
        line.push(b'\n');
        {
            let mut input = self.input.lock().await;
            input.write_all(&line).await.expect("stdin takes the call");
            input.flush().await.unwrap();
        }
        answered.await.expect("the server answers");
    }

    async fn end(self) {}
}
