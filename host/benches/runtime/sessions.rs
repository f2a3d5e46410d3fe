//! How a server's cost grows with its clients: 1, 100 and 1,000 open MCP
//! sessions on one proxied (HTTP) and one bridged (stdio) server, opened as a
//! gateway opens them (one pooled HTTP client, a session per user), each
//! step's host memory per added session and the p99 of a call made while
//! they are all open.

use mcp_runtime::mcp::client::McpSession;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::host_process::{container_rss_mb, HostProcess};
use crate::{percentile, verdict};

const STEPS: [usize; 3] = [1, 100, 1000];
/// Sessions opened at once while growing to a step.
const OPENING: usize = 16;
const CALLS: usize = 400;
const CALLERS: usize = 8;
const TARGET_KIB_PER_SESSION: f64 = 16.0;

/// `count` more sessions with the server behind `url`.
async fn open(http: &reqwest::Client, url: &str, token: &str, count: usize) -> Vec<McpSession> {
    let mut opened = Vec::with_capacity(count);
    while opened.len() < count {
        let batch = OPENING.min(count - opened.len());
        let sessions = (0..batch).map(|_| McpSession::connect_with(http, url, Some(token.to_string())));
        for session in futures_util::future::join_all(sessions).await {
            opened.push(session.expect("an MCP session opens"));
        }
    }
    opened
}

/// p99 of `CALLS` echo calls, `CALLERS` at a time, each on a session picked in turn.
async fn call_p99(sessions: &mut [McpSession]) -> Duration {
    let per_caller = CALLS / CALLERS;
    let stride = sessions.len().div_ceil(CALLERS).max(1);
    let callers = sessions.chunks_mut(stride).map(|mine| async move {
        let mut latencies = Vec::with_capacity(per_caller);
        for i in 0..per_caller {
            let started = Instant::now();
            mine[i % mine.len()].call_tool("echo", json!({"text": "bench"})).await.expect("tool call");
            latencies.push(started.elapsed());
        }
        latencies
    });
    let mut latencies: Vec<Duration> = futures_util::future::join_all(callers).await.concat();
    latencies.sort();
    percentile(&latencies, 0.99)
}

async fn curve(host: &HostProcess, kind: &str, slug: &str) {
    let id = host.deploy_roomy(slug).await;
    host.wait_connected(&id).await;
    let url = format!("{}/servers/{id}/mcp", host.base);
    let http = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    // The first session pays for what every later one shares (the upstream link, buffers).
    let mut sessions = open(&http, &url, &host.token, 1).await;
    call_p99(&mut sessions).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The server's container keeps its own share (for a stdio server, the bridge inside it).
    let container = crate::support::container_of(&id);
    let (first, container_first) = (host.rss_mb(), container_rss_mb(&container));
    let mut line = Vec::new();
    for n in STEPS {
        let more = open(&http, &url, &host.token, n - sessions.len()).await;
        sessions.extend(more);
        let p99 = call_p99(&mut sessions).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (rss, container_rss) = (host.rss_mb(), container_rss_mb(&container));
        // Against the host with one session open: the allocator's give and take
        // makes a step's own difference noise, the whole growth is not.
        let memory = match n > 1 {
            true => {
                let per_session = (rss - first) * 1024.0 / (n - 1) as f64;
                let target = match n == STEPS[STEPS.len() - 1] {
                    true => {
                        format!(" ({} ≤ {TARGET_KIB_PER_SESSION} KiB)", verdict(per_session <= TARGET_KIB_PER_SESSION))
                    }
                    false => String::new(),
                };
                let in_container = (container_rss - container_first) * 1024.0 / (n - 1) as f64;
                format!("{per_session:+.1} KiB a session since N=1{target} (the container {in_container:+.1} KiB)")
            }
            false => "one session".into(),
        };
        line.push(format!("N={n}: host RSS {rss:.1} MB, {memory}, call p99 {:.2} ms", p99.as_secs_f64() * 1e3));
    }
    println!("  {kind} ({slug}): {}", line.join("; "));
    futures_util::future::join_all(sessions.into_iter().map(McpSession::close)).await;
    host.delete_deployment(&id).await;
}

pub async fn figures(host: &HostProcess) {
    println!(
        "open MCP sessions on one server, {} to {} (one pooled client, {CALLS} calls {CALLERS} at a time at each step):",
        STEPS[0],
        STEPS[STEPS.len() - 1]
    );
    curve(host, "proxied", "fixture").await;
    curve(host, "bridged", "fixture-stdio").await;
}
