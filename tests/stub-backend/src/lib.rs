//! A backend that enforces everything and creates nothing. A deployment's
//! handle is its id; its status is `running` at the endpoint the settings name
//! (`{"endpoint": "http://127.0.0.1:9/mcp"}`), where nothing answers unless a
//! test put a server there; with `"vanished": true`, every deployment is gone
//! (as after an engine lost its data), which a restarted host sees at once;
//! with `"filters_egress_hosts": false`, it controls egress on/off only.

wit_bindgen::generate!({ world: "runtime-backend", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::backend::{BackendError, Deployed, DeploymentStatus, Guest, Prepared, ResourceUsage};
use guest_kit::types::{
    BackendCapabilities, DeployRequest, DeploymentState, EffectiveGuardrails, IsolationLevel, LogLine, LogQuery,
    ObservabilityType, Source, Warning,
};

#[derive(serde::Deserialize)]
struct Settings {
    endpoint: String,
    #[serde(default)]
    vanished: bool,
    #[serde(default = "yes")]
    filters_egress_hosts: bool,
}

fn yes() -> bool {
    true
}

struct Stub;

impl Guest for Stub {
    fn capabilities() -> BackendCapabilities {
        BackendCapabilities {
            supports_compose: true,
            supports_readonly_fs: true,
            supports_custom_capabilities: true,
            supports_capability_add: true,
            supports_build_cache: true,
            supports_egress_host_filtering: guest_kit::settings::<Settings>().is_ok_and(|s| s.filters_egress_hosts),
            supports_pid_limits: true,
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

    fn validate(_: DeployRequest, _: EffectiveGuardrails) -> Result<Vec<Warning>, BackendError> {
        Ok(vec![])
    }

    fn prepare(request: DeployRequest) -> Result<Prepared, BackendError> {
        let image = match request.entry.source {
            Source::Image(image) => image.image,
            _ => "stub".into(),
        };
        Ok(Prepared { image, warnings: vec![], build: None })
    }

    fn deploy(request: DeployRequest, _: EffectiveGuardrails, _: String) -> Result<Deployed, BackendError> {
        Ok(Deployed { handle: request.deployment_id, warnings: vec![] })
    }

    fn status(_: String) -> Result<DeploymentStatus, BackendError> {
        let settings: Settings = guest_kit::settings().map_err(BackendError::Unavailable)?;
        if settings.vanished {
            return Err(BackendError::NotFound("the stub backend lost every deployment".into()));
        }
        Ok(DeploymentStatus {
            state: DeploymentState::Running,
            message: None,
            endpoint: Some(settings.endpoint),
            restart_count: 0,
            exit_code: None,
            oom_killed: false,
        })
    }

    fn stop(_: String) -> Result<(), BackendError> {
        Ok(())
    }

    fn start(_: String) -> Result<(), BackendError> {
        Ok(())
    }

    fn remove(_: String) -> Result<(), BackendError> {
        Ok(())
    }

    fn usage(_: String) -> Result<ResourceUsage, BackendError> {
        Ok(ResourceUsage {
            cpu_ns: None,
            memory_bytes: None,
            memory_limit_bytes: None,
            network_rx_bytes: None,
            network_tx_bytes: None,
            started_at: None,
            instances: None,
            requests_total: None,
        })
    }

    fn logs(_: String, _: LogQuery) -> Result<Vec<LogLine>, BackendError> {
        Ok(vec![])
    }

    fn orphans(_: Vec<String>) -> Result<Vec<String>, BackendError> {
        Ok(vec![])
    }

    fn remove_leftovers(_: String) -> Result<(), BackendError> {
        Ok(())
    }
}

export!(Stub);
