//! Egress filtered by host name. A deployment network whose way out is
//! filtered is internal (no route out) and gets two host tasks bound to its
//! gateway address: an HTTP proxy (CONNECT and plain HTTP, `proxy.rs`) that
//! lets through only what the allowlist names (`allowlist.rs`), and a DNS
//! responder that knows only those names (`dns.rs`). They live and die with
//! the network; every attempt is reported (refusals become events).

mod allowlist;
mod dns;
mod proxy;
pub mod send;

pub use allowlist::{is_public, parse_network, Allowlist, Refusal, LEARN_MODE};
pub use proxy::Attempt;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::net::{TcpListener, UdpSocket};

use crate::tasks::Supervisor;

/// The proxy's port on every deployment network's gateway.
pub const PROXY_PORT: u16 = 3128;
pub const DNS_PORT: u16 = 53;

type Report = Arc<dyn Fn(Attempt) + Send + Sync>;

/// Distinct destinations kept per deployment: a client trying random names
/// cannot grow the host's memory without bound.
const MAX_OBSERVED: usize = 1000;

/// A destination a deployment asked for, and what came of it so far.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = EgressObserved)]
pub struct Observed {
    pub host: String,
    pub port: u16,
    pub connections: u64,
    pub refused: u64,
    /// Why it was last refused, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<String>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

type ObservedBook = Arc<Mutex<HashMap<String, std::collections::BTreeMap<(String, u16), Observed>>>>;

/// The allowlist that would let through what `observed` reached: a name (or
/// address) with its port unless it is 443 or 80.
pub fn propose(observed: &[Observed]) -> Vec<String> {
    let mut entries: Vec<String> = observed
        .iter()
        .filter(|o| o.connections > 0)
        .map(|o| {
            let host = if o.host.contains(':') { format!("[{}]", o.host) } else { o.host.clone() };
            match o.port {
                80 | 443 if !o.host.contains(':') => host,
                port => format!("{host}:{port}"),
            }
        })
        .collect();
    entries.sort();
    entries.dedup();
    entries
}

/// The proxies running, by network.
pub struct EgressProxies {
    tasks: Supervisor,
    running: Mutex<HashMap<String, Running>>,
    /// Names pinned to addresses by the operator (`runtime.egress.resolve`).
    pinned: Arc<HashMap<String, IpAddr>>,
    report: OnceLock<Report>,
    /// What each deployment asked for, for `GET /runtimes/{id}/egress`.
    observed: ObservedBook,
}

/// A network's proxy and resolver; dropping it stops both.
struct Running {
    _tasks: [tokio_util::sync::DropGuard; 2],
    entries: Vec<String>,
    learn: bool,
    resolvable: Vec<(IpAddr, u8)>,
    proxy_at: SocketAddr,
    /// Names containers on the network answer to (a stack's services): not proxied.
    local_names: Vec<String>,
}

impl Default for EgressProxies {
    fn default() -> Self {
        EgressProxies::new(HashMap::new(), Supervisor::default())
    }
}

impl EgressProxies {
    /// Proxies whose tasks run under `tasks`, the host's supervisor.
    pub fn new(pinned: HashMap<String, IpAddr>, tasks: Supervisor) -> EgressProxies {
        let pinned = pinned.into_iter().map(|(name, ip)| (name.to_ascii_lowercase(), ip)).collect();
        EgressProxies {
            tasks,
            running: Default::default(),
            pinned: Arc::new(pinned),
            report: OnceLock::new(),
            observed: Default::default(),
        }
    }

    /// Where attempts are reported from now on (set once, at start).
    pub fn report_to(&self, report: Report) {
        let _ = self.report.set(report);
    }

    /// Starts (or restarts, with a new list) the proxy and resolver of
    /// `network` on its gateway address, letting through `entries` (their
    /// names resolving into `resolvable` too), and in learn mode every
    /// public destination; the proxy's address.
    pub async fn open(
        &self,
        network: &str,
        deployment_id: &str,
        gateway: Ipv4Addr,
        entries: &[String],
        learn: bool,
        resolvable: &[(IpAddr, u8)],
    ) -> std::io::Result<SocketAddr> {
        let allow = Allowlist::parse(entries).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let allow = if learn { allow.learning() } else { allow }.resolving_into(resolvable);
        let reopening = self.close(network);
        let proxy_at = SocketAddr::new(IpAddr::V4(gateway), PROXY_PORT);
        let dns_at = SocketAddr::new(IpAddr::V4(gateway), DNS_PORT);
        // A proxy just closed lets go of its sockets when its cancelled tasks are dropped.
        let mut attempts = if reopening { 20 } else { 1 };
        let (listener, resolver) = loop {
            attempts -= 1;
            match (TcpListener::bind(proxy_at).await, UdpSocket::bind(dns_at).await) {
                (Ok(listener), Ok(resolver)) => break (listener, resolver),
                (Err(e), _) | (_, Err(e)) if attempts == 0 => return Err(e),
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        let allow = Arc::new(allow);
        let outside = self.report.get().cloned();
        let observed = self.observed.clone();
        let report: Report = Arc::new(move |attempt: Attempt| {
            observe(&observed, &attempt);
            if let Some(outside) = &outside {
                outside(attempt);
            }
        });
        let ctx = Arc::new(proxy::ProxyContext {
            deployment_id: deployment_id.to_string(),
            allow: allow.clone(),
            pinned: self.pinned.clone(),
            report,
        });
        let tasks = [
            self.tasks.spawn_owned("egress proxy", proxy::serve(listener, ctx)),
            self.tasks.spawn_owned("egress resolver", dns::serve(resolver, allow, gateway)),
        ];
        let running = Running {
            _tasks: tasks,
            entries: entries.to_vec(),
            learn,
            resolvable: resolvable.to_vec(),
            proxy_at,
            local_names: Vec::new(),
        };
        self.running.lock().expect("egress proxies poisoned").insert(network.to_string(), running);
        tracing::info!(%network, deployment = %deployment_id, %proxy_at, "egress proxy open");
        Ok(proxy_at)
    }

    /// Stops the network's proxy and resolver, if it has them.
    pub fn close(&self, network: &str) -> bool {
        self.running.lock().expect("egress proxies poisoned").remove(network).is_some()
    }

    /// The destinations a deployment asked for, most recent first.
    pub fn observed(&self, deployment_id: &str) -> Vec<Observed> {
        let book = self.observed.lock().expect("egress observations poisoned");
        let mut seen: Vec<Observed> =
            book.get(deployment_id).map(|d| d.values().cloned().collect()).unwrap_or_default();
        seen.sort_by_key(|o| std::cmp::Reverse(o.last_seen));
        seen
    }

    /// Forgets a deleted deployment's observations.
    pub fn forget(&self, deployment_id: &str) {
        self.observed.lock().expect("egress observations poisoned").remove(deployment_id);
    }

    /// The proxy's address, when `network`'s proxy runs with exactly these settings.
    pub fn open_with(
        &self,
        network: &str,
        entries: &[String],
        learn: bool,
        resolvable: &[(IpAddr, u8)],
    ) -> Option<SocketAddr> {
        let running = self.running.lock().expect("egress proxies poisoned");
        let same = |r: &&Running| r.entries == entries && r.learn == learn && r.resolvable == resolvable;
        running.get(network).filter(same).map(|r| r.proxy_at)
    }

    /// The proxy a new container on `network` is to use, if it has one, and
    /// the names reached without it: those of the containers created on the
    /// network before (a stack's services, which start dependencies first),
    /// to which `aliases`, the new container's own, are added.
    pub fn proxy_of(&self, network: &str, aliases: &[String]) -> Option<(SocketAddr, Vec<String>)> {
        let mut running = self.running.lock().expect("egress proxies poisoned");
        let running = running.get_mut(network)?;
        running.local_names.extend(aliases.iter().filter(|a| !a.is_empty()).cloned());
        Some((running.proxy_at, running.local_names.clone()))
    }
}

fn observe(book: &ObservedBook, attempt: &Attempt) {
    let mut book = book.lock().expect("egress observations poisoned");
    let seen = book.entry(attempt.deployment_id.clone()).or_default();
    let key = (attempt.host.to_ascii_lowercase(), attempt.port);
    if !seen.contains_key(&key) && seen.len() >= MAX_OBSERVED {
        return;
    }
    let entry = seen.entry(key).or_insert_with(|| Observed {
        host: attempt.host.to_ascii_lowercase(),
        port: attempt.port,
        connections: 0,
        refused: 0,
        last_refusal: None,
        last_seen: chrono::Utc::now(),
    });
    entry.last_seen = chrono::Utc::now();
    match &attempt.outcome {
        Ok(_) => entry.connections += 1,
        Err(why) => {
            entry.refused += 1;
            entry.last_refusal = Some(why.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stacks_services_learn_the_names_created_before_them_and_go_direct() {
        let proxies = EgressProxies::default();
        let at = proxies
            .open("stack", "d1", Ipv4Addr::new(127, 0, 0, 9), &["api.example.com".into()], false, &[])
            .await
            .unwrap();
        assert_eq!(
            proxies.open_with("stack", &["api.example.com".into()], false, &[]),
            Some(at),
            "the same list: no change"
        );
        assert_eq!(proxies.open_with("stack", &["api.example.com".into()], true, &[]), None, "learning is a change");
        assert_eq!(proxies.proxy_of("stack", &["cache".into()]), Some((at, vec!["cache".to_string()])));
        let (_, direct) = proxies.proxy_of("stack", &["mcp".into()]).unwrap();
        assert_eq!(direct, ["cache", "mcp"]);
        // A new list reopens at once, on the same sockets.
        let again =
            proxies.open("stack", "d1", Ipv4Addr::new(127, 0, 0, 9), &["other.example.com".into()], false, &[]).await;
        assert_eq!(again.unwrap(), at);
        assert!(proxies.close("stack") && proxies.proxy_of("stack", &[]).is_none());
    }

    #[test]
    fn a_proposal_lists_what_was_reached_with_ports_only_where_needed() {
        let seen = |host: &str, port, connections| Observed {
            host: host.into(),
            port,
            connections,
            refused: 0,
            last_refusal: None,
            last_seen: chrono::Utc::now(),
        };
        let observed = [
            seen("api.openai.com", 443, 3),
            seen("api.openai.com", 80, 1),
            seen("db.internal", 5432, 1),
            seen("fd00::1", 443, 1),
            seen("never.example", 443, 0),
        ];
        assert_eq!(propose(&observed), ["[fd00::1]:443", "api.openai.com", "db.internal:5432"]);
    }
}
