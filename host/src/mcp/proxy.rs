//! The MCP data path: `/servers/{id}/mcp` forwarded to a deployment's endpoint.
//!
//! This is the product's hot path, so per request the host does no more than
//! the caller's authorization (done by the API) and one lookup in `Routes`, an
//! in-memory table kept current by the deployments' state changes: no store
//! read, no plugin call. Answers stream back unbuffered over the client
//! connection's own connections to servers (`upstream`), and every socket
//! sets TCP_NODELAY: a server-sent event answer goes out in several small
//! writes, which Nagle's algorithm would otherwise hold back for a delayed
//! ACK (a ~40 ms floor per call).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, Request, Response, Uri};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::link::Target;

/// Headers an MCP streamable-HTTP exchange needs, in either direction (and
/// the stateless generation's `Mcp-Param-*`, forwarded by prefix).
const MCP_HEADERS: [HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ACCEPT,
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("mcp-protocol-version"),
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static("mcp-method"),
    HeaderName::from_static("mcp-name"),
];
const MCP_PARAM_PREFIX: &str = "mcp-param-";

/// How a serving deployment's MCP traffic reaches its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Forwarded as is to the server's streamable-HTTP endpoint.
    Proxy(Uri),
    /// Bridged over one link every session shares (stdio, SSE).
    Link(Target),
    /// Bridged to a server started for each session.
    PerSession,
    /// A server component the host serves in-process (`component://<deployment>`).
    Component(String),
}

impl Via {
    /// How an endpoint a backend reported is reached; `None` for one that is not a URI.
    pub fn endpoint(endpoint: &str) -> Option<Via> {
        if let Some(deployment) = endpoint.strip_prefix(crate::components::COMPONENT_SCHEME) {
            return Some(Via::Component(deployment.into()));
        }
        match Target::of(endpoint) {
            Some(target) => Some(Via::Link(target)),
            None => endpoint.parse().ok().map(Via::Proxy),
        }
    }
}

/// Where a serving deployment answers, and who may talk to it.
#[derive(Debug)]
pub struct Route {
    pub via: Via,
    /// Who requested the deployment: its developer may use it.
    pub owner: Option<String>,
}

/// Serving deployments by id, in memory.
#[derive(Default)]
pub struct Routes(RwLock<HashMap<String, Arc<Route>>>);

impl Routes {
    pub fn lookup(&self, id: &str) -> Option<Arc<Route>> {
        self.0.read().expect("route table poisoned").get(id).cloned()
    }

    /// Records a deployment's latest state: a route while it serves, none otherwise.
    pub fn observe(&self, id: &str, serving: Option<Via>, owner: Option<&str>) {
        let mut table = self.0.write().expect("route table poisoned");
        match serving {
            Some(via) => {
                let unchanged = table.get(id).is_some_and(|r| r.via == via && r.owner.as_deref() == owner);
                if !unchanged {
                    table.insert(id.to_string(), Arc::new(Route { via, owner: owner.map(String::from) }));
                }
            }
            None => {
                table.remove(id);
            }
        }
    }

    pub fn forget(&self, id: &str) {
        self.0.write().expect("route table poisoned").remove(id);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("server unreachable: {0}")]
    Unreachable(String),
    #[error("cannot forward: {0}")]
    Request(String),
}

/// What is forwarded of a client's request to the server: its method and
/// MCP headers, and its body (the URI is the server's endpoint).
pub fn upstream_request(request: Request<Body>) -> Request<Body> {
    let (parts, body) = request.into_parts();
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method;
    copy_mcp_headers(&parts.headers, upstream.headers_mut());
    upstream
}

/// What the client gets of the server's answer: its status, MCP headers and body.
pub fn client_response(answer: Response<Body>) -> Response<Body> {
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    copy_mcp_headers(&parts.headers, response.headers_mut());
    response
}

fn copy_mcp_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if MCP_HEADERS.contains(name) || name.as_str().starts_with(MCP_PARAM_PREFIX) {
            to.append(name, value.clone());
        }
    }
}

/// hyper's errors say little at the top ("connection error"); the cause is below.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_latest_state() {
        let routes = Routes::default();
        routes.observe("a", Via::endpoint("http://10.0.0.2:8080/mcp"), Some("dev@x"));
        let route = routes.lookup("a").expect("serving deployments have a route");
        assert_eq!(route.via, Via::Proxy("http://10.0.0.2:8080/mcp".parse().unwrap()));
        assert_eq!(route.owner.as_deref(), Some("dev@x"));
        routes.observe("a", None, Some("dev@x"));
        assert!(routes.lookup("a").is_none(), "a deployment that stopped serving has no route");
        assert_eq!(Via::endpoint("not a uri at all"), None);
        assert_eq!(Via::endpoint("stdio://abc"), Some(Via::Link(Target::Stdio("abc".into()))));
        routes.observe("c", Some(Via::PerSession), None);
        assert_eq!(routes.lookup("c").map(|r| r.via.clone()), Some(Via::PerSession));
        routes.forget("c");
        assert!(routes.lookup("c").is_none());
    }
}
