//! Figures that describe the present, read at each scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// What the store and the engine say now.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// (backend, state, how many), every state of every backend, zeros included.
    pub deployments: Vec<(String, &'static str, u64)>,
    /// (status, how many).
    pub approvals: Vec<(&'static str, u64)>,
    /// (backend, available).
    pub backends: Vec<(String, bool)>,
    pub per_deployment: Vec<DeploymentFigures>,
    /// Background tasks alive under the host's supervisor (loops, deploys, bridges).
    pub tasks: u64,
}

/// One deployment's figures; the engine's are absent where a backend gives none.
#[derive(Debug, Default, Clone)]
pub struct DeploymentFigures {
    pub deployment: String,
    pub restarts: u64,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub network_rx_bytes: Option<u64>,
    pub network_tx_bytes: Option<u64>,
    pub instances: Option<u32>,
    pub platform_requests: Option<u64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByState {
    backend: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByStatus {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByBackend {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByDeployment {
    deployment: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

impl Snapshot {
    pub(super) fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("mcp_runtime");
        let deployments = Family::<ByState, Gauge>::default();
        for (backend, state, n) in &self.deployments {
            deployments.get_or_create(&ByState { backend: backend.clone(), state }).set(*n as i64);
        }
        registry.register("deployments", "Deployments by backend and state", deployments);
        let approvals = Family::<ByStatus, Gauge>::default();
        for (status, n) in &self.approvals {
            approvals.get_or_create(&ByStatus { status }).set(*n as i64);
        }
        registry.register("approvals", "Approval requests by status", approvals);
        let backends = Family::<ByBackend, Gauge>::default();
        for (backend, up) in &self.backends {
            backends.get_or_create(&ByBackend { backend: backend.clone() }).set(i64::from(*up));
        }
        registry.register("backend_up", "1 while a backend answers its checks", backends);
        let tasks = Gauge::<i64>::default();
        tasks.set(self.tasks as i64);
        registry.register("background_tasks", "Background tasks alive under the host's supervisor", tasks);

        let restarts = Family::<ByDeployment, Counter>::default();
        let cpu = Family::<ByDeployment, FloatGauge>::default();
        let memory = Family::<ByDeployment, Gauge>::default();
        let memory_limit = Family::<ByDeployment, Gauge>::default();
        let rx = Family::<ByDeployment, Counter>::default();
        let tx = Family::<ByDeployment, Counter>::default();
        let instances = Family::<ByDeployment, Gauge>::default();
        let platform_requests = Family::<ByDeployment, Counter>::default();
        for d in &self.per_deployment {
            let labels = ByDeployment { deployment: d.deployment.clone() };
            restarts.get_or_create(&labels).inc_by(d.restarts);
            if let Some(percent) = d.cpu_percent {
                cpu.get_or_create(&labels).set(percent);
            }
            if let Some(bytes) = d.memory_bytes {
                memory.get_or_create(&labels).set(bytes as i64);
            }
            if let Some(bytes) = d.memory_limit_bytes {
                memory_limit.get_or_create(&labels).set(bytes as i64);
            }
            if let Some(bytes) = d.network_rx_bytes {
                rx.get_or_create(&labels).inc_by(bytes);
            }
            if let Some(bytes) = d.network_tx_bytes {
                tx.get_or_create(&labels).inc_by(bytes);
            }
            if let Some(n) = d.instances {
                instances.get_or_create(&labels).set(n.into());
            }
            if let Some(n) = d.platform_requests {
                platform_requests.get_or_create(&labels).inc_by(n);
            }
        }
        registry.register("deployment_restarts", "Restarts of a deployment's server", restarts);
        registry.register("deployment_cpu_percent", "CPU use, percent of one core", cpu);
        registry.register("deployment_memory_bytes", "Memory in use", memory);
        registry.register("deployment_memory_limit_bytes", "Memory limit", memory_limit);
        registry.register("deployment_network_receive_bytes", "Bytes received", rx);
        registry.register("deployment_network_transmit_bytes", "Bytes sent", tx);
        registry.register("deployment_instances", "Instances serving now", instances);
        registry.register(
            "deployment_platform_requests",
            "HTTP requests the backend's platform counted (Code Engine, through IBM Cloud Monitoring)",
            platform_requests,
        );
        registry
    }
}
