//! The host side of an internal network: iptables rules on the INPUT chain.

use tokio::process::Command;

fn rule(bridge: &str) -> [&str; 9] {
    ["INPUT", "-i", bridge, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]
}

/// Drops new connections from the bridge to the host; false when that failed.
pub async fn close(bridge: &str) -> bool {
    let inserted = Command::new("iptables").arg("-w").arg("-I").args(rule(bridge)).status().await;
    match inserted {
        Ok(status) if status.success() => true,
        outcome => {
            tracing::warn!(bridge, ?outcome, "could not close the host to an internal network");
            false
        }
    }
}

fn accept(bridge: &str, proto: &'static str, port: u16) -> Vec<String> {
    ["INPUT", "-i", bridge, "-p", proto, "--dport", &port.to_string(), "-j", "ACCEPT"].map(String::from).to_vec()
}

/// Lets new connections from the bridge reach one host port (the egress
/// proxy's, its resolver's): inserted above the bridge's DROP.
pub async fn open_port(bridge: &str, proto: &'static str, port: u16) {
    let inserted = Command::new("iptables").arg("-w").arg("-I").args(accept(bridge, proto, port)).status().await;
    if !matches!(inserted, Ok(s) if s.success()) {
        tracing::warn!(bridge, proto, port, "could not open the egress proxy's port to its network");
    }
}

pub async fn reopen(bridge: &str) {
    for (proto, port) in [("tcp", crate::egress::PROXY_PORT), ("udp", crate::egress::DNS_PORT)] {
        delete_all(accept(bridge, proto, port)).await;
    }
    delete_all(rule(bridge).map(String::from).to_vec()).await;
}

async fn delete_all(rule: Vec<String>) {
    // Delete every copy, in case a crash left a duplicate.
    for _ in 0..8 {
        let deleted =
            Command::new("iptables").arg("-w").arg("-D").args(&rule).stderr(std::process::Stdio::null()).status().await;
        if !matches!(deleted, Ok(s) if s.success()) {
            break;
        }
    }
}
