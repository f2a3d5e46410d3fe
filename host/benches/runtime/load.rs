//! A closed-loop MCP load: `clients` callers (MCP sessions, each on its own
//! connection), calling `echo` back to back for a fixed time, against a
//! server directly and through the host in alternating turns.

use mcp_runtime::mcp::client::McpSession;
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Load {
    pub calls: usize,
    pub elapsed: Duration,
    /// Every call's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Load {
    /// `callers` calling for `duration`, counted in this load: the callers again.
    async fn turn<C: Caller>(&mut self, callers: Vec<C>, duration: Duration) -> Vec<C> {
        let started = Instant::now();
        let (callers, latencies) = slice(callers, duration).await;
        self.elapsed += started.elapsed();
        self.calls += latencies.len();
        self.latencies.extend(latencies);
        callers
    }

    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        crate::percentile(&self.latencies, p)
    }

    /// Microseconds of `cpu` (a process's, over this load) per call.
    pub fn cpu_per_call(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.calls.max(1) as f64
    }
}

/// `callers` alone calling for `duration`: the load, and the callers again.
pub async fn alone<C: Caller>(callers: Vec<C>, duration: Duration) -> (Load, Vec<C>) {
    let mut load = Load::default();
    let callers = load.turn(callers, duration).await;
    load.latencies.sort();
    (load, callers)
}

/// One client of the load: calls `echo` and waits for its answer.
pub trait Caller: Send + Sized + 'static {
    fn echo(&mut self) -> impl Future<Output = ()> + Send;
    /// Ends the caller's session, if it has one.
    fn end(self) -> impl Future<Output = ()> + Send;
}

impl Caller for McpSession {
    async fn echo(&mut self) {
        self.call_tool("echo", json!({"text": "bench"})).await.expect("tool call");
    }

    async fn end(self) {
        self.close().await
    }
}

/// `clients` MCP sessions with the server at `url`, each on its own connection, warmed up.
pub async fn sessions(url: &str, bearer: Option<&str>, clients: usize) -> Vec<McpSession> {
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        let http = reqwest::Client::new();
        let mut session =
            McpSession::connect_with(&http, url, bearer.map(String::from)).await.expect("MCP session opens");
        session.call_tool("echo", json!({"text": "warm"})).await.expect("warm-up call");
        sessions.push(session);
    }
    sessions
}

/// Every caller calling back to back for `duration`: the callers again, and each call's latency.
async fn slice<C: Caller>(callers: Vec<C>, duration: Duration) -> (Vec<C>, Vec<Duration>) {
    let end = Instant::now() + duration;
    let workers: Vec<_> = callers
        .into_iter()
        .map(|mut caller| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < end {
                    let call = Instant::now();
                    caller.echo().await;
                    latencies.push(call.elapsed());
                }
                (caller, latencies)
            })
        })
        .collect();
    let (mut callers, mut latencies) = (Vec::new(), Vec::new());
    for worker in workers {
        let (caller, calls) = worker.await.unwrap();
        callers.push(caller);
        latencies.extend(calls);
    }
    (callers, latencies)
}

/// The same load straight at a server and through the host, one after the
/// other in the same run: what going through the host costs.
pub struct Comparison {
    pub base: Load,
    pub through: Load,
}

/// Each side runs in this many turns, alternating: a machine whose speed
/// drifts during the run (a shared CI host) slows both sides alike.
const TURNS: u32 = 6;

impl Comparison {
    pub async fn measure(direct: &str, through: &str, token: &str, clients: usize, run: Duration) -> Comparison {
        let (base, through) = (sessions(direct, None, clients).await, sessions(through, Some(token), clients).await);
        Self::between(base, through, run).await
    }

    /// The same load from two sets of callers, in alternating turns.
    pub async fn between(mut a: Vec<impl Caller>, mut b: Vec<impl Caller>, run: Duration) -> Comparison {
        let (mut base, mut through) = (Load::default(), Load::default());
        for _ in 0..TURNS {
            a = base.turn(a, run / TURNS).await;
            b = through.turn(b, run / TURNS).await;
        }
        futures_util::future::join_all(a.into_iter().map(Caller::end)).await;
        futures_util::future::join_all(b.into_iter().map(Caller::end)).await;
        base.latencies.sort();
        through.latencies.sort();
        Comparison { base, through }
    }

    /// Throughput through the host as a share of direct.
    pub fn ratio(&self) -> f64 {
        self.through.per_second() / self.base.per_second()
    }

    /// Milliseconds the host adds at percentile `p`.
    pub fn overhead_ms(&self, p: f64) -> f64 {
        (self.through.percentile(p).as_secs_f64() - self.base.percentile(p).as_secs_f64()) * 1e3
    }

    /// `direct 8000/s p50 0.12 ms | proxied 4000/s p50 0.24 ms p99 0.33 ms = 0.50× throughput`
    pub fn summary(&self, direct: &str, through: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "{direct} {:>6.0}/s p50 {:.2} ms | {through} {:>6.0}/s p50 {:.2} ms p99 {:.2} ms = {:.2}× throughput",
            self.base.per_second(),
            ms(self.base.percentile(0.50)),
            self.through.per_second(),
            ms(self.through.percentile(0.50)),
            ms(self.through.percentile(0.99)),
            self.ratio(),
        )
    }
}

/// Plain GETs from `clients` connections for a fixed time: requests per second.
pub async fn gets(url: &str, bearer: &str, clients: usize, duration: Duration) -> f64 {
    let end = Instant::now() + duration;
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (url, bearer) = (url.to_string(), bearer.to_string());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut count = 0usize;
                while Instant::now() < end {
                    let answer = http.get(&url).bearer_auth(&bearer).send().await.expect("answers");
                    assert!(answer.status().is_success(), "GET {url}: {}", answer.status());
                    answer.bytes().await.unwrap();
                    count += 1;
                }
                count
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}
