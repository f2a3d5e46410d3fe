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

pub async fn reopen(bridge: &str) {
    // Delete every copy, in case a crash left a duplicate.
    for _ in 0..8 {
        let deleted = Command::new("iptables")
            .arg("-w")
            .arg("-D")
            .args(rule(bridge))
            .stderr(std::process::Stdio::null())
            .status()
            .await;
        if !matches!(deleted, Ok(s) if s.success()) {
            break;
        }
    }
}
