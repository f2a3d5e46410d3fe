//! The proxy's connections to deployed servers: each client connection to the
//! host has its own, opened on its first request to a server, reused for the
//! next, and closed with it.
//!
//! They are driven by the client connection's task itself: the request is
//! written, the answer's head read and its body relayed frame by frame as the
//! host writes it to the client, all in one task. A shared pool would hand
//! every call to a connection task and back (a wake-up, often on another
//! thread, per message each way): measured, that cost more than everything
//! else the proxy does. This is the shape of a plain TCP relay, with HTTP
//! parsed in between so the host can authorize and label each call.

use axum::body::Body;
use axum::http::uri::Authority;
use axum::http::{header, HeaderValue, Request, Response, Uri};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::{poll_fn, ready, Future, Ready};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tower::Service;

use super::proxy::{error_chain, ProxyError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle upstream connections a client connection keeps (one per server it
/// talks to, or a few to one server for an HTTP/2 client's parallel calls).
const KEPT_PER_CLIENT: usize = 4;

/// A client connection's idle upstream connections. Made for each accepted
/// connection (`PerClientConnection`) and found in each of its requests'
/// extensions; dropped with the connection, and its upstream connections with it.
#[derive(Clone, Default)]
pub struct ClientConnection(Arc<Mutex<Vec<Held>>>);

/// Serves `router` with a `ClientConnection` for each accepted connection:
/// `axum::serve(listener, PerClientConnection(router))`.
#[derive(Clone)]
pub struct PerClientConnection(pub Router);

impl<L: Listener> Service<IncomingStream<'_, L>> for PerClientConnection {
    type Response = WithClientConnection;
    type Error = Infallible;
    type Future = Ready<Result<WithClientConnection, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: IncomingStream<'_, L>) -> Self::Future {
        ready(Ok(WithClientConnection { router: self.0.clone(), connection: ClientConnection::default() }))
    }
}

/// One client connection's service: the router, its requests carrying the connection's `ClientConnection`.
#[derive(Clone)]
pub struct WithClientConnection {
    router: Router,
    connection: ClientConnection,
}

impl Service<axum::extract::Request> for WithClientConnection {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <Router as Service<axum::extract::Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<axum::extract::Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: axum::extract::Request) -> Self::Future {
        request.extensions_mut().insert(self.connection.clone());
        self.router.call(request)
    }
}

/// One HTTP/1.1 connection to a server, and the protocol state driving it.
struct Held {
    authority: Authority,
    sender: SendRequest<Body>,
    connection: Driver,
}

/// The connection's side of hyper's HTTP/1.1 client: polled for any I/O to
/// happen; `None` once it has ended (a finished future is not polled again).
type Driver = Option<Pin<Box<Connection<TokioIo<TcpStream>, Body>>>>;

/// Why a request did not get an answer; `unsent` hands back one never written.
struct Failed {
    error: ProxyError,
    unsent: Option<Request<Body>>,
}

impl Held {
    async fn open(authority: &Authority) -> Result<Held, ProxyError> {
        let unreachable = |e: &dyn std::fmt::Display| ProxyError::Unreachable(format!("{authority}: {e}"));
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority.as_str()))
            .await
            .map_err(|_| unreachable(&format!("no connection within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(&e))?;
        // A streamed answer comes in small writes: Nagle would hold them for a delayed ACK.
        tcp.set_nodelay(true).map_err(|e| unreachable(&e))?;
        let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await.map_err(|e| unreachable(&e))?;
        Ok(Held { authority: authority.clone(), sender, connection: Some(Box::pin(connection)) })
    }

    /// Sends `request` once the connection can take it: the answer's head.
    async fn send(&mut self, request: Request<Body>) -> Result<Response<Incoming>, Failed> {
        let Held { authority, sender, connection } = self;
        let failed = |e: hyper::Error, unsent| Failed {
            error: ProxyError::Unreachable(format!("{authority}: {}", error_chain(&e))),
            unsent,
        };
        if let Err(e) = poll_fn(|cx| {
            drive(connection, authority, cx);
            sender.poll_ready(cx)
        })
        .await
        {
            return Err(failed(e, Some(request)));
        }
        let mut answer = std::pin::pin!(sender.try_send_request(request));
        poll_fn(|cx| {
            drive(connection, authority, cx);
            answer.as_mut().poll(cx)
        })
        .await
        .map_err(|mut e| {
            let unsent = e.take_message();
            failed(e.into_error(), unsent)
        })
    }
}

/// Lets the connection read and write what it can; the task is woken when it can do more.
fn drive(connection: &mut Driver, authority: &Authority, cx: &mut Context<'_>) {
    if let Some(running) = connection {
        if let Poll::Ready(outcome) = running.as_mut().poll(cx) {
            if let Err(e) = outcome {
                tracing::debug!(server = %authority, "upstream connection failed: {}", error_chain(&e));
            }
            // Dropping it tells whoever waits on the sender or a body that it has ended.
            *connection = None;
        }
    }
}

impl ClientConnection {
    /// Sends `request` to the server at `endpoint` over this client's
    /// connection to it (opened if it has none) and relays the answer.
    pub async fn forward(&self, endpoint: &Uri, mut request: Request<Body>) -> Result<Response<Body>, ProxyError> {
        let authority = endpoint.authority().ok_or_else(|| ProxyError::Request(format!("{endpoint} names no host")))?;
        if endpoint.scheme_str() != Some("http") {
            return Err(ProxyError::Request(format!("{endpoint}: only http:// endpoints are proxied")));
        }
        *request.uri_mut() = endpoint.path_and_query().map_or("/", |p| p.as_str()).parse().expect("a path is a URI");
        let host = HeaderValue::from_str(authority.as_str()).expect("an authority is a header value");
        request.headers_mut().insert(header::HOST, host);
        let (mut held, mut reused) = match self.take(authority) {
            Some(held) => (held, true),
            None => (Held::open(authority).await?, false),
        };
        let answer = loop {
            match held.send(request).await {
                Ok(answer) => break answer,
                // The server closed a connection that sat idle: the request was never sent, so send it afresh.
                Err(Failed { unsent: Some(unsent), .. }) if reused => {
                    (held, reused, request) = (Held::open(authority).await?, false, unsent);
                }
                Err(Failed { error, .. }) => return Err(error),
            }
        };
        let (parts, body) = answer.into_parts();
        let relayed = Relayed { body, held: Some(held), home: self.clone(), ended: false };
        if relayed.body.is_end_stream() {
            // Nothing to relay: dropping it frees the connection for the next request.
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        Ok(Response::from_parts(parts, Body::new(relayed)))
    }

    fn take(&self, authority: &Authority) -> Option<Held> {
        let mut idle = self.0.lock().expect("upstream connections poisoned");
        let found = idle.iter().rposition(|held| held.authority == *authority)?;
        Some(idle.swap_remove(found))
    }

    fn put_back(&self, held: Held) {
        let mut idle = self.0.lock().expect("upstream connections poisoned");
        if held.connection.is_some() && idle.len() < KEPT_PER_CLIENT {
            idle.push(held);
        }
    }
}

/// An answer's body on its way to the client, driving the connection it
/// comes over; the connection goes back to its client connection once the
/// body has been read to its end (one abandoned half way is closed).
struct Relayed {
    body: Incoming,
    held: Option<Held>,
    home: ClientConnection,
    /// Read to its end (a chunked body does not say so by `is_end_stream`).
    ended: bool,
}

impl hyper::body::Body for Relayed {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Some(held) = &mut this.held {
            drive(&mut held.connection, &held.authority, cx);
        }
        let frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        this.ended = frame.is_none();
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        // The host stops polling a body once it says it has ended (or the client went away).
        let ended = self.ended || self.body.is_end_stream();
        if let Some(held) = self.held.take().filter(|_| ended) {
            self.home.put_back(held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering `answer` to every request on a connection, closing
    /// it after `per_connection` answers; the number of connections it took.
    async fn server(answer: &'static str, per_connection: usize) -> (Uri, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/mcp", listener.local_addr().unwrap()).parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    for _ in 0..per_connection {
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut buffer = [0u8; 4096];
                            match tcp.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buffer[..n]),
                            }
                        }
                        request.clear();
                        tcp.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (endpoint, accepted)
    }

    async fn call(connection: &ClientConnection, endpoint: &Uri) -> Result<(u16, String), ProxyError> {
        let answer = connection.forward(endpoint, Request::new(Body::from("{}"))).await?;
        let status = answer.status().as_u16();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
        Ok((status, String::from_utf8(body.to_vec()).unwrap()))
    }

    const CHUNKED: &str = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const ACCEPTED: &str = "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";

    #[tokio::test]
    async fn a_client_connection_reuses_its_upstream_connection() {
        let (endpoint, accepted) = server(CHUNKED, usize::MAX).await;
        let connection = ClientConnection::default();
        for _ in 0..3 {
            assert_eq!(call(&connection, &endpoint).await.unwrap(), (200, "hello".into()));
        }
        // An empty answer frees the connection just the same.
        let (empty, empty_accepted) = server(ACCEPTED, usize::MAX).await;
        for _ in 0..3 {
            assert_eq!(call(&connection, &empty).await.unwrap(), (202, String::new()));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one upstream connection for the client's calls");
        assert_eq!(empty_accepted.load(Ordering::SeqCst), 1);
        // Another client connection has its own.
        call(&ClientConnection::default(), &endpoint).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced() {
        let (endpoint, accepted) = server(CHUNKED, 1).await;
        let connection = ClientConnection::default();
        for _ in 0..3 {
            assert_eq!(call(&connection, &endpoint).await.unwrap(), (200, "hello".into()));
            tokio::time::sleep(Duration::from_millis(50)).await; // the server's close arrives
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_naming_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let endpoint: Uri = format!("http://127.0.0.1:{port}/mcp").parse().unwrap();
        let error = call(&ClientConnection::default(), &endpoint).await.unwrap_err();
        assert!(
            matches!(&error, ProxyError::Unreachable(why) if why.contains(&format!("127.0.0.1:{port}"))),
            "{error}"
        );
        let https: Uri = "https://example.invalid/mcp".parse().unwrap();
        assert!(matches!(call(&ClientConnection::default(), &https).await, Err(ProxyError::Request(_))));
    }
}
