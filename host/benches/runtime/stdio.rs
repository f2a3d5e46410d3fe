//! tools/call through the stdio bridge (`/servers/{id}/mcp` of a server
//! speaking stdio) against the same image's streamable-HTTP endpoint reached
//! directly: what bridging stdio costs a client.

use std::time::Duration;

use crate::host_process::{engine_cpu_time, HostProcess};
use crate::{attach, load, verdict};

const CONCURRENCY: [usize; 2] = [1, 8];
const RUN: Duration = Duration::from_secs(3);
const TARGET_THROUGHPUT_RATIO: f64 = 0.80;
const TARGET_P50_OVERHEAD_MS: f64 = 0.5;
/// Host CPU per bridged call at 8 clients (issue 36), the engine's share apart.
const TARGET_HOST_CPU_PER_CALL_US: f64 = 35.0;

pub async fn figures(host: &HostProcess) {
    let (http, stdio) = (host.deploy_roomy("fixture").await, host.deploy_roomy("fixture-stdio").await);
    let direct = host.wait_connected(&http).await["endpoint"].as_str().unwrap().to_string();
    let endpoint = host.wait_connected(&stdio).await["endpoint"].as_str().unwrap().to_string();
    let container = endpoint.strip_prefix("stdio://").expect("a stdio endpoint");
    let bridged = format!("{}/servers/{stdio}/mcp", host.base);

    println!(
        "tools/call over the engine's attach stream, no bridge, vs direct HTTP (the floor of the stdio path here):"
    );
    for clients in CONCURRENCY {
        let direct_sessions = load::sessions(&direct, None, clients).await;
        let engine = engine_cpu_time();
        let run = load::Comparison::between(direct_sessions, attach::callers(container, clients).await, RUN).await;
        println!(
            "  {clients} clients: {}, overhead p50 {:+.2} ms; engine CPU {:.0} µs per call",
            run.summary("direct HTTP", "attached"),
            run.overhead_ms(0.50),
            run.through.cpu_per_call(engine_cpu_time().saturating_sub(engine)),
        );
    }

    println!("tools/call through the stdio bridge vs the same image over HTTP, direct ({}s per run):", RUN.as_secs());
    for clients in CONCURRENCY {
        let (cpu, engine) = (host.cpu_time(), engine_cpu_time());
        let run = load::Comparison::measure(&direct, &bridged, &host.token, clients, RUN).await;
        let (cpu, engine) = (host.cpu_time() - cpu, engine_cpu_time().saturating_sub(engine));
        let overhead = run.overhead_ms(0.50);
        let host_cpu = run.through.cpu_per_call(cpu);
        let cpu_target = match clients {
            8 => format!(" ({} ≤ {TARGET_HOST_CPU_PER_CALL_US} µs)", verdict(host_cpu <= TARGET_HOST_CPU_PER_CALL_US)),
            _ => String::new(),
        };
        println!(
            "  {clients} clients: {} ({} ≥ {TARGET_THROUGHPUT_RATIO}×), overhead p50 {overhead:+.2} ms ({} ≤ {TARGET_P50_OVERHEAD_MS} ms); \
             CPU per call: host {host_cpu:.0} µs{cpu_target}, engine {:.0} µs",
            run.summary("direct HTTP", "bridged stdio"),
            verdict(run.ratio() >= TARGET_THROUGHPUT_RATIO),
            verdict(overhead <= TARGET_P50_OVERHEAD_MS),
            run.through.cpu_per_call(engine),
        );
    }
    host.delete_deployment(&http).await;
    host.delete_deployment(&stdio).await;
}
