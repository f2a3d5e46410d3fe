//! deploy → connected through the host, against raw Docker Engine API calls
//! doing the same work: network create + container create + start + port answering.

use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use bollard::Docker;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::host_process::HostProcess;
use crate::{median, support, verdict};

const DEPLOYS: usize = 5;
const TARGET_RATIO: f64 = 1.25;

async fn raw_engine(docker: &Docker, image: &str, owner: &str, n: usize) -> Duration {
    let labels = HashMap::from([
        ("mcp-runtime.owner".to_string(), owner.to_string()),
        (support::TEST_LABEL.to_string(), "1".to_string()),
    ]);
    let network = format!("{}-raw{n}", &owner[..10]);
    let start = Instant::now();
    let request = NetworkCreateRequest {
        name: network.clone(),
        driver: Some("bridge".into()),
        internal: Some(true),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    docker.create_network(request).await.expect("network create");
    let body = ContainerCreateBody {
        image: Some(image.into()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(network.clone()),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            memory: Some(256 << 20),
            pids_limit: Some(50),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions { name: Some(format!("{network}-c")), ..Default::default() };
    let id = docker.create_container(Some(options), body).await.expect("container create").id;
    docker.start_container(&id, None).await.expect("start");
    let inspected = docker.inspect_container(&id, None).await.expect("inspect");
    let ip = inspected
        .network_settings
        .and_then(|s| s.networks)
        .and_then(|n| n.get(&network).and_then(|e| e.ip_address.clone()))
        .expect("container has an address");
    while tokio::net::TcpStream::connect(format!("{ip}:8080")).await.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let remove = RemoveContainerOptions { force: true, ..Default::default() };
    docker.remove_container(&id, Some(remove)).await.expect("remove container");
    docker.remove_network(&network).await.expect("remove network");
    elapsed
}

/// Through the API, deploying the fixture (and removing it again).
async fn host_deploy(host: &HostProcess) -> Duration {
    let (took, id) = host.timed_deploy(json!({"slug": "fixture"})).await;
    host.delete_deployment(&id).await;
    took
}

pub async fn figures(host: &HostProcess) {
    let docker = Docker::connect_with_unix("/var/run/docker.sock", 120, bollard::API_DEFAULT_VERSION).unwrap();
    let image = support::fixture_image();
    // Warm both paths once (image cache, plugin instances).
    raw_engine(&docker, image, &host.owner, 0).await;
    host_deploy(host).await;
    let (mut raw, mut hosted) = (Vec::new(), Vec::new());
    for n in 1..=DEPLOYS {
        raw.push(raw_engine(&docker, image, &host.owner, n).await);
        hosted.push(host_deploy(host).await);
    }
    let (raw, hosted) = (median(raw), median(hosted));
    let ratio = hosted.as_secs_f64() / raw.as_secs_f64();
    println!("deploy (median of {DEPLOYS}): raw Engine API network + create + start + port {raw:?}");
    println!(
        "  host deploy → connected (MCP handshake included) {hosted:?} = {ratio:.2}× raw ({} ≤ {TARGET_RATIO}×)",
        verdict(ratio <= TARGET_RATIO)
    );
}
