//! A small blocking HTTP client over `wasi:http`. The body is written and the
//! request finished *before* `handle` is called: finishing afterwards races
//! the send (see the host notes).

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use wasip2::io::streams::StreamError;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer. `Denied` is the host's allowlist speaking.
#[derive(Debug)]
pub enum Failure {
    Denied,
    Timeout,
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Denied => write!(f, "the host does not allow this destination"),
            Failure::Timeout => write!(f, "no answer in time"),
            Failure::Transport(e) => write!(f, "{e}"),
        }
    }
}

fn failure(e: ErrorCode) -> Failure {
    match e {
        ErrorCode::HttpRequestDenied => Failure::Denied,
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => Failure::Timeout,
        other => Failure::Transport(format!("{other:?}")),
    }
}

/// Sends one request; `timeout_ms` bounds connecting and the first byte.
pub fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout_ms: u64,
) -> Result<Response, Failure> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Failure::Transport(format!("not a URL: {url}")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fields = Fields::new();
    for (name, value) in headers {
        fields.append(name, value.as_bytes()).map_err(|e| Failure::Transport(format!("header {name}: {e:?}")))?;
    }
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PATCH" => Method::Patch,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => Method::Other(other.into()),
    };
    let scheme = if scheme == "https" { Scheme::Https } else { Scheme::Http };
    let invalid = |what: &str| Failure::Transport(format!("invalid {what}"));
    request.set_method(&method).map_err(|_| invalid("method"))?;
    request.set_scheme(Some(&scheme)).map_err(|_| invalid("scheme"))?;
    request.set_authority(Some(authority)).map_err(|_| invalid("authority"))?;
    request.set_path_with_query(Some(path)).map_err(|_| invalid("path"))?;

    let outgoing = request.body().map_err(|_| invalid("body"))?;
    if let Some(bytes) = body {
        let stream = outgoing.write().map_err(|_| invalid("body stream"))?;
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| Failure::Transport(format!("writing the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(failure)?;

    let options = RequestOptions::new();
    let timeout = timeout_ms * 1_000_000;
    let _ = options.set_connect_timeout(Some(timeout));
    let _ = options.set_first_byte_timeout(Some(timeout));
    let _ = options.set_between_bytes_timeout(Some(timeout));
    let pending = outgoing_handler::handle(request, Some(options)).map_err(failure)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or_else(|| Failure::Transport("no response".into()))?
        .map_err(|_| Failure::Transport("response already taken".into()))?
        .map_err(failure)?;

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|_| invalid("response body"))?;
    let stream = incoming.stream().map_err(|_| invalid("response stream"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(Failure::Transport(e.to_debug_string())),
        }
    }
    Ok(Response { status, headers, body })
}
