//! tools/call through a stdio server's two bridges against the same image's
//! streamable-HTTP endpoint reached directly: the host's bridge over the
//! engine's attach stream (`stdio: attach`), and the host's static bridge
//! made the container's entrypoint (the default), which the host reaches over
//! HTTP. Each call's CPU is counted in every process that handles it — the
//! host, the engine (daemon and shims) and the container (the server, and the
//! bridge inside it) — so the two are compared whole.

use std::time::Duration;

use crate::host_process::{container_cpu_time, engine_cpu_time, HostProcess};
use crate::{attach, load, verdict};

const CONCURRENCY: [usize; 2] = [1, 8];
const RUN: Duration = Duration::from_secs(3);
const TARGET_THROUGHPUT_RATIO: f64 = 0.80;
const TARGET_P50_OVERHEAD_MS: f64 = 0.5;
/// Host CPU per bridged call at 8 clients (issue 36), the engine's and the container's apart.
const TARGET_HOST_CPU_PER_CALL_US: f64 = 35.0;

/// Microseconds of CPU one call costs each process that handles it.
#[derive(Clone, Copy)]
struct Costs {
    host: f64,
    engine: f64,
    container: f64,
}

impl Costs {
    fn total(&self) -> f64 {
        self.host + self.engine + self.container
    }
}

/// `clients` callers through `url` alone for `RUN`: the load and what each call cost.
async fn costs(host: &HostProcess, url: &str, container: &str, clients: usize) -> (load::Load, Costs) {
    let callers = load::sessions(url, Some(&host.token), clients).await;
    let before = (host.cpu_time(), engine_cpu_time(), container_cpu_time(container));
    let (run, callers) = load::alone(callers, RUN).await;
    let after = (host.cpu_time(), engine_cpu_time(), container_cpu_time(container));
    futures_util::future::join_all(callers.into_iter().map(|c| c.close())).await;
    let costs = Costs {
        host: run.cpu_per_call(after.0.saturating_sub(before.0)),
        engine: run.cpu_per_call(after.1.saturating_sub(before.1)),
        container: run.cpu_per_call(after.2.saturating_sub(before.2)),
    };
    (run, costs)
}

/// One bridge against the direct path, at each concurrency: what it costs at 8 clients.
async fn bridge(host: &HostProcess, name: &str, direct: &str, id: &str, container: &str) -> Costs {
    let bridged = format!("{}/servers/{id}/mcp", host.base);
    let mut last = None;
    for clients in CONCURRENCY {
        let run = load::Comparison::measure(direct, &bridged, &host.token, clients, RUN).await;
        let overhead = run.overhead_ms(0.50);
        let (_, costs) = self::costs(host, &bridged, container, clients).await;
        let cpu_target = match clients {
            8 => {
                format!(" ({} ≤ {TARGET_HOST_CPU_PER_CALL_US} µs)", verdict(costs.host <= TARGET_HOST_CPU_PER_CALL_US))
            }
            _ => String::new(),
        };
        println!(
            "  {name}, {clients} clients: {} ({} ≥ {TARGET_THROUGHPUT_RATIO}×), overhead p50 {overhead:+.2} ms ({} ≤ {TARGET_P50_OVERHEAD_MS} ms); \
             CPU per call: host {:.0} µs{cpu_target}, engine {:.0} µs, container {:.0} µs = {:.0} µs",
            run.summary("direct HTTP", "bridged"),
            verdict(run.ratio() >= TARGET_THROUGHPUT_RATIO),
            verdict(overhead <= TARGET_P50_OVERHEAD_MS),
            costs.host,
            costs.engine,
            costs.container,
            costs.total(),
        );
        last = Some(costs);
    }
    last.expect("a run")
}

pub async fn figures(host: &HostProcess) {
    let (http, stdio) = (host.deploy_roomy("fixture").await, host.deploy_roomy("fixture-stdio").await);
    let direct = host.wait_connected(&http).await["endpoint"].as_str().unwrap().to_string();
    let endpoint = host.wait_connected(&stdio).await["endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("http://"), "the bridge in the container serves it: {endpoint}");
    let inside = crate::support::container_of(&stdio);
    println!(
        "tools/call through the stdio bridge vs the same image over HTTP, direct ({}s per run; CPU from a run through the bridge alone):",
        RUN.as_secs()
    );
    let in_container = bridge(host, "bridge in the container (default)", &direct, &stdio, &inside).await;
    host.delete_deployment(&stdio).await;

    // The same through the engine's attach stream, on a host told to use it.
    let attaching = HostProcess::start_with_env(&[("RUNTIME_DOCKER_STDIO", "attach")]).await;
    let stdio = attaching.deploy_roomy("fixture-stdio").await;
    let endpoint = attaching.wait_connected(&stdio).await["endpoint"].as_str().unwrap().to_string();
    let attached = endpoint.strip_prefix("stdio://").expect("a stdio endpoint").to_string();
    let over_attach = bridge(&attaching, "host's bridge over the attach stream", &direct, &stdio, &attached).await;
    println!(
        "  at 8 clients the bridge in the container costs {:.0} µs a call in all, the attach stream {:.0} µs: {:.2}× ({})",
        in_container.total(),
        over_attach.total(),
        in_container.total() / over_attach.total(),
        match in_container.total() < over_attach.total() {
            true => "cheaper: the default",
            false => "NOT cheaper, yet the default",
        }
    );

    println!(
        "tools/call over the engine's attach stream, no bridge, vs direct HTTP (the floor of the attach path here):"
    );
    for clients in CONCURRENCY {
        let direct_sessions = load::sessions(&direct, None, clients).await;
        let engine = engine_cpu_time();
        let run = load::Comparison::between(direct_sessions, attach::callers(&attached, clients).await, RUN).await;
        println!(
            "  {clients} clients: {}, overhead p50 {:+.2} ms; engine CPU {:.0} µs per call",
            run.summary("direct HTTP", "attached"),
            run.overhead_ms(0.50),
            run.through.cpu_per_call(engine_cpu_time().saturating_sub(engine)),
        );
    }
    attaching.delete_deployment(&stdio).await;
    host.delete_deployment(&http).await;
}
