//! Outgoing `wasi:http` from a server component, under the deployment's
//! egress allowlist with the egress proxy's rules (`egress::Allowlist`): a
//! name must be listed and resolve only to addresses it may reach, an IP
//! literal must be listed itself. Without a gate (egress off) nothing goes
//! out. Each refusal reaches the guest as `HTTP-request-denied` and is told
//! to `refused` (the host records it as an `egress.refused` event).

use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

use crate::egress::send::{send_to, SendResult};
use crate::egress::Allowlist;

/// A refused destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub host: String,
    pub port: u16,
    pub reason: String,
}

/// Where a deployment's component may connect (nowhere when egress is
/// off), and who hears of a refusal.
pub struct EgressGate {
    allowlist: Option<Allowlist>,
    refused: Box<dyn Fn(Refused) + Send + Sync>,
}

impl std::fmt::Debug for EgressGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressGate").field("allowlist", &self.allowlist).finish_non_exhaustive()
    }
}

impl EgressGate {
    pub fn new(allowlist: Option<Allowlist>, refused: impl Fn(Refused) + Send + Sync + 'static) -> EgressGate {
        EgressGate { allowlist, refused: Box::new(refused) }
    }

    /// The addresses to connect to, or why not.
    async fn check(&self, host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, String> {
        let Some(allowlist) = &self.allowlist else {
            return Err("the deployment's profile allows no egress".into());
        };
        allowlist.allows(host, port).map_err(|r| r.reason())?;
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(vec![std::net::SocketAddr::new(ip, port)]);
        }
        let addresses: Vec<_> =
            tokio::net::lookup_host((host, port)).await.map_err(|e| format!("{host}: {e}"))?.collect();
        for address in &addresses {
            allowlist.reachable(address.ip()).map_err(|r| r.reason())?;
        }
        Ok(addresses)
    }
}

/// The `wasi:http` hooks of one run: through the gate, or nowhere.
pub(super) struct GateHooks(pub Option<Arc<EgressGate>>);

impl WasiHttpHooks for GateHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let gate = self.0.clone();
        Box::new(async move {
            drop(fut);
            let uri = request.uri();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_ascii_lowercase();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let checked = match &gate {
                Some(gate) => gate.check(&host, port).await,
                None => Err("no egress was granted".to_string()),
            };
            match checked {
                Ok(addresses) => send_to(request, &addresses, &host, https, options).await,
                Err(reason) => {
                    if let Some(gate) = &gate {
                        (gate.refused)(Refused { host, port, reason });
                    }
                    Err(Error::HttpRequestDenied)
                }
            }
        })
    }
}
