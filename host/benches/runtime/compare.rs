//! This build against another one (`BENCH_BASELINE_BINARY=path/to/mcp-runtime`):
//! tools/call through each host's proxy and stdio bridge, in alternating
//! turns in one run, with the CPU each host spends per call.
//!
//! On a shared VM the ratios against direct swing ±10% or more from run to
//! run (steal bursts), which hides any change to the host smaller than that;
//! two hosts taking turns under the same load see much the same machine.
//! Even so, two identical builds differ by up to ±20% in calls per second in
//! a round and ±10% in CPU per call: read the rounds together, CPU first.

use std::time::Duration;

use crate::host_process::HostProcess;
use crate::load;

const ROUNDS: usize = 3;
const RUN: Duration = Duration::from_secs(3);

/// The server each host's path leads to: the fixture over HTTP (proxied) or stdio (bridged).
const PATHS: [(&str, &str, &[usize]); 2] =
    [("proxy", "fixture", &[1, 8, 32]), ("stdio bridge", "fixture-stdio", &[1, 8])];

pub async fn figures(this: &HostProcess, baseline: std::path::PathBuf) {
    println!("this build vs {} ({}s per run, in alternating turns):", baseline.display(), RUN.as_secs());
    let other = HostProcess::start_binary(baseline).await;
    for (path, slug, concurrency) in PATHS {
        let (ours, theirs) = (deployed(this, slug).await, deployed(&other, slug).await);
        for round in 1..=ROUNDS {
            for &clients in concurrency {
                let (ours_before, theirs_before) = (this.cpu_time(), other.cpu_time());
                let run = load::Comparison::between(
                    load::sessions(&ours.1, Some(&this.token), clients).await,
                    load::sessions(&theirs.1, Some(&other.token), clients).await,
                    RUN,
                )
                .await;
                println!(
                    "  {path}, round {round}, {clients:>2} clients: {}; host CPU per call: this {:.0} µs, baseline {:.0} µs",
                    run.summary("this", "baseline"),
                    run.base.cpu_per_call(this.cpu_time() - ours_before),
                    run.through.cpu_per_call(other.cpu_time() - theirs_before),
                );
            }
        }
        this.delete_deployment(&ours.0).await;
        other.delete_deployment(&theirs.0).await;
    }
}

/// A connected deployment of `slug` on `host`: its id and MCP URL.
async fn deployed(host: &HostProcess, slug: &str) -> (String, String) {
    let id = host.deploy_roomy(slug).await;
    host.wait_connected(&id).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    (id, url)
}
