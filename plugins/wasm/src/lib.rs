//! WebAssembly backend: a `wasm` catalog entry's component is served inside
//! the host through the `server-components` capability. The host fetches
//! and checks the component, makes the deployment's guardrails its sandbox
//! and answers MCP for it; this plugin only says what the backend can
//! enforce and maps the lifecycle. No container engine is involved.
//!
//! The handle is the deployment's id: the host keeps what the component is
//! served with, and serves it again after the host itself restarts.

wit_bindgen::generate!({ world: "runtime-backend", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::backend::{BackendError, Deployed, DeploymentStatus, Guest, Prepared, ResourceUsage};
use guest_kit::types::{
    BackendCapabilities, DeployRequest, DeploymentState, EffectiveGuardrails, IsolationLevel, LogLine, LogQuery,
    ObservabilityType, Source, Warning,
};
use guest_kit::{denial, warning};
use mcp_runtime::plugin::guardrail_options;
use mcp_runtime::plugin::server_components::{self as components, ComponentError, ComponentSpec};

/// How the host names a `wasm` entry's source to plugins.
const COMPONENT_PREFIX: &str = "wasm@sha256:";

impl From<ComponentError> for BackendError {
    fn from(e: ComponentError) -> BackendError {
        match e {
            ComponentError::Invalid(d) => BackendError::Invalid(d),
            ComponentError::NotFound(why) => BackendError::NotFound(why),
            ComponentError::Unavailable(why) => BackendError::Unavailable(why),
            ComponentError::Failed(why) => BackendError::Failed(why),
        }
    }
}

struct WasmBackend;

impl Guest for WasmBackend {
    /// What a component's sandbox is: no root filesystem but the read-only
    /// preopens granted, no processes, no Linux capabilities, outgoing
    /// `wasi:http` only to the allowlist (the egress proxy's rules).
    fn capabilities() -> BackendCapabilities {
        BackendCapabilities {
            supports_compose: false,
            supports_readonly_fs: true,
            supports_custom_capabilities: false,
            supports_capability_add: false,
            supports_build_cache: false,
            supports_egress_host_filtering: true,
            supports_pid_limits: false,
            supports_stdio: false,
            network_isolation_level: IsolationLevel::Container,
            observability_type: ObservabilityType::Native,
            max_cpu_millis: 0,
            max_memory_bytes: 0,
            max_timeout_seconds: 0,
        }
    }

    fn check() -> Result<(), BackendError> {
        Ok(())
    }

    fn validate(request: DeployRequest, _: EffectiveGuardrails) -> Result<Vec<Warning>, BackendError> {
        // Learn mode records what a proxy sees; components have none to watch.
        let learn = match guardrail_options::egress_learn() {
            true => vec![warning(
                "network.egress_audit",
                "components are not watched in learn mode: only the allowlist is reachable, and nothing is recorded",
            )],
            false => Vec::new(),
        };
        match &request.entry.source {
            Source::Image(source) if source.image.starts_with(COMPONENT_PREFIX) => Ok(learn),
            _ => Err(BackendError::Invalid(denial(
                "source.type",
                "the wasm backend runs WebAssembly components: an entry whose source type is wasm",
            ))),
        }
    }

    fn prepare(request: DeployRequest) -> Result<Prepared, BackendError> {
        let info = components::prepare(&request.deployment_id)?;
        Ok(Prepared { image: info.digest, warnings: Vec::new(), build: None })
    }

    fn deploy(
        request: DeployRequest,
        guardrails: EffectiveGuardrails,
        image: String,
    ) -> Result<Deployed, BackendError> {
        let source = components::deployment_component()
            .ok_or_else(|| BackendError::Invalid(denial("source.type", "not a wasm entry")))?;
        let spec = ComponentSpec {
            deployment_id: request.deployment_id.clone(),
            digest: image,
            permissions: source.permissions,
            guardrails,
            env: request.env,
        };
        let status = components::start(&spec)?;
        Ok(Deployed { handle: request.deployment_id, warnings: status.warnings })
    }

    /// A call the sandbox stopped discarded its instance: it counts as a
    /// restart, its reason as the message.
    fn status(handle: String) -> Result<DeploymentStatus, BackendError> {
        let status = components::status(&handle)?;
        Ok(DeploymentStatus {
            state: if status.serving { DeploymentState::Running } else { DeploymentState::Stopped },
            message: status.last_error,
            endpoint: Some(status.endpoint),
            restart_count: status.stopped_calls,
            exit_code: None,
            oom_killed: false,
        })
    }

    fn stop(handle: String) -> Result<(), BackendError> {
        Ok(components::stop(&handle)?)
    }

    fn start(handle: String) -> Result<(), BackendError> {
        components::resume(&handle).map(drop).map_err(BackendError::from)
    }

    fn remove(handle: String) -> Result<(), BackendError> {
        Ok(components::remove(&handle)?)
    }

    fn usage(handle: String) -> Result<ResourceUsage, BackendError> {
        let status = components::status(&handle)?;
        Ok(ResourceUsage {
            cpu_ns: Some(status.cpu_ns),
            memory_bytes: Some(status.memory_peak_bytes),
            memory_limit_bytes: Some(status.memory_limit_bytes).filter(|&limit| limit > 0),
            network_rx_bytes: None,
            network_tx_bytes: None,
            started_at: status.started_at,
            instances: None,
            requests_total: Some(status.calls),
        })
    }

    fn logs(handle: String, query: LogQuery) -> Result<Vec<LogLine>, BackendError> {
        Ok(components::logs(&handle, query)?)
    }

    fn orphans(known: Vec<String>) -> Result<Vec<String>, BackendError> {
        Ok(components::known().into_iter().filter(|id| !known.contains(id)).collect())
    }

    fn remove_leftovers(deployment_id: String) -> Result<(), BackendError> {
        Ok(components::remove(&deployment_id)?)
    }
}

export!(WasmBackend);
