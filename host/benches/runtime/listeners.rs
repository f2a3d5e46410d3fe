//! How live status costs grow with its watchers: 10, 100 and 1,000 open
//! `GET /runtimes/stream` listeners (each its own connection, as browsers
//! and dashboards hold them) while a deployment is stopped and started:
//! host memory per listener, and how long the change takes to reach the
//! first and the last of them.

use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::host_process::HostProcess;

const STEPS: [usize; 3] = [10, 100, 1000];
/// Streams opened at once while growing to a step.
const OPENING: usize = 32;
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(60);

/// One open stream: it reports the first frame naming `marker` in each round.
async fn listen(
    http: reqwest::Client,
    url: String,
    token: String,
    marker: String,
    round: Arc<AtomicU64>,
    arrivals: mpsc::UnboundedSender<(u64, Instant)>,
) -> tokio::task::JoinHandle<()> {
    let answer = http.get(&url).bearer_auth(&token).send().await.expect("the stream opens");
    assert!(answer.status().is_success(), "GET /runtimes/stream: {}", answer.status());
    tokio::spawn(async move {
        let mut frames = answer.bytes_stream();
        let mut reported = 0;
        while let Some(Ok(chunk)) = frames.next().await {
            let now = round.load(Ordering::Acquire);
            if now > reported && chunk.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                reported = now;
                if arrivals.send((now, Instant::now())).is_err() {
                    return;
                }
            }
        }
    })
}

pub async fn figures(host: &HostProcess) {
    let id = host.deploy_roomy("fixture").await;
    host.wait_connected(&id).await;
    let url = format!("{}/runtimes/stream", host.base);
    let http = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let round = Arc::new(AtomicU64::new(0));
    let (report, mut arrivals) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    let mut before = (0usize, host.rss_mb());
    println!("open /runtimes/stream listeners while a deployment stops and starts (each on its own connection):");
    for n in STEPS {
        while listeners.len() < n {
            let batch = OPENING.min(n - listeners.len());
            let opening = (0..batch).map(|_| {
                listen(http.clone(), url.clone(), host.token.clone(), id.clone(), round.clone(), report.clone())
            });
            listeners.extend(futures_util::future::join_all(opening).await);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = host.rss_mb();
        let per_listener = (rss - before.1) * 1024.0 / (n - before.0) as f64;
        let mut reached = Vec::new();
        for action in ["stop", "start"] {
            let this_round = round.fetch_add(1, Ordering::AcqRel) + 1;
            let started = Instant::now();
            host.post(&format!("/runtimes/{id}/{action}"), serde_json::json!({})).await;
            let mut times = Vec::with_capacity(n);
            while times.len() < n {
                let arrival = tokio::time::timeout(ARRIVAL_DEADLINE, arrivals.recv()).await;
                let (arrived_round, at) = arrival.expect("every listener hears of the change").expect("listening");
                if arrived_round == this_round {
                    times.push(at - started);
                }
            }
            times.sort();
            reached.push((times[0], times[times.len() - 1]));
            if action == "start" {
                host.wait_connected(&id).await;
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (first, last) =
            reached.iter().fold((Duration::MAX, Duration::ZERO), |(f, l), (a, b)| (f.min(*a), l.max(*b)));
        println!(
            "  N={n}: host RSS {rss:.1} MB, {per_listener:.1} KiB a listener; a stop or start reached the first in \
             {:.1} ms, the last in {:.1} ms (after the request was sent)",
            ms(first),
            ms(last)
        );
        before = (n, rss);
    }
    for listener in listeners {
        listener.abort();
    }
    host.delete_deployment(&id).await;
}
