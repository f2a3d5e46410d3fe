//! `make soak`: the host under mixed load for `SOAK_MINUTES` (20 by
//! default) — deploys and deletes, MCP calls through the proxy and the
//! bridge, live status listeners coming and going, approvals, catalog
//! imports and a plugin upgrade every few minutes — printing every minute
//! and at the end the host's RSS, open descriptors, background tasks, store
//! size, errors by kind and a call's p99.
//!
//! It passes when no error came that the load did not provoke, RSS and
//! descriptors stayed flat after warm-up (under 5% growth over the last
//! half) and the store's size stayed bounded (the same, once the audit
//! trail reached its limit). Not part of `make test`: it takes its time.

#[path = "../../../tests/support/mod.rs"]
mod support;

#[allow(dead_code)]
#[path = "../runtime/host_process.rs"]
mod host_process;

mod load;

use std::time::{Duration, Instant};

use host_process::HostProcess;
use load::Tally;

/// The audit trail's limit for the soak: reached within minutes, so its
/// store shows whether it stays bounded once it is.
const KEEP_EVENTS: &str = "1000";

/// One minute's figures.
struct Sample {
    minute: u64,
    rss_mb: f64,
    fds: usize,
    tasks: f64,
    store_kb: u64,
    calls: usize,
    p99: Duration,
    errors: Vec<(String, u64)>,
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// RSS and descriptors read every few seconds of a minute: its row shows
/// their medians, which one deploy or upgrade in flight does not swing.
const READINGS_PER_MINUTE: u32 = 12;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn sample(
    host: &HostProcess,
    data: &std::path::Path,
    tally: &Tally,
    minute: u64,
    rss: Vec<f64>,
    fds: Vec<f64>,
) -> Sample {
    let metrics = host.get_text("/metrics").await;
    let tasks = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mcp_runtime_background_tasks "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let store_kb = std::fs::metadata(data.join("data/runtime.redb")).map(|m| m.len() / 1024).unwrap_or(0);
    let (mut latencies, errors) = tally.take_minute();
    latencies.sort();
    let p99 = latencies.get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1))).copied();
    Sample {
        minute,
        rss_mb: median(rss),
        fds: median(fds) as usize,
        tasks,
        store_kb,
        calls: latencies.len(),
        p99: p99.unwrap_or_default(),
        errors,
    }
}

fn print_row(s: &Sample) {
    let errors: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!(
        "| {:>3} | {:>7.1} | {:>4} | {:>5} | {:>8} | {:>6} | {:>8.2} | {} |",
        s.minute,
        s.rss_mb,
        s.fds,
        s.tasks,
        s.store_kb,
        s.calls,
        s.p99.as_secs_f64() * 1e3,
        if errors.is_empty() { "none".into() } else { errors.join(", ") }
    );
}

/// Growth over the last half, as a fraction: the median of its first few
/// minutes against the median of its last few.
fn growth(samples: &[Sample], figure: impl Fn(&Sample) -> f64) -> f64 {
    let half = &samples[samples.len() / 2..];
    let few = (half.len() / 3).max(1);
    let start = median(half[..few].iter().map(&figure).collect());
    let end = median(half[half.len() - few..].iter().map(&figure).collect());
    (end - start) / start.max(f64::EPSILON)
}

fn main() {
    let minutes: u64 = std::env::var("SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let passed = runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let host = HostProcess::start_on_with(dir.path(), &[("RUNTIME_AUDIT_KEEP_EVENTS", KEEP_EVENTS)]).await;
        let tally = Tally::default();
        let load = load::Load::prepare(&host, tally.clone()).await;
        let until = Instant::now() + Duration::from_secs(minutes * 60);
        let workers = load.start(until);
        println!("soak: {minutes} minutes of mixed load (SOAK_MINUTES)");
        println!("| min | RSS MB (median) | fds (median) | tasks | store kB | calls | p99 ms | errors |");
        println!("|---|---|---|---|---|---|---|---|");
        let mut samples = Vec::new();
        let started = Instant::now();
        for minute in 1..=minutes {
            let (mut rss, mut fds) = (Vec::new(), Vec::new());
            for reading in 1..=READINGS_PER_MINUTE {
                let at = started
                    + Duration::from_secs((minute - 1) * 60)
                    + reading * Duration::from_secs(60) / READINGS_PER_MINUTE;
                tokio::time::sleep_until(at.into()).await;
                rss.push(host.rss_mb());
                fds.push(open_descriptors(host.pid()) as f64);
            }
            let s = sample(&host, dir.path(), &tally, minute, rss, fds).await;
            print_row(&s);
            samples.push(s);
        }
        for worker in workers {
            let _ = worker.await;
        }
        load.clean_up(&host).await;
        verdict(&samples, &tally)
    });
    if !passed {
        std::process::exit(1);
    }
}

/// Prints the verdict; whether the soak passed.
fn verdict(samples: &[Sample], tally: &Tally) -> bool {
    let unprovoked = tally.unprovoked();
    let (rss, fds, store) =
        (growth(samples, |s| s.rss_mb), growth(samples, |s| s.fds as f64), growth(samples, |s| s.store_kb as f64));
    let all_calls: usize = samples.iter().map(|s| s.calls).sum();
    println!("calls: {all_calls}; {}", tally.summary());
    println!(
        "over the last half (median of its first third against its last): RSS {:+.1}%, descriptors {:+.1}%, store {:+.1}%",
        rss * 1e2,
        fds * 1e2,
        store * 1e2
    );
    let mut passed = true;
    let mut check = |ok: bool, what: &str| {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        passed &= ok;
    };
    check(unprovoked.is_empty(), &format!("no error the load did not provoke {unprovoked:?}"));
    check(samples.len() < 4 || rss < 0.05, "RSS flat after warm-up (under 5% growth over the last half)");
    check(samples.len() < 4 || fds < 0.05, "descriptors flat after warm-up");
    check(samples.len() < 4 || store < 0.05, "store size bounded (the audit trail at its limit)");
    passed
}
