//! Prometheus metrics (`GET /metrics`), through `prometheus-client`.
//!
//! Two kinds of figures. Those counted as things happen live in `Metrics`:
//! plugin calls (`plugins` records them), MCP requests (the data path),
//! policy decisions (the deploy check), health checks (the watch), and what
//! the event stream tells (`from_events`: deploy phase durations, OOM kills).
//! Those that describe the present (deployments by state, approvals by
//! status, restarts, the engine's CPU, memory and network figures) are read
//! at each scrape into a `Snapshot` and rendered beside them.
//!
//! Every label value is bounded: names from the host's config (plugins,
//! backends), deployment ids (which exist only once a deploy was accepted),
//! or one of a fixed list (`mcp_method`, `policy_field`); never a string a
//! client chose.

mod from_events;
mod labels;
mod snapshot;
pub mod text_format;

pub use from_events::follow_events;
pub use labels::{mcp_method, policy_field};
pub use snapshot::{DeploymentFigures, Snapshot};

use labels::{Deployment, DeploymentCheck, McpRequest, McpTimed, PluginCall, PluginTimed, PolicyDecision};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The media type of the exposition `render` writes (`text_format` has the other).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// From 0.25 ms to ~8 s: the MCP data path and plugin calls.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// From 50 ms to ~14 min: pulls, builds, starts.
fn phase_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    pub plugin_calls: PluginCalls,
    mcp_requests: Family<McpRequest, Counter>,
    mcp_request_seconds: Histograms<McpTimed>,
    policy_decisions: Family<PolicyDecision, Counter>,
    health_checks: Family<DeploymentCheck, Counter>,
    deploy_phase_seconds: Histograms<labels::Phase>,
    oom_kills: Family<Deployment, Counter>,
    egress_connections: Family<labels::Egress, Counter>,
    /// Label values of each deployment's series that no fixed list names,
    /// so that a deleted deployment's series can all be found and dropped.
    seen: std::sync::Mutex<std::collections::HashMap<String, Seen>>,
}

#[derive(Default)]
struct Seen {
    health_kinds: std::collections::BTreeSet<&'static str>,
    egress_entries: std::collections::BTreeSet<String>,
}

/// What the plugin host records each call in (cheap to clone: shared families).
#[derive(Clone)]
pub struct PluginCalls {
    calls: Family<PluginCall, Counter>,
    seconds: Histograms<PluginTimed>,
}

impl PluginCalls {
    /// `outcome`: `ok`, `error` (the plugin answered with an error) or
    /// `failed` (it trapped, ran out of time, memory or fuel).
    pub fn record(&self, plugin: &str, function: &'static str, outcome: &'static str, took: Duration) {
        let plugin = plugin.to_string();
        self.calls.get_or_create(&PluginCall { plugin: plugin.clone(), function, outcome }).inc();
        self.seconds.get_or_create(&PluginTimed { plugin, function }).observe(took.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mcp_runtime");
        let plugin_calls = PluginCalls {
            calls: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        };
        let metrics = Metrics {
            plugin_calls,
            mcp_requests: Family::default(),
            mcp_request_seconds: Family::new_with_constructor(latency_histogram),
            policy_decisions: Family::default(),
            health_checks: Family::default(),
            deploy_phase_seconds: Family::new_with_constructor(phase_histogram),
            oom_kills: Family::default(),
            egress_connections: Family::default(),
            seen: Default::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register("plugin_calls", "Plugin calls by plugin, function and outcome", m.plugin_calls.calls.clone());
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call latency, instantiation included",
            m.plugin_calls.seconds.clone(),
        );
        registry.register(
            "mcp_requests",
            "MCP requests through /servers/{id}/mcp by deployment, method and outcome",
            m.mcp_requests.clone(),
        );
        registry.register(
            "mcp_request_duration_seconds",
            "Time to the answer's headers on the MCP data path",
            m.mcp_request_seconds.clone(),
        );
        registry.register(
            "policy_decisions",
            "Guardrail policy denials and warnings of deploy requests, by field",
            m.policy_decisions.clone(),
        );
        registry.register("health_checks", "Health checks by deployment, kind and result", m.health_checks.clone());
        registry.register(
            "deploy_phase_duration_seconds",
            "Time a deployment spent pulling, building, starting and connecting",
            m.deploy_phase_seconds.clone(),
        );
        registry.register("oom_kills", "Servers the engine killed for running out of memory", m.oom_kills.clone());
        registry.register(
            "egress_connections",
            "Connections through a deployment's egress proxy, by the allowlist entry that allowed them, or refused",
            m.egress_connections.clone(),
        );
        Metrics { registry, ..metrics }
    }

    pub fn mcp_request(&self, deployment: &str, method: &'static str, status: u16, took: Duration) {
        let outcome = match status {
            200..=399 => "ok",
            400..=499 => "refused",
            _ => "failed",
        };
        let deployment = deployment.to_string();
        self.mcp_requests.get_or_create(&McpRequest { deployment: deployment.clone(), method, outcome }).inc();
        self.mcp_request_seconds.get_or_create(&McpTimed { deployment, method }).observe(took.as_secs_f64());
    }

    /// A deploy request's policy outcome: its denial or its warnings.
    pub fn policy_decision(&self, field: &str, decision: &'static str) {
        self.policy_decisions.get_or_create(&PolicyDecision { field: policy_field(field), decision }).inc();
    }

    pub fn health_check(&self, deployment: &str, kind: &'static str, healthy: bool) {
        let result = if healthy { "healthy" } else { "failing" };
        self.seen(deployment, |seen| seen.health_kinds.insert(kind));
        self.health_checks.get_or_create(&DeploymentCheck { deployment: deployment.to_string(), kind, result }).inc();
    }

    /// A connection through an egress proxy: allowed by `entry`, or refused (`None`).
    pub fn egress_connection(&self, deployment: &str, entry: Option<&str>) {
        let outcome = if entry.is_some() { "allowed" } else { "refused" };
        self.seen(deployment, |seen| seen.egress_entries.insert(entry.unwrap_or_default().into()));
        let labels = labels::Egress {
            deployment: deployment.to_string(),
            allowed_by: entry.unwrap_or_default().into(),
            outcome,
        };
        self.egress_connections.get_or_create(&labels).inc();
    }

    fn seen(&self, deployment: &str, note: impl FnOnce(&mut Seen) -> bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Every health check passes here: the id is copied only the first time.
        match seen.get_mut(deployment) {
            Some(known) => note(known),
            None => note(seen.entry(deployment.to_string()).or_default()),
        };
    }

    /// Drops a deleted deployment's series: ids are never reused, and a
    /// host that deploys and deletes for weeks would keep them all.
    fn forget_deployment(&self, deployment: &str) {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(deployment).unwrap_or_default();
        let deployment = deployment.to_string();
        for method in labels::mcp_methods() {
            self.mcp_request_seconds.remove(&McpTimed { deployment: deployment.clone(), method });
            for outcome in ["ok", "refused", "failed"] {
                self.mcp_requests.remove(&McpRequest { deployment: deployment.clone(), method, outcome });
            }
        }
        for kind in seen.health_kinds {
            for result in ["healthy", "failing"] {
                self.health_checks.remove(&DeploymentCheck { deployment: deployment.clone(), kind, result });
            }
        }
        for allowed_by in seen.egress_entries {
            let outcome = if allowed_by.is_empty() { "refused" } else { "allowed" };
            self.egress_connections.remove(&labels::Egress { deployment: deployment.clone(), allowed_by, outcome });
        }
        self.oom_kills.remove(&Deployment { deployment });
    }

    fn deploy_phase(&self, phase: &'static str, seconds: f64) {
        self.deploy_phase_seconds.get_or_create(&labels::Phase { phase }).observe(seconds);
    }

    fn oom_killed(&self, deployment: &str) {
        self.oom_kills.get_or_create(&Deployment { deployment: deployment.to_string() }).inc();
    }

    /// The exposition: the live figures, then the snapshot's.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut text = String::with_capacity(16 * 1024);
        let present = snapshot.registry();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &present);
        let _ = prometheus_client::encoding::text::encode_eof(&mut text);
        text
    }
}

#[cfg(test)]
mod tests;
