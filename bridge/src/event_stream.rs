//! A session's open event stream: what the bridge pushes to a client outside
//! the answer to a request — the server's notifications (progress excepted:
//! it goes with its request) and the server's requests of that client.
//!
//! A streamable-HTTP client opens one with `GET` on its session. A client of
//! the 2024-11-05 HTTP+SSE transport opens one with `GET /servers/{id}/sse`:
//! a new session whose first event names where to post messages
//! (`/servers/{id}/messages?session=…`), whose answers come back on the same
//! stream, and which ends when the client closes it.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

use crate::answers::{accepted, http_error, parse_message, sse_event, sse_response};
use crate::link::Link;
use crate::sessions::Sessions;
use crate::Spawner;
use crate::{Bridge, Reply, Servers, HANDSHAKE_DEADLINE};

/// Answers an event stream may fall behind by before the client is dropped.
const BACKLOG: usize = 256;

impl Bridge {
    /// `GET` on a session: its event stream.
    pub(super) async fn listen(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        servers: Servers<'_>,
        session: Option<String>,
    ) -> Response<Body> {
        let (session, server) = match self.session(deployment, session) {
            Ok(session) => session,
            Err(refusal) => return refusal.response(),
        };
        match self.link_of(tasks, deployment, servers, &server).await {
            Ok(link) => self.event_stream(&link, session, false, None),
            Err(e) => http_error(StatusCode::BAD_GATEWAY, &e.to_string()),
        }
    }

    /// `GET /servers/{id}/sse`: a new session and its event stream.
    pub async fn open_event_stream(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        servers: Servers<'_>,
        messages_url: &str,
    ) -> Response<Body> {
        let (session, link) = match self.open_session(tasks, deployment, servers).await {
            Ok(opened) => opened,
            Err(e) => return http_error(StatusCode::BAD_GATEWAY, &e.to_string()),
        };
        let endpoint = format!("event: endpoint\ndata: {messages_url}?session={session}\n\n");
        self.event_stream(&link, session, true, Some(endpoint))
    }

    /// The stream itself: `first` (if any), then whatever is pushed to the
    /// session merged with the server's notifications.
    fn event_stream(&self, link: &Link, session: String, ends_session: bool, first: Option<String>) -> Response<Body> {
        let (pushed, queued) = mpsc::channel::<Value>(BACKLOG);
        self.event_streams.lock().expect("event streams poisoned").insert(session.clone(), pushed);
        let closer =
            Closer { session, ends_session, sessions: self.sessions.clone(), streams: self.event_streams.clone() };
        let first = futures_util::stream::iter(first.map(Ok::<_, std::convert::Infallible>));
        let pushed = futures_util::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|message| (message, queued))
        });
        let notifications = futures_util::stream::unfold(link.notifications.subscribe(), |mut notes| async move {
            loop {
                match notes.recv().await {
                    Ok(n) if n["method"] != "notifications/progress" => return Some((n, notes)),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    // The server ended: the client reconnects to the next one.
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let events = futures_util::stream::select(pushed, notifications).map(move |message| {
            let _open = &closer; // the stream's registration lives as long as the stream
            sse_event(&message)
        });
        sse_response(Body::from_stream(first.chain(events)))
    }

    /// `POST /servers/{id}/messages?session=…`: accepted at once; the answer
    /// goes out on the session's event stream.
    pub async fn post_to_event_stream(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        servers: Servers<'_>,
        session: Option<String>,
        body: &[u8],
    ) -> Response<Body> {
        let (session, server) = match self.session(deployment, session) {
            Ok(session) => session,
            Err(refusal) => return refusal.response(),
        };
        let Some(events) = self.event_streams.lock().expect("event streams poisoned").get(&session).cloned() else {
            return http_error(StatusCode::NOT_FOUND, "no such event stream: open /sse again");
        };
        let message = match parse_message(body) {
            Ok(message) => message,
            Err(bad) => return bad.response(),
        };
        let link = match self.link_of(tasks, deployment, servers, &server).await {
            Ok(link) => link,
            Err(e) => return http_error(StatusCode::BAD_GATEWAY, &e.to_string()),
        };
        let id = message.get("id").cloned();
        match (id, message.get("method").and_then(Value::as_str).map(String::from)) {
            (Some(id), Some(method)) if method == "initialize" => {
                let answer = match link.initialize(HANDSHAKE_DEADLINE).await {
                    Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": e.to_string()}}),
                };
                let _ = events.send(answer).await;
                accepted()
            }
            (Some(id), Some(_)) => {
                self.forward_request(tasks, link, &session, id, message, Reply::Channel(events)).await
            }
            (None, Some(method)) => self.forward_notification(&link, &session, &method, message).await,
            (Some(_), None) => self.answer_server(&link, deployment, message).await,
            _ => accepted(),
        }
    }
}

/// Unregisters a stream when the client drops it, ending its session too for
/// an HTTP+SSE client (whose session is the stream).
struct Closer {
    session: String,
    ends_session: bool,
    sessions: Arc<Mutex<Sessions>>,
    streams: Arc<Mutex<HashMap<String, mpsc::Sender<Value>>>>,
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.streams.lock().expect("event streams poisoned").remove(&self.session);
        if self.ends_session {
            self.sessions.lock().expect("sessions poisoned").close(&self.session);
        }
    }
}
