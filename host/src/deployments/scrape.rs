//! What `GET /metrics` shows of the present: deployments by backend and
//! state, approvals by status, and each deployment's figures as the usage
//! sampler last read them, beside what is counted as it happens (`metrics`).

use super::RuntimeError;
use crate::approvals::{ApprovalFilter, ApprovalStatus};
use crate::deployment::State as DeployState;
use crate::deployments::Runtime;
use crate::metrics::{DeploymentFigures, Snapshot};

impl Runtime {
    /// The exposition: counted figures, and the present as the store knows
    /// it and the usage sampler last read it.
    pub fn render_metrics(&self) -> Result<String, RuntimeError> {
        Ok(self.metrics.render(&self.snapshot()?))
    }

    fn snapshot(&self) -> Result<Snapshot, RuntimeError> {
        let deployments = self.list()?;
        let backends = self.backend_names();
        let mut snapshot = Snapshot { tasks: self.tasks.alive() as u64, ..Default::default() };
        for (backend, unavailable) in &backends {
            snapshot.backends.push((backend.clone(), unavailable.is_none()));
            for state in DeployState::ALL {
                let n = deployments.iter().filter(|d| d.backend == *backend && d.status == state).count();
                snapshot.deployments.push((backend.clone(), state.name(), n as u64));
            }
        }
        let approvals = self.approvals.list(&ApprovalFilter::default())?;
        for status in ApprovalStatus::ALL {
            let n = approvals.iter().filter(|a| a.status == status).count();
            snapshot.approvals.push((status.name(), n as u64));
        }
        snapshot.per_deployment = deployments
            .into_iter()
            .map(|d| {
                let usage = self.usage(&d).unwrap_or_default();
                DeploymentFigures {
                    restarts: (d.restart_count + d.host_restarts).into(),
                    deployment: d.id,
                    cpu_percent: usage.cpu_percent,
                    memory_bytes: usage.memory_bytes,
                    memory_limit_bytes: usage.memory_limit_bytes,
                    network_rx_bytes: usage.network_rx_bytes,
                    network_tx_bytes: usage.network_tx_bytes,
                    instances: usage.instances,
                    platform_requests: usage.requests_total,
                }
            })
            .collect();
        Ok(snapshot)
    }
}
