//! How the host's cost grows with what it runs: at 10, 100 and 500 running
//! deployments (up to `BENCH_SCALE`, 100 by default), its RSS, its CPU while
//! nothing is asked of it (the health watch, the health checks, the usage
//! sampler and reconcile together), deploy → connected of one more, and the
//! latency of `GET /runtimes` and `GET /runtimes/{id}` — each printed against
//! N, with its growth between steps beside N's.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::host_process::HostProcess;
use crate::{percentile, verdict};

const STEPS: [usize; 3] = [10, 100, 500];
const AT_ONCE: usize = 4;
/// Four passes of the watch (every 5 s), two of the usage sampler (every 10 s).
const WINDOW: Duration = Duration::from_secs(20);
const TARGET_WATCH_PERCENT: f64 = 2.0;
const TARGET_READ_P99: Duration = Duration::from_millis(5);
/// Deploys of one more, timed at each step.
const EXTRA_DEPLOYS: usize = 5;
const READS: usize = 200;

/// What one step measured.
struct Step {
    n: usize,
    rss_mb: f64,
    idle_cpu_percent: f64,
    deploy: (Duration, Duration),
    list: (Duration, Duration),
    read: (Duration, Duration),
}

fn largest() -> usize {
    std::env::var("BENCH_SCALE").ok().and_then(|n| n.parse().ok()).unwrap_or(100)
}

/// The host's CPU over `WINDOW`; with `BENCH_PERF` set, `perf record`
/// profiles the window into `target/perf-scale-N.data` (`perf report -i …`).
async fn cpu_percent(host: &HostProcess, n: usize) -> f64 {
    let before = host.cpu_time();
    if std::env::var_os("BENCH_PERF").is_some() {
        let out = crate::support::repo_root().join(format!("target/perf-scale-{n}.data"));
        let window = WINDOW.as_secs().to_string();
        let pid = host.pid().to_string();
        let perf = tokio::process::Command::new("perf")
            .args(["record", "-q", "-F", "4999", "-g", "-p", &pid, "-o"])
            .arg(&out)
            .args(["--", "sleep", &window])
            .status();
        assert!(perf.await.is_ok_and(|s| s.success()), "perf record failed");
    } else {
        tokio::time::sleep(WINDOW).await;
    }
    (host.cpu_time() - before).as_secs_f64() / WINDOW.as_secs_f64() * 100.0
}

/// p50 and p99 of `runs` GETs of `path`.
async fn latency(host: &HostProcess, path: &str, runs: usize) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        host.get(path).await;
        samples.push(start.elapsed());
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// Deploys until `n` run, a few at a time; their ids are added to `ids`.
async fn grow_to(host: &HostProcess, ids: &mut Vec<String>, n: usize) {
    while ids.len() < n {
        let batch = AT_ONCE.min(n - ids.len());
        let deploys = (0..batch).map(|_| async {
            let id = host.deploy(json!({"slug": "fixture", "resources": {"memory": "32m"}})).await;
            host.wait_connected(&id).await;
            id
        });
        ids.extend(futures_util::future::join_all(deploys).await);
    }
}

async fn measure(host: &HostProcess, ids: &[String]) -> Step {
    // Let a full pass of the watch and the sampler over the new deployments go by.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let idle_cpu_percent = cpu_percent(host, ids.len()).await;
    let rss_mb = host.rss_mb();
    let list = latency(host, "/runtimes", 20).await;
    let read = latency(host, &format!("/runtimes/{}", ids[ids.len() / 2]), READS).await;
    let mut deploys = Vec::new();
    for _ in 0..EXTRA_DEPLOYS {
        let (took, id) = host.timed_deploy(json!({"slug": "fixture", "resources": {"memory": "32m"}})).await;
        deploys.push(took);
        host.delete_deployment(&id).await;
    }
    deploys.sort();
    let deploy = (percentile(&deploys, 0.5), deploys[deploys.len() - 1]);
    Step { n: ids.len(), rss_mb, idle_cpu_percent, deploy, list, read }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `later / earlier` beside the growth of N: linear or better, or not.
/// Below this, a difference in RSS is the allocator's give and take, not growth.
const RSS_NOISE_MB: f64 = 2.0;

fn growth(name: &str, earlier: f64, later: f64, n_ratio: f64) -> String {
    if earlier <= 0.0 {
        return format!("{name} from {earlier:.2} to {later:.2}");
    }
    let ratio = later / earlier;
    let mark = if ratio <= n_ratio * 1.1 { "" } else { " FASTER THAN N" };
    format!("{name} ×{ratio:.2}{mark}")
}

pub async fn figures(host: &HostProcess) {
    let largest = largest();
    let started = Instant::now();
    println!("scale: up to {largest} running deployments (BENCH_SCALE); with none:");
    let idle = cpu_percent(host, 0).await;
    let rss_at_zero = host.rss_mb();
    println!("  N=0: host RSS {rss_at_zero:.1} MB, idle CPU {idle:.2}% of a core");
    let mut ids = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    for n in STEPS.into_iter().filter(|n| *n <= largest) {
        grow_to(host, &mut ids, n).await;
        let step = measure(host, &ids).await;
        println!(
            "  N={}: host RSS {:.1} MB ({:+.1} MB, {:.0} KB a deployment), idle CPU {:.2}% of a core ({} ≤ {TARGET_WATCH_PERCENT}%), deploy → connected \
             p50 {:.0} ms p99 {:.0} ms, GET /runtimes p50 {:.2} ms p99 {:.2} ms, GET /runtimes/{{id}} p50 {:.2} ms \
             p99 {:.2} ms ({} ≤ {} ms)",
            step.n,
            step.rss_mb,
            step.rss_mb - rss_at_zero,
            (step.rss_mb - rss_at_zero) * 1000.0 / step.n as f64,
            step.idle_cpu_percent,
            verdict(step.idle_cpu_percent <= TARGET_WATCH_PERCENT),
            ms(step.deploy.0),
            ms(step.deploy.1),
            ms(step.list.0),
            ms(step.list.1),
            ms(step.read.0),
            ms(step.read.1),
            verdict(step.read.1 <= TARGET_READ_P99),
            TARGET_READ_P99.as_millis(),
        );
        if let Some(before) = steps.last() {
            let n_ratio = step.n as f64 / before.n as f64;
            let rss = (before.rss_mb - rss_at_zero, step.rss_mb - rss_at_zero);
            let rss_growth = match rss.0 >= RSS_NOISE_MB {
                true => growth("RSS above N=0's", rss.0, rss.1, n_ratio),
                false => format!("RSS above N=0's from {:.1} MB (noise) to {:.1} MB", rss.0, rss.1),
            };
            let figures = [
                rss_growth,
                growth("idle CPU", before.idle_cpu_percent, step.idle_cpu_percent, n_ratio),
                growth("deploy p50", ms(before.deploy.0), ms(step.deploy.0), n_ratio),
                growth("GET /runtimes p50", ms(before.list.0), ms(step.list.0), n_ratio),
                growth("GET /runtimes/{id} p50", ms(before.read.0), ms(step.read.0), n_ratio),
            ];
            println!("  N {} → {} (×{n_ratio:.0}): {}", before.n, step.n, figures.join(", "));
        }
        steps.push(step);
    }
    let deletes = ids.chunks(ids.len().div_ceil(AT_ONCE * 2).max(1)).map(|chunk| async move {
        for id in chunk {
            host.delete_deployment(id).await;
        }
    });
    futures_util::future::join_all(deletes).await;
    println!("  (scale measured in {:.0?}; about 40 s a step plus the deploys)", started.elapsed());
}
