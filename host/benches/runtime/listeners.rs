//! How live status costs grow with its watchers: 10, 100 and 1,000 open
//! `GET /runtimes/stream` listeners (each its own connection, as browsers
//! and dashboards hold them) while a deployment is stopped and started:
//! host memory per listener, and how long a change takes to go from the
//! first of them to the last.

use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::host_process::HostProcess;

const STEPS: [usize; 3] = [10, 100, 1000];
/// Streams opened at once while growing to a step.
const OPENING: usize = 32;
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(60);

/// One open stream: it reports each frame that says `marker`'s deployment
/// stopped or connected, by the event's sequence number, when it arrived.
async fn listen(
    http: reqwest::Client,
    url: String,
    token: String,
    marker: String,
    arrivals: mpsc::UnboundedSender<(u64, Instant)>,
) -> tokio::task::JoinHandle<()> {
    let answer = http.get(&url).bearer_auth(&token).send().await.expect("the stream opens");
    assert!(answer.status().is_success(), "GET /runtimes/stream: {}", answer.status());
    tokio::spawn(async move {
        let mut chunks = answer.bytes_stream();
        let mut pending = String::new();
        while let Some(Ok(chunk)) = chunks.next().await {
            let at = Instant::now();
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find("\n\n") {
                let frame: String = pending.drain(..end + 2).collect();
                let settled = frame.contains(r#""to":"stopped""#) || frame.contains(r#""to":"connected""#);
                if !settled || !frame.contains(&marker) {
                    continue;
                }
                let seq = frame.lines().find_map(|l| l.strip_prefix("id: ")?.trim().parse().ok());
                if arrivals.send((seq.unwrap_or(0), at)).is_err() {
                    return;
                }
            }
        }
    })
}

/// Waits until one event newer than `after` has reached all `n` listeners:
/// its sequence number, and when it reached the first and the last.
async fn reached_all(
    arrivals: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
    after: u64,
    n: usize,
) -> (u64, Instant, Instant) {
    let mut by_event: HashMap<u64, Vec<Instant>> = HashMap::new();
    loop {
        let arrival = tokio::time::timeout(ARRIVAL_DEADLINE, arrivals.recv()).await;
        let (seq, at) = arrival.expect("every listener hears of the change").expect("listening");
        if seq <= after {
            continue;
        }
        let times = by_event.entry(seq).or_default();
        times.push(at);
        if times.len() == n {
            let first = *times.iter().min().unwrap();
            let last = *times.iter().max().unwrap();
            return (seq, first, last);
        }
    }
}

pub async fn figures(host: &HostProcess) {
    let id = host.deploy_roomy("fixture").await;
    host.wait_connected(&id).await;
    let url = format!("{}/runtimes/stream", host.base);
    let http = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let (report, mut arrivals) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    let mut last_seq = 0;
    let none_open = host.rss_mb();
    println!("open /runtimes/stream listeners while a deployment stops and starts (each on its own connection):");
    for n in STEPS {
        while listeners.len() < n {
            let batch = OPENING.min(n - listeners.len());
            let opening =
                (0..batch).map(|_| listen(http.clone(), url.clone(), host.token.clone(), id.clone(), report.clone()));
            listeners.extend(futures_util::future::join_all(opening).await);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = host.rss_mb();
        // Over all the listeners open: a step's own difference is the allocator's noise.
        let memory = match rss - none_open >= 2.0 {
            true => format!("{:.1} KiB a listener", (rss - none_open) * 1024.0 / n as f64),
            false => format!("{:+.1} MB since none were open (noise at this N)", rss - none_open),
        };
        // How long one event takes to go from the first listener to the last: the fan-out.
        let mut spread = Duration::ZERO;
        for action in ["stop", "start"] {
            host.post(&format!("/runtimes/{id}/{action}"), serde_json::json!({})).await;
            let (seq, first, last) = reached_all(&mut arrivals, last_seq, n).await;
            (last_seq, spread) = (seq, spread.max(last - first));
            while arrivals.try_recv().is_ok() {}
        }
        println!(
            "  N={n}: host RSS {rss:.1} MB, {memory}; a state change reached the last \
             listener {:.2} ms after the first (the slower of a stop and a start)",
            spread.as_secs_f64() * 1e3
        );
    }
    for listener in listeners {
        listener.abort();
    }
    host.delete_deployment(&id).await;
}
