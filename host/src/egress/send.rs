//! Sending an outgoing `wasi:http` request of a plugin or a server
//! component, once its destination was checked: over a connection to one of
//! the checked addresses (never the name resolved again, so DNS has no
//! window to rebind it), TLS verified against the name, TCP_NODELAY set.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions};

pub type SendResult =
    Result<(http::Response<wasmtime_wasi_http::WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>;

/// Sends the request over a connection to one of the checked `addresses`
/// (TLS verified against `host`), the way `default_send_request` would have
/// after resolving the name itself.
pub async fn send_to(
    mut request: http::Request<wasmtime_wasi_http::WasiBody>,
    addresses: &[SocketAddr],
    host: &str,
    https: bool,
    options: Option<RequestOptions>,
) -> SendResult {
    use http_body_util::BodyExt;
    let limit = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(Duration::from_secs(600))
    };
    let (connect_timeout, first_byte_timeout) = (limit(|o| o.connect_timeout), limit(|o| o.first_byte_timeout));
    let mut tcp = Err(Error::DestinationNotFound);
    for address in addresses {
        tcp = match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(Error::Connect(e)),
            Err(_) => Err(Error::ConnectionTimeout),
        };
        if tcp.is_ok() {
            break;
        }
    }
    let tcp = tcp?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if https {
        let name =
            rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?;
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        Box::new(connector.connect(name, tcp).await.map_err(Error::Tls)?)
    } else {
        Box::new(tcp)
    };
    let handshake = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream));
    let (mut sender, connection) = tokio::time::timeout(connect_timeout, handshake)
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Hyper)?;
    let driven = tokio::spawn(connection);
    // The authority was for choosing the connection; the request line carries the path only.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = http::Uri::builder().path_and_query(path).build().map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(Error::Hyper)?;
    let io = async move {
        match driven.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Hyper(e)),
            Err(_) => Err(Error::ConnectionTerminated),
        }
    };
    let response = response.map(|body| body.map_err(Error::Hyper).boxed_unsync());
    Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
}

/// The web PKI's roots, built once: the same trust `default_send_request` has.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            // Named, not the process default: which providers a build links
            // depends on every crate in it (a test's WebDriver client adds one).
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions");
            Arc::new(config.with_root_certificates(roots).with_no_client_auth())
        })
        .clone()
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tls_config_builds_whatever_crypto_providers_are_linked() {
        assert!(!super::tls_config().alpn_protocols.iter().any(|p| p == b"h2"), "HTTP/1.1, as the sender speaks");
    }
}
