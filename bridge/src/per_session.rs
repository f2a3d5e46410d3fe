//! Per-session mode: a deployment whose server keeps per-client state gets a
//! server of its own for each MCP session. The bridge asks a `Launcher` (the
//! host's deployments, which know the backends) for one when a client
//! initializes, talks to it over a link of its own, and hands its instance
//! back to be removed when the session ends (see `sessions`).

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::answers::{json_response, rpc_error};
use crate::link::{Link, LinkError, Target};
use crate::sessions::{OwnServer, SessionServer};
use crate::Spawner;
use crate::{Bridge, HANDSHAKE_DEADLINE, SESSION_HEADER};

/// Starts servers for sessions of a deployment in per-session mode.
pub trait Launcher: Send + Sync {
    /// A new server of the deployment's, running and ready to be linked to.
    fn launch<'a>(&'a self, deployment: &'a str) -> BoxFuture<'a, Result<OwnServer, String>>;
}

/// Which server a deployment's sessions talk to.
#[derive(Clone, Copy)]
pub enum Servers<'a> {
    /// The one server every session shares.
    Shared(&'a Target),
    /// A server started for each session by the launcher.
    PerSession(&'a dyn Launcher),
}

impl Bridge {
    /// A new session with the server it will talk to (started for it in
    /// per-session mode) and the live link to that server.
    pub(super) async fn open_session(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        servers: Servers<'_>,
    ) -> Result<(String, Arc<Link>), LinkError> {
        let server = match servers {
            Servers::Shared(_) => SessionServer::Shared,
            Servers::PerSession(launcher) => match launcher.launch(deployment).await {
                Ok(own) => SessionServer::Own(own),
                Err(e) => return Err(LinkError::Attach(format!("cannot start a server for this session: {e}"))),
            },
        };
        let session = self.sessions.lock().expect("sessions poisoned").open(deployment, server.clone());
        match self.link_of(tasks, deployment, servers, &server).await {
            Ok(link) => Ok((session, link)),
            Err(e) => {
                // Its own server, if any, goes with it.
                self.sessions.lock().expect("sessions poisoned").close(&session);
                Err(e)
            }
        }
    }

    /// A client's `initialize`: a new session, answered from the server's
    /// own `initialize` result (one handshake per server process).
    pub(super) async fn initialize(
        &self,
        tasks: &dyn Spawner,
        deployment: &str,
        servers: Servers<'_>,
        id: Value,
    ) -> Response<Body> {
        let (session, link) = match self.open_session(tasks, deployment, servers).await {
            Ok(opened) => opened,
            Err(e) => return rpc_error(StatusCode::BAD_GATEWAY, id, -32603, &e.to_string()),
        };
        let result = match link.initialize(HANDSHAKE_DEADLINE).await {
            Ok(result) => result,
            Err(e) => {
                self.sessions.lock().expect("sessions poisoned").close(&session);
                return rpc_error(StatusCode::BAD_GATEWAY, id, -32603, &e.to_string());
            }
        };
        let mut answer = json_response(StatusCode::OK, &json!({"jsonrpc": "2.0", "id": id, "result": result}));
        answer.headers_mut().insert(SESSION_HEADER, HeaderValue::from_str(&session).expect("hex is a header value"));
        answer
    }

    /// The server of a session ended on its own (it crashed, or was removed
    /// behind the host's back): the session ends with it, and the client
    /// that initializes again gets a new one.
    pub fn server_ended(&self, instance: &str) {
        self.links.forget(instance);
        if let Some(session) = self.sessions.lock().expect("sessions poisoned").close_with_server(instance) {
            tracing::info!(instance, session, "the session's own server ended; so did the session");
        }
    }
}

/// A stateless (2026-07-28) request has no session to start a server for.
pub(super) fn refuse_stateless(id: Option<Value>) -> Response<Body> {
    let reason = "this server keeps per-client state, so each client gets a server of its own for a session: \
                  initialize a session (protocol 2025-11-25) first";
    rpc_error(StatusCode::BAD_REQUEST, id.unwrap_or(Value::Null), -32600, reason)
}
