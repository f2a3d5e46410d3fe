//! `make bench`: the runtime's speed and memory, each figure printed as a
//! ratio against a baseline measured in the same run.
//!
//! - deploy → running and deploy → connected, against a raw `docker run` of
//!   the same image (with its own network) plus waiting for its port;
//! - the guardrail policy chain per request (p50/p99), against one bare
//!   policy call;
//! - the host's idle RSS, against the target.

#[path = "../../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{docker, TestHost};

const DEPLOYS: usize = 5;
const POLICY_CALLS: usize = 3000;
const TARGET_RUNNING_RATIO: f64 = 1.25;
const TARGET_CHAIN_P99_US: f64 = 200.0;
const TARGET_IDLE_RSS_MB: f64 = 60.0;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets target"
    } else {
        "MISSES target"
    }
}

/// `docker network create` + `docker run` + poll the port: what a person would do by hand.
async fn raw_docker_run(image: &str, owner: &str) -> Duration {
    let labels = support::owner_labels(owner);
    let label_args: Vec<&str> = labels.iter().map(String::as_str).collect();
    let net = format!("{owner}-raw");
    let start = Instant::now();
    let mut create = vec!["network", "create"];
    create.extend(&label_args);
    create.push(&net);
    docker(&create);
    let mut run = vec!["run", "-d", "--network", &net];
    run.extend(&label_args);
    run.push(image);
    let id = docker(&run);
    let ip = docker(&["inspect", &id, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"]);
    while tokio::net::TcpStream::connect(format!("{ip}:8080")).await.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    docker(&["rm", "-f", &id]);
    docker(&["network", "rm", &net]);
    elapsed
}

/// Deploy through the API; time to `running` and to `connected`: the answer's
/// round trip plus the gaps between the deployment's own recorded events
/// (polling alone can miss the brief `running` state).
async fn host_deploy(host: &TestHost) -> (Duration, Duration) {
    let start = Instant::now();
    let id = host.deploy(json!({"slug": "fixture"})).await;
    let accepted = start.elapsed();
    let d = host.wait_for(&id, "connected").await;
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        let e = d["recent_events"].as_array().unwrap().iter().find(|e| pred(e)).expect("event recorded");
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap()
    };
    let requested = at(&|e| e["type"] == "deployment.requested");
    let since = |to: &str| (at(&|e| e["data"]["to"] == to) - requested).to_std().unwrap() + accepted;
    let times = (since("running"), since("connected"));
    host.delete(&format!("/runtimes/{id}")).await;
    times
}

async fn deploy_figures(host: &TestHost) {
    let image = support::fixture_image();
    // Warm both paths once (image cache, plugin instances).
    raw_docker_run(image, &host.owner).await;
    host_deploy(host).await;
    let (mut raw, mut running, mut connected) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..DEPLOYS {
        raw.push(raw_docker_run(image, &host.owner).await);
        let (r, c) = host_deploy(host).await;
        running.push(r);
        connected.push(c);
    }
    let (raw, running, connected) = (median(raw), median(running), median(connected));
    let ratio = running.as_secs_f64() / raw.as_secs_f64();
    println!("deploy (median of {DEPLOYS}): raw docker run + port {raw:?}");
    println!(
        "  deploy → running   {running:?} = {ratio:.2}× raw  ({} ≤ {TARGET_RUNNING_RATIO}×)",
        verdict(ratio <= TARGET_RUNNING_RATIO)
    );
    println!("  deploy → connected {connected:?} = {:.2}× raw", connected.as_secs_f64() / raw.as_secs_f64());
}

async fn policy_figures(host: &TestHost) {
    let runtime = host.runtime();
    let body: mcp_runtime::runtime::DeployBody = serde_json::from_value(json!({"slug": "fixture"})).unwrap();
    let request = runtime.check(&body, "bench", None).await.expect("request checks").request;
    let profile = runtime.profile("restricted").unwrap().unwrap();
    let capabilities = runtime.capabilities_of("docker").unwrap();
    let bare = runtime.plugins["default-guardrails"].clone();
    let input = mcp_runtime::plugins::bindings::policy::PolicyInput {
        request: request.clone(),
        profile: profile.to_wit(),
        capabilities,
        effective: profile.initial_guardrails(),
        warnings: Vec::new(),
    };
    let time = |samples: &mut Vec<Duration>, start: Instant| samples.push(start.elapsed());
    let (mut chain, mut single) = (Vec::with_capacity(POLICY_CALLS), Vec::with_capacity(POLICY_CALLS));
    for i in 0..POLICY_CALLS + 200 {
        let start = Instant::now();
        runtime.evaluate_policies(&request, &profile, &capabilities).await.unwrap();
        if i >= 200 {
            time(&mut chain, start);
        }
        let start = Instant::now();
        bare.evaluate(&input).await.unwrap().unwrap();
        if i >= 200 {
            time(&mut single, start);
        }
    }
    chain.sort();
    single.sort();
    let links = 1 + runtime.config.policy_chain.len();
    let (p50, p99) = (percentile(&chain, 0.50), percentile(&chain, 0.99));
    let (b50, b99) = (percentile(&single, 0.50), percentile(&single, 0.99));
    println!("policy chain ({links} components, fresh store per call, {POLICY_CALLS} requests):");
    println!("  one bare policy call      p50 {b50:?}  p99 {b99:?}");
    println!(
        "  whole chain               p50 {p50:?} ({:.2}× bare)  p99 {p99:?} ({:.2}× bare; {} ≤ {TARGET_CHAIN_P99_US} µs)",
        p50.as_secs_f64() / b50.as_secs_f64(),
        p99.as_secs_f64() / b99.as_secs_f64(),
        verdict(p99.as_secs_f64() * 1e6 <= TARGET_CHAIN_P99_US)
    );
}

/// The release binary with embedded defaults, idle after start-up.
async fn idle_rss_figure() {
    let binary = support::repo_root().join("target/release/mcp-runtime");
    assert!(binary.exists(), "{} missing: `make bench` builds it", binary.display());
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let owner = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut child = std::process::Command::new(&binary)
        .env("RUNTIME_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUNTIME_DATA_DIR", data.path())
        .env("RUNTIME_PLUGIN_DIR", support::guest_dir())
        .env("RUNTIME_OWNER", &owner)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{port}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "host did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let mb = kb / 1024.0;
    println!(
        "idle RSS: {mb:.1} MB = {:.2}× the {TARGET_IDLE_RSS_MB} MB target ({})",
        mb / TARGET_IDLE_RSS_MB,
        verdict(mb <= TARGET_IDLE_RSS_MB)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let host = TestHost::start(|_| {}).await;
        deploy_figures(&host).await;
        policy_figures(&host).await;
        drop(host);
        idle_rss_figure().await;
    });
}
