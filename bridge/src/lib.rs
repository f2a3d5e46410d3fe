//! The MCP bridge: streamable HTTP on the outside for a server that speaks
//! stdio or the older HTTP+SSE transport, one shared link inside (see
//! `link`), so any MCP client works unchanged and many share one server.
//! The host serves it at `/servers/{id}/mcp`; the `mcp-stdio-bridge` binary
//! (built static, placed in an image as its entrypoint) serves the same code
//! at `/mcp` for a stdio server it starts itself, so platforms that run only
//! HTTP servers (Code Engine) can run it.
//!
//! The bridge initializes the server once and answers each client's
//! `initialize` from that result under a session id of its own; every request
//! goes to the server under a bridge id and its answer comes back to the
//! client that asked; `notifications/cancelled` is forwarded with the id the
//! server knows. Progress reaches only the client whose request it is about
//! (its token is the bridge's own on the way in, the client's on the way
//! out, in the request's event stream); other notifications fan out to every
//! session listening with `GET`. Sessions outlive the process: a server that
//! restarts is attached and initialized again, and its clients go on.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

mod answers;
mod event_stream;
pub mod generation;
pub mod link;
mod per_session;
pub mod process;
mod sessions;
mod spawner;

use answers::*;
pub use per_session::{Launcher, Servers};
pub use sessions::OwnServer;
use sessions::{SessionServer, Sessions};

use link::{Answer, Connector, Link, LinkError, Links, RequestRouter, Target};
pub use spawner::{Spawner, TokioTasks};

/// The MCP protocol version the bridge initializes servers with.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

const SESSION_HEADER: &str = "mcp-session-id";
/// How long a client's request may wait for the server (tools may be slow).
const CALL_DEADLINE: Duration = Duration::from_secs(300);
/// How long the bridge's own handshake with the server may take.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// How long a health check's `ping` may take.
const PING_DEADLINE: Duration = Duration::from_secs(5);
/// Largest message a client may send.
const MAX_BODY: usize = 4 << 20;

pub struct Bridge {
    /// Links by key: a deployment's id for its shared server, an instance's for a session's own.
    links: Links,
    /// Client sessions, each with one deployment.
    sessions: Arc<Mutex<Sessions>>,
    /// How long an unused session with no stream open is kept.
    idle: Duration,
    /// Per-session servers whose session ended, until the host takes them to remove.
    retired: Mutex<Option<UnboundedReceiver<String>>>,
    /// Sessions with an open event stream (a `GET` listener, or an HTTP+SSE
    /// client): what the bridge pushes to them.
    event_streams: Arc<Mutex<HashMap<String, tokio::sync::mpsc::Sender<Value>>>>,
    /// Requests of the server passed on to a client: the id the client saw → (deployment, the server's id).
    asks: Arc<Mutex<HashMap<String, (String, Value)>>>,
    /// (session, the client's request id) → the bridge id the server knows it by.
    in_flight: Arc<Mutex<HashMap<(String, String), u64>>>,
}

impl Bridge {
    /// A bridge that opens links to servers through `connector`.
    pub fn new(connector: Arc<dyn Connector>, idle: Duration) -> Bridge {
        let (retire, retired) = unbounded_channel();
        Bridge {
            links: Links::new(connector),
            sessions: Arc::new(Mutex::new(Sessions::new(retire))),
            idle,
            retired: Mutex::new(Some(retired)),
            event_streams: Arc::default(),
            asks: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    /// The instances of per-session servers whose session ended, as they
    /// end: for the one task that removes them (`None` once taken).
    pub fn retired_servers(&self) -> Option<UnboundedReceiver<String>> {
        self.retired.lock().expect("retired poisoned").take()
    }

    /// The live link to a deployment's shared server (opened on first use).
    pub async fn server(&self, tasks: &dyn Spawner, deployment: &str, target: &Target) -> Result<Arc<Link>, LinkError> {
        let link = self.links.get(tasks, deployment, target).await?;
        link.route_requests_with(|| self.request_router(deployment, deployment));
        Ok(link)
    }

    /// The live link to the server a session talks to.
    async fn link_of(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        servers: Servers<'_>,
        server: &SessionServer,
    ) -> Result<Arc<Link>, LinkError> {
        match (server, servers) {
            (SessionServer::Shared, Servers::Shared(target)) => self.server(tasks, deployment, target).await,
            (SessionServer::Own(own), _) => {
                // Its process ended, and whatever it held for this client with it.
                if self.links.ended(&own.instance) {
                    self.server_ended(&own.instance);
                    return Err(LinkError::Ended);
                }
                let link = self.links.get(tasks, &own.instance, &own.target).await?;
                link.route_requests_with(|| self.request_router(deployment, &own.instance));
                Ok(link)
            }
            (SessionServer::Shared, Servers::PerSession(_)) => {
                Err(LinkError::Invalid("the deployment now starts a server per session: initialize again".into()))
            }
        }
    }

    /// Sends a request the server on `link` makes of its client to the one
    /// session with requests in flight over that link, when that session
    /// listens; otherwise no one can be sure to be the one it is meant for.
    fn request_router(&self, deployment: &str, link: &str) -> RequestRouter {
        let (sessions, in_flight) = (self.sessions.clone(), self.in_flight.clone());
        let (streams, asks) = (self.event_streams.clone(), self.asks.clone());
        let (deployment, link) = (deployment.to_string(), link.to_string());
        Box::new(move |mut request: Value| {
            let busy: std::collections::BTreeSet<String> = {
                let sessions = sessions.lock().expect("sessions poisoned");
                let in_flight = in_flight.lock().expect("in-flight map poisoned");
                in_flight.keys().map(|(s, _)| s).filter(|s| sessions.talks_over(s, &link)).cloned().collect()
            };
            let mut busy = busy.into_iter();
            let (Some(session), None) = (busy.next(), busy.next()) else { return false };
            let Some(stream) = streams.lock().expect("event streams poisoned").get(&session).cloned() else {
                return false;
            };
            let asked = format!("ask-{}", uuid::Uuid::new_v4().simple());
            let server_id = std::mem::replace(&mut request["id"], json!(asked));
            asks.lock().expect("asks poisoned").insert(asked.clone(), (deployment.clone(), server_id));
            let delivered = stream.try_send(request).is_ok();
            if !delivered {
                asks.lock().expect("asks poisoned").remove(&asked);
            }
            delivered
        })
    }

    /// `initialize` and `tools/list` over the link: the server's tool names.
    pub async fn handshake(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        target: &Target,
    ) -> Result<Vec<String>, LinkError> {
        let server = self.server(tasks, deployment, target).await?;
        server.initialize(HANDSHAKE_DEADLINE).await?;
        let tools = server.request("tools/list", json!({}), HANDSHAKE_DEADLINE).await?;
        let tools = tools.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(tools.iter().filter_map(|t| t.get("name")?.as_str().map(String::from)).collect())
    }

    /// MCP `ping` over the deployment's link: the health check.
    pub async fn ping(&self, tasks: &dyn Spawner, deployment: &str, target: &Target) -> Result<(), LinkError> {
        let server = self.server(tasks, deployment, target).await?;
        server.initialize(HANDSHAKE_DEADLINE).await?;
        server.request("ping", json!({}), PING_DEADLINE).await.map(drop)
    }

    /// Ends sessions nobody has used for a while and that hold no stream open.
    pub fn expire_idle_sessions(&self) {
        let streams = self.event_streams.lock().expect("event streams poisoned");
        let now = std::time::Instant::now();
        let ended =
            self.sessions.lock().expect("sessions poisoned").expire(self.idle, now, |id| streams.contains_key(id));
        if ended > 0 {
            tracing::info!(ended, "idle bridge sessions ended");
        }
    }

    /// Ends every session with a deployment that stopped serving or went
    /// away; the instances of their own servers, for the caller to remove.
    pub fn forget(&self, deployment: &str) -> Vec<String> {
        self.links.forget(deployment);
        self.sessions.lock().expect("sessions poisoned").close_all(deployment)
    }

    /// Closes the link known as `key` (a deployment's, or an own server's
    /// instance) and leaves the sessions be.
    pub fn drop_link(&self, key: &str) {
        self.links.forget(key);
    }

    /// One HTTP exchange of a client with a deployment's bridged server.
    pub async fn serve(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        servers: Servers<'_>,
        request: Request<Body>,
    ) -> Response<Body> {
        let session = request.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(String::from);
        let stateless = generation::is_stateless(request.headers());
        let headers = if stateless { request.headers().clone() } else { Default::default() };
        let wants_stream = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream"));
        match *request.method() {
            Method::POST => {}
            Method::DELETE => return self.end_session(deployment, session),
            Method::GET if wants_stream => return self.listen(tasks, deployment, servers, session).await,
            _ => {
                let mut answer = http_error(StatusCode::METHOD_NOT_ALLOWED, "this bridge answers POST, GET and DELETE");
                answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE"));
                return answer;
            }
        }
        let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
            Ok(body) => body,
            Err(_) => return http_error(StatusCode::PAYLOAD_TOO_LARGE, "messages are at most 4 MiB"),
        };
        let message = match parse_message(&body) {
            Ok(message) => message,
            Err(bad) => return bad.response(),
        };
        let id = message.get("id").cloned();
        let method = message.get("method").and_then(Value::as_str).map(String::from);
        if stateless {
            if let Err(why) = generation::check_headers(&headers, &message) {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    id.unwrap_or(Value::Null),
                    generation::HEADER_MISMATCH,
                    &why,
                );
            }
            let Servers::Shared(target) = servers else {
                return per_session::refuse_stateless(id);
            };
            return match self.server(tasks, deployment, target).await {
                Ok(server) => self.stateless(tasks, server, deployment, message, wants_stream).await,
                Err(e) => rpc_error(StatusCode::BAD_GATEWAY, id.unwrap_or(Value::Null), -32603, &e.to_string()),
            };
        }
        if method.as_deref() == Some("initialize") {
            return self.initialize(tasks, deployment, servers, id.unwrap_or(Value::Null)).await;
        }
        let (session, server) = match self.session(deployment, session) {
            Ok(session) => session,
            Err(refusal) => return refusal.response(),
        };
        let server = match self.link_of(tasks, deployment, servers, &server).await {
            Ok(server) => server,
            Err(e) => return rpc_error(StatusCode::BAD_GATEWAY, id.unwrap_or(Value::Null), -32603, &e.to_string()),
        };
        match (id, method) {
            (Some(id), Some(_)) => {
                let reply = if wants_stream { Reply::Stream } else { Reply::Json };
                self.forward_request(tasks, server, &session, id, message, reply).await
            }
            (None, Some(method)) => self.forward_notification(&server, &session, &method, message).await,
            (Some(_), None) => self.answer_server(&server, deployment, message).await,
            _ => accepted(),
        }
    }

    /// The caller's session, if it is one of this deployment's, and the
    /// server it talks to; otherwise the answer that says why not.
    fn session(&self, deployment: &str, session: Option<String>) -> Result<(String, SessionServer), NoSession> {
        let session = session.ok_or(NoSession::Missing)?;
        match self.sessions.lock().expect("sessions poisoned").use_for(&session, deployment) {
            Some(server) => Ok((session, server)),
            None => Err(NoSession::Unknown),
        }
    }

    /// A request of the stateless generation: no session; `server/discover`
    /// is answered from the server's `initialize` result.
    async fn stateless(
        &self,
        tasks: &dyn Spawner,
        link: Arc<Link>,
        deployment: &str,
        message: Value,
        wants_stream: bool,
    ) -> Response<Body> {
        let id = message.get("id").cloned();
        match (id, message.get("method").and_then(Value::as_str)) {
            (Some(id), Some("server/discover")) => match link.initialize(HANDSHAKE_DEADLINE).await {
                Ok(init) => json_response(
                    StatusCode::OK,
                    &json!({"jsonrpc": "2.0", "id": id, "result": generation::discover_result(&init)}),
                ),
                Err(e) => rpc_error(StatusCode::BAD_GATEWAY, id, -32603, &e.to_string()),
            },
            (Some(id), Some(_)) => {
                // In flight under a key of its own: cancelling needs a session, which stateless clients have not.
                let key = format!("stateless-{}", uuid::Uuid::new_v4().simple());
                let reply = if wants_stream { Reply::Stream } else { Reply::Json };
                self.forward_request(tasks, link, &key, id, message, reply).await
            }
            (Some(_), None) => self.answer_server(&link, deployment, message).await,
            (None, _) => match link.send(&message).await {
                Ok(()) => accepted(),
                Err(e) => http_error(StatusCode::BAD_GATEWAY, &e.to_string()),
            },
        }
    }

    /// Sends a client's request to the server under a bridge id (and a progress
    /// token of the bridge's, when the client gave one) and delivers the answer
    /// as `reply` says.
    #[allow(clippy::too_many_arguments)]
    async fn forward_request(
        &self,
        tasks: &dyn Spawner,
        link: Arc<Link>,
        session: &str,
        id: Value,
        mut message: Value,
        reply: Reply,
    ) -> Response<Body> {
        let key = (session.to_string(), id.to_string());
        let bridge_id = link.reserve_id();
        // Progress tokens are the client's choice: the server sees one only the bridge hands out.
        let progress = message.pointer("/params/_meta/progressToken").cloned();
        if progress.is_some() {
            message["params"]["_meta"]["progressToken"] = bridge_token(bridge_id);
        }
        self.in_flight.lock().expect("in-flight map poisoned").insert(key.clone(), bridge_id);
        let events = match reply {
            Reply::Channel(events) => events,
            Reply::Stream if progress.is_some() => {
                // The answer as an event stream: the request's progress first, then its answer.
                let (events, stream) = tokio::sync::mpsc::channel::<Value>(64);
                self.relay(tasks, link, bridge_id, message, id, progress, key, events);
                let events = futures_util::stream::unfold(stream, |mut stream| async move {
                    stream.recv().await.map(|message| (sse_event(&message), stream))
                });
                return sse_response(Body::from_stream(events));
            }
            Reply::Json | Reply::Stream => {
                let outcome = link.call_as(bridge_id, message, CALL_DEADLINE).await;
                self.in_flight.lock().expect("in-flight map poisoned").remove(&key);
                return match outcome {
                    Ok(answer) => json_text_response(StatusCode::OK, answer.into_json()),
                    Err(e) => rpc_error(StatusCode::OK, id, -32603, &e.to_string()),
                };
            }
        };
        self.relay(tasks, link, bridge_id, message, id, progress, key, events);
        accepted()
    }

    /// Runs a request in the background, passing its progress (under the
    /// client's token) and then its answer to `events`.
    #[allow(clippy::too_many_arguments)]
    fn relay(
        &self,
        tasks: &dyn Spawner,
        link: Arc<Link>,
        bridge_id: u64,
        message: Value,
        id: Value,
        client_token: Option<Value>,
        key: (String, String),
        events: tokio::sync::mpsc::Sender<Value>,
    ) {
        let in_flight = self.in_flight.clone();
        let mut notifications = link.notifications.subscribe();
        let ours = bridge_token(bridge_id);
        tasks.spawn_to_completion("bridged request", async move {
            let progress_of = |mut note: Value| {
                let token = client_token.as_ref()?;
                (note.pointer("/params/progressToken") == Some(&ours)).then(|| {
                    note["params"]["progressToken"] = token.clone();
                    note
                })
            };
            let call = link.call_as(bridge_id, message, CALL_DEADLINE);
            tokio::pin!(call);
            loop {
                tokio::select! {
                    biased;
                    Ok(note) = notifications.recv() => {
                        if let Some(note) = progress_of(note) {
                            if events.send(note).await.is_err() {
                                break; // the client went away
                            }
                        }
                    }
                    outcome = &mut call => {
                        // The server wrote its progress before its answer: pass on what is queued first.
                        while let Ok(note) = notifications.try_recv() {
                            if let Some(note) = progress_of(note) {
                                let _ = events.send(note).await;
                            }
                        }
                        let answer = outcome
                            .map(Answer::into_message)
                            .unwrap_or_else(|e| rpc_error_body(id.clone(), -32603, &e.to_string()));
                        let _ = events.send(answer).await;
                        break;
                    }
                }
            }
            in_flight.lock().expect("in-flight map poisoned").remove(&key);
        });
    }

    /// A client's answer to a request the server made of it, back under the server's id.
    async fn answer_server(&self, link: &Link, deployment: &str, mut message: Value) -> Response<Body> {
        let asked = message["id"].as_str().unwrap_or_default().to_string();
        let known = self.asks.lock().expect("asks poisoned").remove(&asked);
        match known {
            Some((owner, server_id)) if owner == deployment => {
                message["id"] = server_id;
                match link.send(&message).await {
                    Ok(()) => accepted(),
                    Err(e) => http_error(StatusCode::BAD_GATEWAY, &e.to_string()),
                }
            }
            _ => http_error(StatusCode::NOT_FOUND, "no request of the server has that id"),
        }
    }

    async fn forward_notification(
        &self,
        server: &Link,
        session: &str,
        method: &str,
        mut message: Value,
    ) -> Response<Body> {
        match method {
            // The bridge completed the handshake with the server itself.
            "notifications/initialized" => return accepted(),
            "notifications/cancelled" => {
                let asked = message.pointer("/params/requestId").map(Value::to_string).unwrap_or_default();
                let known =
                    self.in_flight.lock().expect("in-flight map poisoned").get(&(session.into(), asked)).copied();
                match known {
                    Some(bridge_id) => message["params"]["requestId"] = json!(bridge_id),
                    None => return accepted(),
                }
            }
            _ => {}
        }
        match server.send(&message).await {
            Ok(()) => accepted(),
            Err(e) => http_error(StatusCode::BAD_GATEWAY, &e.to_string()),
        }
    }

    fn end_session(&self, deployment: &str, session: Option<String>) -> Response<Body> {
        let mut sessions = self.sessions.lock().expect("sessions poisoned");
        match session {
            Some(s) if sessions.belongs_to(&s, deployment) => {
                sessions.close(&s);
                self.in_flight.lock().expect("in-flight map poisoned").retain(|(owner, _), _| *owner != s);
                empty(StatusCode::NO_CONTENT)
            }
            _ => http_error(StatusCode::NOT_FOUND, "no such session"),
        }
    }
}

/// How the answer to a client's request is delivered.
enum Reply {
    /// In the HTTP response, as JSON.
    Json,
    /// In the HTTP response, as an event stream when there is progress to pass on.
    Stream,
    /// On the client's open event stream (the HTTP+SSE transport); the POST is accepted.
    Channel(tokio::sync::mpsc::Sender<Value>),
}

fn bridge_token(bridge_id: u64) -> Value {
    json!(format!("bridge-{bridge_id}"))
}
