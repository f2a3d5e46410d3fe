//! tools/call through `/servers/{id}/mcp` against the same server reached
//! directly, at several concurrencies, and the host's RSS across repeated runs.

use std::collections::HashMap;
use std::time::Duration;

use crate::host_process::HostProcess;
use crate::{load, relay, verdict};

const CONCURRENCY: [usize; 3] = [1, 8, 32];
const RUN: Duration = Duration::from_secs(3);
const ROUNDS: usize = 2;
const TARGET_THROUGHPUT_RATIO: f64 = 0.90;
const TARGET_P50_OVERHEAD_MS: f64 = 0.2;
/// RSS may settle a little between rounds; more is a leak.
const TARGET_RSS_GROWTH: f64 = 1.05;
/// Host CPU per proxied call at 8 clients (issue 36).
const TARGET_CPU_PER_CALL_US: f64 = 30.0;
/// …and at most this many times the bare relay's CPU per relayed call.
const TARGET_CPU_OVER_RELAY: f64 = 3.0;

pub async fn figures(host: &HostProcess) {
    let id = host.deploy_roomy("fixture").await;
    let d = host.wait_connected(&id).await;
    let direct = d["endpoint"].as_str().unwrap().to_string();
    let proxied = format!("{}/servers/{id}/mcp", host.base);

    // What one more hop costs with nothing done in it: the floor under the proxy's ratio.
    let endpoint: reqwest::Url = direct.parse().unwrap();
    let upstream = format!("{}:{}", endpoint.host_str().unwrap(), endpoint.port().unwrap_or(80));
    let relay = relay::start(upstream.parse().unwrap());
    let relayed = format!("http://{}{}", relay.address, endpoint.path());
    println!("tools/call through a bare TCP relay vs direct (the floor of any extra hop on this machine):");
    let mut relay_cpu = HashMap::new();
    for clients in CONCURRENCY {
        let cpu = relay.cpu_time();
        let run = load::Comparison::measure(&direct, &relayed, &host.token, clients, RUN).await;
        let per_call = run.through.cpu_per_call(relay.cpu_time() - cpu);
        relay_cpu.insert(clients, per_call);
        println!(
            "  {clients:>2} clients: {}, overhead p50 {:+.2} ms; relay CPU {per_call:.0} µs per call",
            run.summary("direct", "relayed"),
            run.overhead_ms(0.50)
        );
    }

    println!(
        "tools/call through the proxy vs direct to the container ({}s per run, restricted profile, 2 CPUs):",
        RUN.as_secs()
    );
    let mut rss = Vec::new();
    for round in 1..=ROUNDS {
        for clients in CONCURRENCY {
            let cpu = host.cpu_time();
            let run = load::Comparison::measure(&direct, &proxied, &host.token, clients, RUN).await;
            let host_cpu = run.through.cpu_per_call(host.cpu_time() - cpu);
            let relay = relay_cpu[&clients];
            let cpu_target = match clients {
                8 => format!(
                    " ({} ≤ {TARGET_CPU_PER_CALL_US} µs; {} ≤ {TARGET_CPU_OVER_RELAY}× the relay's)",
                    verdict(host_cpu <= TARGET_CPU_PER_CALL_US),
                    verdict(host_cpu <= TARGET_CPU_OVER_RELAY * relay)
                ),
                _ => String::new(),
            };
            let p50 = if clients == 1 {
                format!(" ({} ≤ {TARGET_P50_OVERHEAD_MS} ms)", verdict(run.overhead_ms(0.50) <= TARGET_P50_OVERHEAD_MS))
            } else {
                String::new()
            };
            println!(
                "  round {round}, {clients:>2} clients: {} ({} ≥ {TARGET_THROUGHPUT_RATIO}×), overhead p50 {:+.2} ms{p50} p99 {:+.2} ms; host CPU {host_cpu:.0} µs per call = {:.1}× the relay's {relay:.0} µs{cpu_target}",
                run.summary("direct", "proxied"),
                verdict(run.ratio() >= TARGET_THROUGHPUT_RATIO),
                run.overhead_ms(0.50),
                run.overhead_ms(0.99),
                host_cpu / relay,
            );
        }
        rss.push(host.rss_mb());
    }
    let growth = rss[ROUNDS - 1] / rss[0];
    println!(
        "host RSS after each round: {} MB = {growth:.2}× round 1 ({} ≤ {TARGET_RSS_GROWTH}×)",
        rss.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", "),
        verdict(growth <= TARGET_RSS_GROWTH)
    );
    host.delete_deployment(&id).await;
}
