//! Egress filtered by host name. A deployment network whose way out is
//! filtered is internal (no route out) and gets two host tasks bound to its
//! gateway address: an HTTP proxy (CONNECT and plain HTTP, `proxy.rs`) that
//! lets through only what the allowlist names (`allowlist.rs`), and a DNS
//! responder that knows only those names (`dns.rs`). They live and die with
//! the network; every attempt is reported (refusals become events).

mod allowlist;
mod dns;
mod proxy;

pub use allowlist::{is_public, Allowlist, Refusal};
pub use proxy::Attempt;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::net::{TcpListener, UdpSocket};

/// The proxy's port on every deployment network's gateway.
pub const PROXY_PORT: u16 = 3128;
pub const DNS_PORT: u16 = 53;

type Report = Arc<dyn Fn(Attempt) + Send + Sync>;

/// The proxies running, by network.
pub struct EgressProxies {
    running: Mutex<HashMap<String, Running>>,
    /// Names pinned to addresses by the operator (`runtime.egress.resolve`).
    pinned: Arc<HashMap<String, IpAddr>>,
    report: OnceLock<Report>,
}

/// A network's proxy and resolver; dropping it stops both.
struct Running {
    tasks: Vec<tokio::task::AbortHandle>,
    entries: Vec<String>,
    proxy_at: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Default for EgressProxies {
    fn default() -> Self {
        EgressProxies::new(HashMap::new())
    }
}

impl EgressProxies {
    pub fn new(pinned: HashMap<String, IpAddr>) -> EgressProxies {
        let pinned = pinned.into_iter().map(|(name, ip)| (name.to_ascii_lowercase(), ip)).collect();
        EgressProxies { running: Default::default(), pinned: Arc::new(pinned), report: OnceLock::new() }
    }

    /// Where attempts are reported from now on (set once, at start).
    pub fn report_to(&self, report: Report) {
        let _ = self.report.set(report);
    }

    /// Starts (or restarts, with a new list) the proxy and resolver of
    /// `network` on its gateway address; the proxy's address.
    pub async fn open(
        &self,
        network: &str,
        deployment_id: &str,
        gateway: Ipv4Addr,
        entries: &[String],
    ) -> std::io::Result<SocketAddr> {
        let allow = Allowlist::parse(entries).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.close(network);
        let proxy_at = SocketAddr::new(IpAddr::V4(gateway), PROXY_PORT);
        let listener = TcpListener::bind(proxy_at).await?;
        let resolver = UdpSocket::bind(SocketAddr::new(IpAddr::V4(gateway), DNS_PORT)).await?;
        let allow = Arc::new(allow);
        let report = self.report.get().cloned().unwrap_or_else(|| Arc::new(|_| {}));
        let ctx = Arc::new(proxy::ProxyContext {
            deployment_id: deployment_id.to_string(),
            allow: allow.clone(),
            pinned: self.pinned.clone(),
            report,
        });
        let tasks = vec![
            tokio::spawn(proxy::serve(listener, ctx)).abort_handle(),
            tokio::spawn(dns::serve(resolver, allow, gateway)).abort_handle(),
        ];
        let running = Running { tasks, entries: entries.to_vec(), proxy_at };
        self.running.lock().expect("egress proxies poisoned").insert(network.to_string(), running);
        tracing::info!(%network, deployment = %deployment_id, %proxy_at, "egress proxy open");
        Ok(proxy_at)
    }

    /// Stops the network's proxy and resolver, if it has them.
    pub fn close(&self, network: &str) -> bool {
        self.running.lock().expect("egress proxies poisoned").remove(network).is_some()
    }

    /// The proxy's address, when `network`'s proxy runs with exactly `entries`.
    pub fn open_with(&self, network: &str, entries: &[String]) -> Option<SocketAddr> {
        let running = self.running.lock().expect("egress proxies poisoned");
        running.get(network).filter(|r| r.entries == entries).map(|r| r.proxy_at)
    }

    /// The proxy containers on `network` are to use, if it has one.
    pub fn proxy_of(&self, network: &str) -> Option<SocketAddr> {
        self.running.lock().expect("egress proxies poisoned").get(network).map(|r| r.proxy_at)
    }
}
