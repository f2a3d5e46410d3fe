//! Grant `outgoing-http`: `wasi:http` for plugins that must call remote APIs,
//! limited to the hosts their manifest allows (`allowed_hosts`).
//!
//! A request passes when its host and port match an allowed pattern and, for a
//! name, when every address it resolves to is public: an allowed name that
//! resolves to loopback, a private range or a link-local (metadata) address
//! is refused, since that is how an allowlist is usually escaped. To reach a
//! private address deliberately, allow the address itself (`127.0.0.1:8443`).
//! Anything refused reaches the guest as `error-code.HTTP-request-denied`.
//! The connection is made to an address that was checked, never to the name
//! resolved again, so DNS has no window to rebind it into the host.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks};

use crate::egress::send::{send_to, SendResult};

/// One allowed destination: `api.example.com`, `*.example.com`, `10.0.0.5`,
/// each optionally with `:port`; without a port, only the scheme's default.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let text = text.trim().to_ascii_lowercase();
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => {
                (host.to_string(), Some(port.parse::<u16>().map_err(|_| format!("'{text}': bad port"))?))
            }
            _ => (text.clone(), None),
        };
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest.to_string(), true),
            None => (host, false),
        };
        let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
        if !valid {
            return Err(format!(
                "'{text}' is not a host pattern such as api.example.com, *.example.com or 10.0.0.5:8443"
            ));
        }
        Ok(HostPattern { host, wildcard, port })
    }

    fn matches(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host_ok = match self.wildcard {
            true => host.strip_suffix(&self.host).is_some_and(|prefix| prefix.ends_with('.')),
            false => host == self.host,
        };
        host_ok && self.port.unwrap_or(default_port) == port
    }
}

/// Addresses a name must never lead to: the egress proxy's rule, shared.
fn is_internal(ip: IpAddr) -> bool {
    !crate::egress::is_public(ip)
}

/// The checks, separate from the transport so they can be tested alone: the
/// addresses that passed, which are the ones to connect to (resolving again
/// would leave DNS a window to rebind the name into the host).
pub async fn permitted(
    allowed: &[HostPattern],
    host: &str,
    port: u16,
    default_port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    if !allowed.iter().any(|p| p.matches(&host, port, default_port)) {
        return Err(format!("{host}:{port} is not in allowed_hosts"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]); // an address allowed by itself is a deliberate choice
    }
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| format!("{host}: {e}"))?.collect();
    for address in &addresses {
        if is_internal(address.ip()) {
            return Err(format!("{host} resolves to the internal address {}", address.ip()));
        }
    }
    Ok(addresses)
}

/// Per-store `wasi:http` state of one plugin.
pub struct OutgoingHttp {
    ctx: WasiHttpCtx,
    hooks: AllowlistHooks,
}

impl OutgoingHttp {
    pub fn new(plugin: &str, allowed: Arc<[HostPattern]>) -> OutgoingHttp {
        OutgoingHttp { ctx: WasiHttpCtx::new(), hooks: AllowlistHooks { plugin: plugin.into(), allowed } }
    }
}

struct AllowlistHooks {
    plugin: String,
    allowed: Arc<[HostPattern]>,
}

impl WasiHttpHooks for AllowlistHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let allowed = self.allowed.clone();
        let plugin = self.plugin.clone();
        Box::new(async move {
            drop(fut);
            let uri = request.uri();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let default_port = if https { 443 } else { 80 };
            let host = uri.host().unwrap_or_default().to_string();
            let port = uri.port_u16().unwrap_or(default_port);
            let addresses = match permitted(&allowed, &host, port, default_port).await {
                Ok(addresses) => addresses,
                Err(reason) => {
                    tracing::warn!(target: "plugin", plugin, "outgoing request refused: {reason}");
                    return Err(Error::HttpRequestDenied);
                }
            };
            send_to(request, &addresses, &host, https, options).await
        })
    }
}

impl OutgoingHttp {
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView { ctx: &mut self.ctx, table, hooks: &mut self.hooks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<HostPattern> {
        list.iter().map(|p| HostPattern::parse(p).unwrap()).collect()
    }

    #[tokio::test]
    async fn names_ports_and_resolved_addresses_are_checked() {
        let allowed =
            patterns(&["iam.cloud.ibm.com", "*.codeengine.cloud.ibm.com", "127.0.0.1:8099", "localhost:8099"]);
        assert!(permitted(&allowed, "127.0.0.1", 8099, 80).await.is_ok(), "an allowed address");
        assert!(permitted(&allowed, "127.0.0.1", 8100, 80).await.is_err(), "another port");
        assert!(permitted(&allowed, "10.0.0.1", 443, 443).await.is_err(), "not listed");
        assert!(
            permitted(&allowed, "evil-codeengine.cloud.ibm.com", 443, 443).await.is_err(),
            "wildcards match whole labels"
        );
        let err = permitted(&allowed, "localhost", 8099, 80).await.unwrap_err();
        assert!(err.contains("internal address"), "an allowed name resolving to loopback: {err}");
        assert!(HostPattern::parse("bad host").is_err());
        assert!(HostPattern::parse("x.com:http").is_err());
    }

    #[test]
    fn internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.17.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        assert!(!is_internal("8.8.8.8".parse().unwrap()));
    }
}
