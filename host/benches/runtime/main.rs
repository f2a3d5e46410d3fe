//! `make bench`: the runtime's speed and memory, each figure printed as a
//! ratio against a baseline measured in the same run (or against its target).
//!
//! - tools/call through the MCP proxy against the same server reached
//!   directly, at 1, 8 and 32 clients, and the host's RSS across rounds,
//!   beside a bare TCP relay's ratio (the floor of any extra hop here);
//! - tools/call through the stdio bridge in the container (the default) and
//!   through the host's bridge over the engine's attach stream, against the
//!   same image over HTTP, each call's CPU counted in the host, the engine and
//!   the container; beside the attach stream alone (its floor);
//! - deploy → connected against raw Docker Engine API calls;
//! - a WebAssembly tool component (the `wasm` backend) against the fixture
//!   container: deploy → connected, tools/call at 1 and 8 clients, memory
//!   per idle deployment;
//! - deploy from a Git repository and from an npm and a PyPI package: a cached
//!   image against the first build;
//! - `GET /catalog` with 135 entries against `GET /health`;
//! - how cost grows with 10, 100 and 500 running deployments (`scale`, up to
//!   `BENCH_SCALE`): RSS, idle CPU, deploy → connected, `GET /runtimes` and
//!   `GET /runtimes/{id}`;
//! - 1, 100 and 1,000 open MCP sessions on a proxied and on a bridged server
//!   (`sessions`): host memory per session, p99 of a call;
//! - 10, 100 and 1,000 open `/runtimes/stream` listeners (`listeners`):
//!   memory per listener, how long a change takes from the first to the last;
//! - the store after 10,000 deployments and 100,000 events (`store`): the
//!   host's start against its start on an empty store, `GET /events`
//!   queries, the file's size;
//! - heap allocations per proxied and per bridged call in the host (a host in
//!   this process, its share the difference to calling the server directly);
//! - the guardrail policy chain per request against one bare policy call;
//! - the pinned-images rule in Python and JavaScript against the Rust one;
//! - the egress proxy's added latency per request against the direct path;
//! - the host's idle RSS against its target;
//! - with `BENCH_BASELINE_BINARY` set, this build's proxy and stdio bridge
//!   against that build's, in alternating turns (`compare`).
//!
//! The host runs as the release binary in its own process (`host_process`),
//! so its CPU and memory are measured apart from the load generator's.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod allocations;
mod attach;
mod build;
mod catalog;
mod compare;
mod components;
mod deploy;
mod egress;
mod host_process;
mod listeners;
mod load;
mod package_build;
mod policy;
mod proxy;
mod relay;
mod rules;
mod scale;
mod sessions;
mod stdio;
mod store_history;
mod supply_chain;

use std::time::{Duration, Instant};

/// Counts this process's allocations (`allocations`).
#[global_allocator]
static ALLOCATOR: allocations::Counting = allocations::Counting;

const TARGET_IDLE_RSS_MB: f64 = 40.0;

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets target"
    } else {
        "MISSES target"
    }
}

/// `BENCH_ONLY=proxy,catalog make bench` measures just those figures.
fn wanted(figure: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|f| f.trim() == figure))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let host = host_process::HostProcess::start().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle = host.rss_mb();
        println!(
            "idle RSS: {idle:.1} MB = {:.2}× the {TARGET_IDLE_RSS_MB} MB target ({})",
            idle / TARGET_IDLE_RSS_MB,
            verdict(idle <= TARGET_IDLE_RSS_MB)
        );
        let made_of: Vec<String> = host_process::rss_breakdown(host.pid())
            .into_iter()
            .filter(|(_, mb)| *mb >= 0.1)
            .map(|(kind, mb)| format!("{kind} {mb:.1} MB"))
            .collect();
        println!("  made of: {}", made_of.join(", "));
        let started = Instant::now();
        if let Some(baseline) = std::env::var_os("BENCH_BASELINE_BINARY") {
            compare::figures(&host, baseline.into()).await;
        }
        if wanted("proxy") {
            proxy::figures(&host).await;
        }
        if wanted("stdio") {
            stdio::figures(&host).await;
        }
        if wanted("deploy") {
            deploy::figures(&host).await;
        }
        if wanted("components") {
            components::figures(&host).await;
        }
        if wanted("catalog") {
            catalog::figures(&host).await;
        }
        if wanted("sessions") {
            sessions::figures(&host).await;
        }
        if wanted("listeners") {
            listeners::figures(&host).await;
        }
        if wanted("scale") {
            scale::figures(&host).await;
        }
        drop(host);
        if wanted("policy") {
            let in_process = support::TestHost::start(|_| {}).await;
            policy::figures(&in_process).await;
        }
        if wanted("allocations") {
            allocations::figures().await;
        }
        if wanted("store") {
            store_history::figures().await;
        }
        if wanted("egress") {
            egress::figures().await;
        }
        if wanted("rules") {
            rules::figures().await;
        }
        if wanted("build") {
            build::figures().await;
        }
        if wanted("package-build") {
            package_build::figures().await;
        }
        if wanted("supply-chain") {
            supply_chain::figures().await;
        }
        println!("(measured in {:.0?})", started.elapsed());
    });
}
