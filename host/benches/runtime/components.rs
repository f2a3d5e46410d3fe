//! The `wasm` backend against a container, in the same run and through the
//! same host: deploy → connected for the tool component against the
//! fixture container's (target ≤ 0.1×); tools/call (`echo`, which both
//! serve) through `/servers/{id}/mcp` at 1 and 8 clients; and the memory an
//! idle deployment costs — the host's RSS growth per served component against
//! an idle fixture container's own memory.

use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

use crate::host_process::HostProcess;
use crate::{load, median, support, verdict};

const DEPLOYS: usize = 5;
const TARGET_DEPLOY_RATIO: f64 = 0.1;
const CONCURRENCY: [usize; 2] = [1, 8];
const RUN: Duration = Duration::from_secs(3);
/// Idle deployments whose memory is averaged.
const IDLE: usize = 20;

/// The tool component as a catalog entry of the bench host.
async fn add_entry(host: &HostProcess) {
    let bytes = std::fs::read(support::guest_dir().join("tool_component.wasm")).expect("built by `make guests`");
    let entry = json!({
        "name": "Tools in a component", "slug": "wasm-tools", "supported_backends": ["wasm"],
        "guardrails_profile": "restricted",
        "source": {"type": "wasm", "path": "tool_component.wasm", "sha256": hex::encode(Sha256::digest(bytes))},
    });
    let (status, answer) = host.call(reqwest::Method::POST, "/catalog", Some(entry)).await;
    assert!(status == 201 || status == 409, "POST /catalog: {status} {answer}");
}

pub async fn figures(host: &HostProcess) {
    add_entry(host).await;
    let component = json!({"slug": "wasm-tools", "backend": "wasm"});
    let container = json!({"slug": "fixture"});
    // Warm both paths once (image cache, compiled component, plugin instances).
    for body in [&component, &container] {
        let (_, id) = host.timed_deploy(body.clone()).await;
        host.delete_deployment(&id).await;
    }
    let (mut wasm, mut docker) = (Vec::new(), Vec::new());
    for _ in 0..DEPLOYS {
        for (body, times) in [(&component, &mut wasm), (&container, &mut docker)] {
            let (took, id) = host.timed_deploy(body.clone()).await;
            times.push(took);
            host.delete_deployment(&id).await;
        }
    }
    let (wasm, docker) = (median(wasm), median(docker));
    let ratio = wasm.as_secs_f64() / docker.as_secs_f64();
    println!("deploy → connected (median of {DEPLOYS}): fixture container {docker:?}");
    println!(
        "  tool component {wasm:?} = {ratio:.3}× the container ({} ≤ {TARGET_DEPLOY_RATIO}×)",
        verdict(ratio <= TARGET_DEPLOY_RATIO)
    );

    let served = host.deploy_roomy("fixture").await;
    host.wait_connected(&served).await;
    let (_, component_id) = host.timed_deploy(component.clone()).await;
    let (to_container, to_component) =
        (format!("{}/servers/{served}/mcp", host.base), format!("{}/servers/{component_id}/mcp", host.base));
    println!("tools/call `echo` through the host: the component against the container ({}s per run):", RUN.as_secs());
    for clients in CONCURRENCY {
        let cpu = host.cpu_time();
        let containers = load::sessions(&to_container, Some(&host.token), clients).await;
        let components = load::sessions(&to_component, Some(&host.token), clients).await;
        let run = load::Comparison::between(containers, components, RUN).await;
        println!(
            "  {clients} client(s): {}, p50 {:+.2} ms; host CPU {:.0} µs per call (both sides)",
            run.summary("container", "component"),
            run.overhead_ms(0.50),
            (host.cpu_time() - cpu).as_secs_f64() * 1e6 / (run.base.calls + run.through.calls).max(1) as f64,
        );
    }

    // What an idle deployment costs: the container's own memory, the host's growth per component.
    let container_memory = idle_container_memory(host, &served).await;
    let before = host.rss_mb();
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let (_, id) = host.timed_deploy(component.clone()).await;
        idle.push(id);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_component = (host.rss_mb() - before) / IDLE as f64;
    println!(
        "memory per idle deployment: fixture container {container_memory:.2} MB; component {per_component:.3} MB of the host's RSS (mean of {IDLE}) = {:.3}×",
        per_component / container_memory
    );
    for id in idle.iter().chain([&served, &component_id]) {
        host.delete_deployment(id).await;
    }
}

/// The fixture container's memory as its backend reads it, once it has a reading.
async fn idle_container_memory(host: &HostProcess, id: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = host.get(&format!("/runtimes/{id}")).await;
        if let Some(bytes) = d["usage"]["memory_bytes"].as_u64().filter(|&b| b > 0) {
            return bytes as f64 / (1 << 20) as f64;
        }
        assert!(Instant::now() < deadline, "no memory reading: {d}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
