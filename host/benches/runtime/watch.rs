//! The health watch's CPU with 100 running deployments, against the same
//! host idle with none: the watch's status pass every 5 s and each server's
//! health check (an MCP ping every 10 s by default) together.

use serde_json::json;
use std::time::Duration;

use crate::host_process::HostProcess;
use crate::verdict;

const DEPLOYMENTS: usize = 100;
const AT_ONCE: usize = 4;
/// Four passes of the watch (every 5 s).
const WINDOW: Duration = Duration::from_secs(20);
const TARGET_PERCENT: f64 = 2.0;

async fn cpu_percent(host: &HostProcess) -> f64 {
    let before = host.cpu_time();
    tokio::time::sleep(WINDOW).await;
    (host.cpu_time() - before).as_secs_f64() / WINDOW.as_secs_f64() * 100.0
}

pub async fn figures(host: &HostProcess) {
    let idle = cpu_percent(host).await;
    let mut ids = Vec::new();
    for batch in 0..DEPLOYMENTS.div_ceil(AT_ONCE) {
        let deploys = (0..AT_ONCE.min(DEPLOYMENTS - batch * AT_ONCE)).map(|_| async {
            let id = host.deploy(json!({"slug": "fixture", "resources": {"memory": "32m"}})).await;
            host.wait_connected(&id).await;
            id
        });
        ids.extend(futures_util::future::join_all(deploys).await);
    }
    // Let the first full pass over the new deployments go by.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let watching = cpu_percent(host).await;
    println!(
        "health watch: host CPU {watching:.2}% of a core with {DEPLOYMENTS} running deployments \
         (idle with none: {idle:.2}%; {} ≤ {TARGET_PERCENT}%)",
        verdict(watching <= TARGET_PERCENT)
    );
    let deletes = ids.chunks(AT_ONCE * 2).map(|chunk| async move {
        for id in chunk {
            host.delete_deployment(id).await;
        }
    });
    futures_util::future::join_all(deletes).await;
}
