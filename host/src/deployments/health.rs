//! Health checks: each connected server probed at its entry's interval (an
//! MCP ping, a TCP connect or an HTTP GET). `failure_threshold` failures in a
//! row make it `unhealthy`; its restart policy decides what follows —
//! restarted, with a backoff that doubles, until `max_restarts`, then `error`.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::catalog::{HealthCheck, Probe, RestartPolicy};
use crate::deployment::{is_health_checked, Deployment, State};
use crate::deployments::Runtime;
use crate::events::{EventData, HealthFailure, HostRestart, NoDetail, RestartLimit};
use crate::mcp::client::McpSession;
use crate::mcp::link::Target;
use crate::store::NewEvent;

/// How often the host looks for checks that are due.
pub const HEALTH_TICK: Duration = Duration::from_secs(1);
/// Checks run at once: one server that hangs delays nobody else's.
const CHECK_CONCURRENCY: usize = 16;
/// The wait before a second restart; it doubles with each one after.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MOST_BACKOFF: Duration = Duration::from_secs(300);

/// A check's outcome, as `GET /runtimes/{id}` shows the last one.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub at: chrono::DateTime<chrono::Utc>,
    pub probe: &'static str,
    pub healthy: bool,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed checks in a row, this one included.
    pub consecutive_failures: u32,
}

#[derive(Default)]
struct Probing {
    failures: u32,
    last: Option<CheckResult>,
    next_due: Option<Instant>,
    backoff: Duration,
    /// No restart before this.
    not_before: Option<Instant>,
    /// The failing server is being dealt with (marked unhealthy, restarted).
    acting: bool,
    /// The session the last MCP ping over HTTP opened, for the next.
    session: Option<McpSession>,
}

/// What the checks found, per deployment; in memory: a restarted host starts
/// counting afresh (restarts themselves are in the record).
#[derive(Default)]
pub struct HealthBook {
    by_deployment: Mutex<HashMap<String, Probing>>,
}

impl HealthBook {
    fn with<R>(&self, id: &str, f: impl FnOnce(&mut Probing) -> R) -> R {
        f(self.by_deployment.lock().expect("health book poisoned").entry(id.to_string()).or_default())
    }

    pub fn last(&self, id: &str) -> Option<CheckResult> {
        self.by_deployment.lock().expect("health book poisoned").get(id).and_then(|p| p.last.clone())
    }

    pub fn forget(&self, id: &str) {
        self.by_deployment.lock().expect("health book poisoned").remove(id);
    }

    /// Whether a check is due now; if so, the next one is `interval` away.
    fn take_due(&self, id: &str, interval: Duration, now: Instant) -> bool {
        self.with(id, |p| {
            if p.next_due.is_some_and(|due| due > now) {
                return false;
            }
            p.next_due = Some(now + interval);
            true
        })
    }

    /// Keeps the result; the failures in a row so far.
    fn record(&self, id: &str, mut result: CheckResult, now: Instant) -> u32 {
        self.with(id, |p| {
            p.failures = if result.healthy { 0 } else { p.failures + 1 };
            result.consecutive_failures = p.failures;
            // Healthy past the last backoff: the next restart may come at once.
            if result.healthy && p.not_before.is_none_or(|t| now > t) {
                p.backoff = Duration::ZERO;
            }
            p.last = Some(result);
            p.failures
        })
    }

    /// Claims the failing server for one response; false while one is under way.
    fn start_acting(&self, id: &str) -> bool {
        self.with(id, |p| !std::mem::replace(&mut p.acting, true))
    }

    fn done_acting(&self, id: &str) {
        self.with(id, |p| p.acting = false);
    }

    /// The session kept for pinging `endpoint`, if one is.
    fn take_session(&self, id: &str, endpoint: &str) -> Option<McpSession> {
        self.with(id, |p| p.session.take()).filter(|s| s.url() == endpoint)
    }

    fn keep_session(&self, id: &str, session: McpSession) {
        self.with(id, |p| p.session = Some(session));
    }

    fn failures(&self, id: &str) -> u32 {
        self.with(id, |p| p.failures)
    }

    fn may_restart(&self, id: &str, now: Instant) -> bool {
        self.with(id, |p| p.not_before.is_none_or(|t| now >= t))
    }

    fn restarted(&self, id: &str, now: Instant) {
        self.with(id, |p| {
            p.failures = 0;
            p.backoff = if p.backoff.is_zero() { FIRST_BACKOFF } else { (p.backoff * 2).min(MOST_BACKOFF) };
            p.not_before = Some(now + p.backoff);
        })
    }
}

/// The health check of a deployment read in full, if it is still checked.
fn checked(d: &Deployment) -> Option<&HealthCheck> {
    let checked = is_health_checked(d.status, d.handle.is_some(), d.is_per_session());
    d.request.as_ref().filter(|_| checked).map(|r| &r.entry.health_check)
}

impl Runtime {
    /// One pass: every check that is due, a few at a time.
    pub async fn check_health_once(self: &Arc<Self>) {
        use futures_util::StreamExt;
        let Ok(deployments) = self.glance_all() else { return };
        let now = Instant::now();
        let due = deployments.iter().filter(|d| {
            let interval = |c: &HealthCheck| Duration::from_secs(c.interval_seconds.into());
            d.checked().is_some_and(|c| self.health.take_due(&d.id, interval(c), now))
        });
        let checks: Vec<_> = due
            .map(|d| {
                let (runtime, id) = (self.clone(), d.id.clone());
                async move {
                    if let Ok(d) = runtime.get(&id) {
                        runtime.check_health(d).await
                    }
                }
            })
            .collect();
        futures_util::stream::iter(checks).buffer_unordered(CHECK_CONCURRENCY).collect::<()>().await;
    }

    async fn check_health(self: &Arc<Self>, d: Deployment) {
        let Some(check) = checked(&d).cloned() else { return };
        let started = Instant::now();
        let timeout = Duration::from_secs(check.timeout_seconds.into());
        let outcome = match tokio::time::timeout(timeout, self.probe(&d, &check)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {}s", check.timeout_seconds)),
        };
        self.metrics.health_check(&d.id, check.probe.name(), outcome.is_ok());
        let result = CheckResult {
            at: chrono::Utc::now(),
            probe: check.probe.name(),
            healthy: outcome.is_ok(),
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
            error: outcome.as_ref().err().cloned(),
            consecutive_failures: 0,
        };
        let failures = self.health.record(&d.id, result, Instant::now());
        match outcome {
            Ok(()) if d.status == State::Unhealthy => self.recovered(&d.id).await,
            Ok(()) => {}
            Err(why) if failures >= check.failure_threshold && self.health.start_acting(&d.id) => {
                // A restart lasts a stop and a start: it must not hold up other servers' checks.
                let (runtime, id, threshold) = (self.clone(), d.id.clone(), check.failure_threshold);
                self.tasks.spawn_to_completion("unhealthy server", async move {
                    runtime.unhealthy(&id, &why, threshold).await;
                    runtime.health.done_acting(&id);
                });
            }
            Err(why) => tracing::debug!(deployment = %d.id, failures, "health check failed: {why}"),
        }
    }

    async fn probe(&self, d: &Deployment, check: &HealthCheck) -> Result<(), String> {
        let endpoint = d.endpoint.as_deref().ok_or("no endpoint")?;
        match check.probe {
            Probe::McpPing if endpoint.starts_with(crate::components::COMPONENT_SCHEME) => {
                self.component_ping(&d.id).await
            }
            Probe::McpPing => match Target::of(endpoint) {
                Some(target) => self.bridge.ping(&self.tasks, &d.id, &target).await.map_err(|e| e.to_string()),
                None => self.ping_over_http(&d.id, endpoint).await,
            },
            Probe::Tcp | Probe::Http => {
                let url = reqwest::Url::parse(endpoint).map_err(|e| format!("endpoint '{endpoint}': {e}"))?;
                let host = url.host_str().ok_or("the endpoint names no host")?.to_string();
                let port = check.port.or_else(|| d.request.as_ref().map(|r| r.entry.port)).unwrap_or(80);
                if check.probe == Probe::Tcp {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await;
                    return stream.map(drop).map_err(|e| format!("{host}:{port}: {e}"));
                }
                let url = format!("http://{host}:{port}{}", check.path.as_deref().unwrap_or("/"));
                let answer = self.http.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
                match answer.status().as_u16() {
                    status if status < 400 => Ok(()),
                    status => Err(format!("{url} answered HTTP {status}")),
                }
            }
        }
    }

    /// A ping over the session the last one opened: opening one each time
    /// cost three more requests per check (and the server a session). One
    /// the server no longer knows (it restarted) is opened again before the
    /// check fails.
    async fn ping_over_http(&self, id: &str, endpoint: &str) -> Result<(), String> {
        let ping = || serde_json::json!({});
        if let Some(mut session) = self.health.take_session(id, endpoint) {
            if session.request("ping", ping()).await.is_ok() {
                self.health.keep_session(id, session);
                return Ok(());
            }
        }
        let mut session = McpSession::connect(&self.http, endpoint).await.map_err(|e| e.to_string())?;
        session.request("ping", ping()).await.map_err(|e| e.to_string())?;
        self.health.keep_session(id, session);
        Ok(())
    }

    async fn recovered(self: &Arc<Self>, id: &str) {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        if self.get(id).is_ok_and(|d| d.status == State::Unhealthy)
            && self.transition(id, State::Connected, None, |_| {}).is_ok()
        {
            let _ = self.store.record(NewEvent::for_deployment(id, EventData::HealthRecovered(NoDetail {})));
        }
    }

    /// Failing `threshold` times in a row or more: unhealthy, then restarted or failed.
    async fn unhealthy(self: &Arc<Self>, id: &str, why: &str, threshold: u32) {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        // A check may have passed while the lock was held by someone else.
        let failures = self.health.failures(id);
        if failures < threshold {
            return;
        }
        let Ok(d) = self.get(id) else { return };
        let (Some(request), Some(handle)) = (d.request.as_ref(), d.handle.clone()) else { return };
        if d.status == State::Connected {
            let message = format!("health check failing: {why}");
            if self.transition(id, State::Unhealthy, Some(message), |_| {}).is_err() {
                return;
            }
            let probe = request.entry.health_check.probe.name().into();
            let data = EventData::HealthFailing(HealthFailure { failures, error: why.into(), probe });
            let _ = self.store.record(NewEvent::for_deployment(id, data));
        } else if d.status != State::Unhealthy {
            return;
        }
        let entry = &request.entry;
        let restarts = d.restart_count + d.host_restarts;
        if entry.restart_policy == RestartPolicy::Never {
            self.fail(id, format!("unhealthy, and its restart policy is never: {why}"));
        } else if restarts >= entry.max_restarts {
            self.restart_limit_reached(id, restarts, why);
        } else if self.health.may_restart(id, Instant::now()) {
            self.restart_server(&d, &handle, "unhealthy").await;
        }
    }

    pub(super) fn restart_limit_reached(&self, id: &str, restarts: u32, why: &str) {
        let data = EventData::DeploymentRestartLimit(RestartLimit { restarts, error: why.into() });
        let _ = self.store.record(NewEvent::for_deployment(id, data));
        self.fail(id, format!("failing after {restarts} restarts: {why}"));
    }

    /// Stops and starts the server, then proves it again; under the caller's lock.
    pub(super) async fn restart_server(&self, d: &Deployment, handle: &str, why: &str) {
        let Ok(backend) = self.backend(&d.backend) else { return };
        let message = format!("restarting: {why}");
        if self.transition(&d.id, State::Starting, Some(message), |r| r.host_restarts += 1).is_err() {
            return;
        }
        self.health.restarted(&d.id, Instant::now());
        let data =
            EventData::DeploymentRestarted(HostRestart { reason: why.into(), host_restarts: d.host_restarts + 1 });
        let _ = self.store.record(NewEvent::for_deployment(&d.id, data));
        // A stdio server's link went with its process.
        self.bridge.forget(&d.id);
        let restarted = match backend.stop(handle).await {
            Ok(Ok(())) => backend.start(handle).await,
            other => other,
        };
        let outcome = match restarted {
            Ok(Ok(())) => self.await_connected(&d.id, &backend, handle).await.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(format!("{e:?}")),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            self.fail(&d.id, format!("restart failed: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> CheckResult {
        CheckResult {
            at: chrono::Utc::now(),
            probe: "mcp-ping",
            healthy: true,
            latency_ms: 1.0,
            error: None,
            consecutive_failures: 0,
        }
    }

    #[test]
    fn restarts_back_off_doubling_and_a_healthy_spell_resets_the_wait() {
        let (book, t0) = (HealthBook::default(), Instant::now());
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(book.may_restart("d", t0), "the first restart comes at once");
        book.restarted("d", t0);
        assert!(!book.may_restart("d", at(4)) && book.may_restart("d", at(5)));
        book.restarted("d", at(5));
        assert!(!book.may_restart("d", at(14)) && book.may_restart("d", at(15)), "the wait doubled");
        let failing = CheckResult { healthy: false, ..healthy() };
        assert_eq!((book.record("d", failing.clone(), at(16)), book.record("d", failing, at(17))), (1, 2));
        assert_eq!(book.record("d", healthy(), at(18)), 0, "a pass ends the run of failures");
        book.restarted("d", at(18));
        assert!(book.may_restart("d", at(23)), "healthy past the wait: back to the first one");
    }
}
