//! Compose stacks: one network, one container per service (each reached by
//! its service name), started in the order the host checked, each after its
//! dependencies are up, healthy or done as asked, and all under the
//! deployment's guardrails. A stack that cannot start leaves nothing behind.

use crate::exports::mcp_runtime::plugin::backend::BackendError;
use crate::mcp_runtime::plugin::container_engine::{self as engine, ContainerState};
use crate::{container_spec, engine_error, invalid};
use guest_kit::types::{ComposeSource, DeployRequest, EffectiveGuardrails, StackService, StartCondition};

/// How long a dependency may take to be up, healthy or done.
const DEPENDENCY_DEADLINE_MS: u64 = 120_000;
const POLL_MS: u64 = 250;

/// Label naming the service a container runs.
pub const SERVICE_LABEL: &str = "mcp-runtime.service";

/// Creates and starts every service; (service, container) in starting order.
pub fn start_stack(
    request: &DeployRequest,
    g: &EffectiveGuardrails,
    stack: &ComposeSource,
    network: &str,
) -> Result<Vec<(String, String)>, BackendError> {
    if stack.services.is_empty() {
        return Err(invalid("source.compose_file", "the stack has no services the host could check"));
    }
    let mut started: Vec<(String, String)> = Vec::new();
    for service in &stack.services {
        let outcome = wait_for_dependencies(service, &started).and_then(|()| {
            let is_main = service.name == stack.main_service;
            let spec = service_spec(request, g, network, service, is_main);
            let id = engine::create_container(&spec).map_err(engine_error)?;
            started.push((service.name.clone(), id.clone()));
            engine::start_container(&id).map_err(engine_error)
        });
        if let Err(e) = outcome {
            for (_, id) in started.iter().rev() {
                let _ = engine::remove_container(id);
            }
            return Err(e);
        }
    }
    Ok(started)
}

fn service_spec(
    request: &DeployRequest,
    g: &EffectiveGuardrails,
    network: &str,
    service: &StackService,
    is_main: bool,
) -> engine::ContainerSpec {
    let served = crate::stdio::Served::attached_if_stdio(request, service.image.clone());
    let mut spec = container_spec(request, g, network, &served);
    spec.name = format!("{network}-{}", service.name);
    spec.labels.push((SERVICE_LABEL.into(), service.name.clone()));
    spec.network_aliases = vec![service.name.clone()];
    // The deployment's environment is the MCP server's; every service has its own from the file.
    let mut env = service.env.clone();
    if is_main {
        env.extend(request.env.iter().cloned());
    }
    spec.env = env;
    // The file's command; for the MCP server, the entry's where the file says none.
    let (entry_command, entry_args) = if is_main { (spec.command.take(), spec.args.take()) } else { (None, None) };
    spec.command = service.entrypoint.clone().or(entry_command);
    spec.args = service.command.clone().or(entry_args);
    spec.user = service.user.clone();
    spec.read_only_root = spec.read_only_root || service.read_only;
    spec.tmpfs.extend(service.tmpfs.iter().cloned());
    if spec.read_only_root && !spec.tmpfs.iter().any(|t| t == crate::SCRATCH_TMPFS) {
        spec.tmpfs.push(crate::SCRATCH_TMPFS.into());
    }
    spec.volumes = service
        .volumes
        .iter()
        .map(|(volume, path)| engine::VolumeMount { volume: format!("{network}-{volume}"), path: path.clone() })
        .collect();
    // The file's own limits where it set them (the host checked they fit the profile).
    spec.nano_cpus = service.cpu_millis.map(|m| u64::from(m) * 1_000_000).or(spec.nano_cpus);
    spec.memory_bytes = service.memory_bytes.or(spec.memory_bytes);
    spec.pids_limit = service.pids.or(spec.pids_limit);
    spec.cap_add.extend(service.cap_add.iter().filter(|c| !spec.cap_add.contains(c)).cloned().collect::<Vec<_>>());
    // Dropping more than the profile does only narrows a service.
    spec.cap_drop.extend(service.cap_drop.iter().filter(|c| !spec.cap_drop.contains(c)).cloned().collect::<Vec<_>>());
    spec.healthcheck = service.healthcheck.clone();
    spec.stdin_open = is_main && spec.stdin_open;
    spec
}

/// Waits until each dependency of `service` is as its condition asks.
fn wait_for_dependencies(service: &StackService, started: &[(String, String)]) -> Result<(), BackendError> {
    for (dependency, condition) in &service.depends_on {
        let id = started.iter().find(|(name, _)| name == dependency).map(|(_, id)| id.clone());
        let id = id.ok_or_else(|| invalid("source.compose_file", &format!("'{dependency}' was not started first")))?;
        let mut waited = 0;
        loop {
            let info = engine::inspect_container(&id).map_err(engine_error)?;
            let exited = matches!(info.state, ContainerState::Exited | ContainerState::Dead);
            let code = info.exit_code.unwrap_or_default();
            let ready = match condition {
                StartCondition::Started => info.state == ContainerState::Running,
                StartCondition::Healthy => info.health.as_deref() == Some("healthy"),
                StartCondition::CompletedSuccessfully => exited && code == 0,
            };
            if ready {
                break;
            }
            let failed = match condition {
                StartCondition::CompletedSuccessfully => exited && code != 0,
                StartCondition::Healthy => exited || info.health.as_deref() == Some("unhealthy"),
                StartCondition::Started => exited,
            };
            if failed || waited >= DEPENDENCY_DEADLINE_MS {
                let what = match condition {
                    StartCondition::Started => "running",
                    StartCondition::Healthy => "healthy",
                    StartCondition::CompletedSuccessfully => "done successfully",
                };
                let state = if exited {
                    format!("exited with code {code}")
                } else {
                    format!("{:?}", info.state).to_lowercase()
                };
                let health = info.health.map(|h| format!(", health {h}")).unwrap_or_default();
                return Err(BackendError::Failed(format!(
                    "service '{dependency}' never became {what} for '{}' ({state}{health})",
                    service.name
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(POLL_MS));
            waited += POLL_MS;
        }
    }
    Ok(())
}
