//! Docker backend: one deployment = one network + one container (a container
//! per service for a compose stack, `compose`), all owned (labelled) by the
//! runtime through the host's container-engine capability; images built from
//! repositories and packages by the host (`github`, `package`, grant `source`).
//!
//! Settings (`plugins[].settings` in the host config):
//! `{"allowed_registries": ["docker.io", "127.0.0.1:5000"], "stdio": "in-container"}`.
//! How often a failed server is restarted is its catalog entry's `max-restarts`.
//! Without `allowed_registries` every registry is allowed; `[]` allows none.
//! `stdio`: `in-container` (default) or `attach`, see `stdio`.

wit_bindgen::generate!({ world: "runtime-backend", path: "../../wit", with: {
    "mcp-runtime:plugin/types@1.8.0": guest_kit::types,
    "mcp-runtime:plugin/config@1.8.0": guest_kit::config,
} });

use exports::mcp_runtime::plugin::backend::{BackendError, Deployed, DeploymentStatus, Guest, Prepared, ResourceUsage};
use guest_kit::types::{
    BackendCapabilities, DeployRequest, DeploymentState, EffectiveGuardrails, IsolationLevel, LogLine, LogQuery,
    ObservabilityType, Source, Transport, Warning,
};
use guest_kit::{denial, warning};
use mcp_runtime::plugin::container_engine::{
    self as engine, ContainerSpec, ContainerState, EngineError, NetworkSpec, ObjectKind, VolumeMount,
};
use mcp_runtime::plugin::guardrail_options;
use serde::Deserialize;

mod compose;
mod github;
mod handle;
use handle::{open_egress, Handle};
mod package;
mod prepare;
mod stdio;

/// Scratch space on a read-only root.
const SCRATCH_TMPFS: &str = "/tmp";
const STOP_TIMEOUT_SECONDS: u32 = 10;

#[derive(Deserialize)]
struct Settings {
    allowed_registries: Option<Vec<String>>,
    /// How stdio servers are served (`stdio`).
    #[serde(default)]
    stdio: stdio::StdioSetting,
}

/// Settings that cannot be read refuse every deploy: falling back to defaults
/// would silently allow every registry.
fn settings() -> Result<Settings, BackendError> {
    guest_kit::settings().map_err(BackendError::Unavailable)
}

struct DockerBackend;

impl Guest for DockerBackend {
    fn capabilities() -> BackendCapabilities {
        BackendCapabilities {
            supports_compose: true,
            supports_readonly_fs: true,
            supports_custom_capabilities: true,
            supports_capability_add: true,
            supports_build_cache: true,
            // The host's egress proxy, on an internal network (`open-egress`).
            supports_egress_host_filtering: true,
            supports_pid_limits: true,
            supports_stdio: true,
            network_isolation_level: IsolationLevel::Container,
            observability_type: ObservabilityType::Native,
            max_cpu_millis: 0,
            max_memory_bytes: 0,
            max_timeout_seconds: 0,
        }
    }

    fn validate(request: DeployRequest, guardrails: EffectiveGuardrails) -> Result<Vec<Warning>, BackendError> {
        let image = match &request.entry.source {
            // Built by the host from the package index, never pulled.
            Source::Image(source) if package::is_package(&source.image) => return guardrail_warnings(&guardrails),
            Source::Image(source) => &source.image,
            Source::Github(github) => {
                github::check_push(github, settings()?.allowed_registries.as_deref())?;
                return guardrail_warnings(&guardrails);
            }
            Source::Compose(stack) => {
                let allowed = settings()?.allowed_registries;
                for service in stack.services.iter().filter(|_| allowed.is_some()) {
                    let allowed = allowed.as_deref().unwrap_or_default();
                    if !image_ref::is_allowed(&service.image, allowed) {
                        let registry = image_ref::of(&service.image);
                        let reason = format!(
                            "service '{}': registry '{registry}' is not in allowed_registries {allowed:?}",
                            service.name
                        );
                        return Err(BackendError::Invalid(denial("source.compose_file", reason)));
                    }
                }
                return guardrail_warnings(&guardrails);
            }
        };
        if let Some(allowed) = settings()?.allowed_registries {
            let registry = image_ref::of(image);
            if !image_ref::is_allowed(image, &allowed) {
                let reason = format!("registry '{registry}' of '{image}' is not in allowed_registries {allowed:?}");
                return Err(BackendError::Invalid(denial("source.image", reason)));
            }
        }
        guardrail_warnings(&guardrails)
    }

    fn prepare(request: DeployRequest) -> Result<Prepared, BackendError> {
        prepare::prepare(&request)
    }

    fn deploy(request: DeployRequest, g: EffectiveGuardrails, image: String) -> Result<Deployed, BackendError> {
        // Before anything is created: settings that cannot be read leave nothing behind.
        let stdio_setting = settings()?.stdio;
        let name = format!("mcprt-{}", short_id(&request.deployment_id));
        let learn = guardrail_options::egress_learn();
        let egress = filtered_egress(&g, learn);
        let network = engine::create_network(&NetworkSpec {
            deployment_id: request.deployment_id.clone(),
            name: name.clone(),
            internal: !g.network.egress_allowed || egress.is_some(),
        })
        .map_err(engine_error)?;
        let mut warnings = Vec::new();
        if (!g.network.egress_allowed || egress.is_some()) && !network.host_isolated {
            let message = "the host's own addresses could not be closed to this deployment";
            warnings.push(warning("network.egress_allowed", message));
        }
        // Before any container: each is created knowing its proxy.
        if let Some(hosts) = &egress {
            if let Err(e) = open_egress(&name, hosts, learn) {
                let _ = engine::remove_network(&name);
                return Err(engine_error(e));
            }
        }

        let (served, how) = stdio::serve(&request, image, stdio_setting);
        warnings.extend(how);
        let started = match &request.entry.source {
            Source::Compose(stack) => compose::start_stack(&request, &g, stack, &name),
            _ => {
                let spec = container_spec(&request, &g, &name, &served);
                engine::create_container(&spec)
                    .and_then(|id| engine::start_container(&id).map(|_| id))
                    .map(|id| vec![(String::new(), id)])
                    .map_err(engine_error)
            }
        };
        let started = match started {
            Ok(started) => started,
            Err(e) => {
                // Leave nothing behind from a half-made deployment.
                let _ = engine::remove_container(&name);
                let _ = engine::remove_network(&name);
                return Err(e);
            }
        };
        let (container, services) = match &request.entry.source {
            Source::Compose(stack) => {
                let main = started.iter().find(|(service, _)| *service == stack.main_service);
                (main.map(|(_, id)| id.clone()).unwrap_or_default(), started)
            }
            _ => (started[0].1.clone(), Vec::new()),
        };
        let stdio = matches!(served, stdio::Served::Attached { .. });
        let sse = request.entry.transport == Transport::Sse;
        let (port, mcp_path) = stdio::endpoint_of(&served).unwrap_or((request.entry.port, request.entry.mcp_path));
        let handle = Handle { container, network: name, port, mcp_path, stdio, sse, services, egress, learn };
        let handle = serde_json::to_string(&handle).map_err(|e| BackendError::Failed(e.to_string()))?;
        Ok(Deployed { handle, warnings })
    }

    fn status(handle: String) -> Result<DeploymentStatus, BackendError> {
        let handle = Handle::parse(&handle)?;
        // The host's proxy lives as long as the host: after a restart, this brings it back.
        handle.open_egress().map_err(engine_error)?;
        let info = engine::inspect_container(&handle.container).map_err(engine_error)?;
        let endpoint = match (handle.stdio, handle.sse) {
            // The host attaches to the container's stdin and stdout.
            (true, _) => Some(format!("stdio://{}", info.id)),
            // The host links to the event stream and bridges it to streamable HTTP.
            (_, true) => {
                info.ip_address.as_ref().map(|ip| format!("sse+http://{ip}:{}{}", handle.port, handle.mcp_path))
            }
            _ => info.ip_address.as_ref().map(|ip| format!("http://{ip}:{}{}", handle.port, handle.mcp_path)),
        };
        let (state, message) = match info.state {
            ContainerState::Running => (DeploymentState::Running, None),
            ContainerState::Created => (DeploymentState::Starting, None),
            ContainerState::Restarting => (DeploymentState::Starting, Some("restarting after a failure".into())),
            ContainerState::Paused => (DeploymentState::Stopped, Some("paused".into())),
            ContainerState::Exited | ContainerState::Dead => {
                let code = info.exit_code.unwrap_or_default();
                let detail = info.error.filter(|e| !e.is_empty()).map(|e| format!(": {e}")).unwrap_or_default();
                let last_words = match code {
                    0 => String::new(),
                    _ => last_words(&handle.container),
                };
                (DeploymentState::Stopped, Some(format!("exited with code {code}{detail}{last_words}")))
            }
        };
        // A stack is as well as its worst service: a sidecar that failed fails the deployment.
        if state == DeploymentState::Running {
            if let Some(failed) = failed_service(&handle)? {
                return Ok(DeploymentStatus {
                    state: DeploymentState::Error,
                    message: Some(failed),
                    endpoint,
                    restart_count: info.restart_count,
                    exit_code: None,
                    oom_killed: false,
                });
            }
        }
        let ended = matches!(info.state, ContainerState::Exited | ContainerState::Dead);
        let restart_count = info.restart_count;
        let (exit_code, oom_killed) = (info.exit_code.filter(|_| ended), info.oom_killed);
        Ok(DeploymentStatus { state, message, endpoint, restart_count, exit_code, oom_killed })
    }

    fn stop(handle: String) -> Result<(), BackendError> {
        let handle = Handle::parse(&handle)?;
        for container in handle.containers().into_iter().rev() {
            engine::stop_container(container, STOP_TIMEOUT_SECONDS).map_err(engine_error)?;
        }
        Ok(())
    }

    fn start(handle: String) -> Result<(), BackendError> {
        let handle = Handle::parse(&handle)?;
        for container in handle.containers() {
            engine::start_container(container).map_err(engine_error)?;
        }
        Ok(())
    }

    fn remove(handle: String) -> Result<(), BackendError> {
        let handle = Handle::parse(&handle)?;
        for container in handle.containers().into_iter().rev() {
            ignore_missing(engine::remove_container(container))?;
        }
        ignore_missing(engine::remove_network(&handle.network))
    }

    fn check() -> Result<(), BackendError> {
        engine::info().map(drop).map_err(engine_error)
    }

    /// Every container's figures summed; the uptime is the MCP server's.
    fn usage(handle: String) -> Result<ResourceUsage, BackendError> {
        let handle = Handle::parse(&handle)?;
        let mut usage = ResourceUsage {
            cpu_ns: Some(0),
            memory_bytes: Some(0),
            memory_limit_bytes: None,
            network_rx_bytes: Some(0),
            network_tx_bytes: Some(0),
            started_at: engine::inspect_container(&handle.container).map_err(engine_error)?.started_at,
            instances: Some(1),
            requests_total: None,
        };
        let add = |total: &mut Option<u64>, n: u64| *total = Some(total.unwrap_or(0) + n);
        for container in handle.containers() {
            let figures = engine::container_usage(container).map_err(engine_error)?;
            add(&mut usage.cpu_ns, figures.cpu_ns);
            add(&mut usage.memory_bytes, figures.memory_bytes);
            add(&mut usage.network_rx_bytes, figures.network_rx_bytes);
            add(&mut usage.network_tx_bytes, figures.network_tx_bytes);
            if let Some(limit) = figures.memory_limit_bytes {
                add(&mut usage.memory_limit_bytes, limit);
            }
        }
        Ok(usage)
    }

    fn logs(handle: String, query: LogQuery) -> Result<Vec<LogLine>, BackendError> {
        let handle = Handle::parse(&handle)?;
        if handle.services.is_empty() {
            return engine::container_logs(&handle.container, query).map_err(engine_error);
        }
        // A stack's services, each line naming its service.
        let mut merged = Vec::new();
        for (service, container) in &handle.services {
            let lines = engine::container_logs(container, query).map_err(engine_error)?;
            merged.extend(lines.into_iter().map(|line| LogLine { service: Some(service.clone()), ..line }));
        }
        Ok(merged)
    }

    fn orphans(known: Vec<String>) -> Result<Vec<String>, BackendError> {
        let mut orphans: Vec<String> = engine::list_owned()
            .map_err(engine_error)?
            .into_iter()
            .filter_map(|o| o.deployment_id)
            .filter(|d| !known.contains(d))
            .collect();
        orphans.sort();
        orphans.dedup();
        Ok(orphans)
    }

    fn remove_leftovers(deployment_id: String) -> Result<(), BackendError> {
        let owned = engine::list_owned().map_err(engine_error)?;
        let mine = owned.iter().filter(|o| o.deployment_id.as_deref() == Some(deployment_id.as_str()));
        // Containers first: a network cannot go while a container is attached.
        for object in mine.clone().filter(|o| o.kind == ObjectKind::Container) {
            ignore_missing(engine::remove_container(&object.id))?;
        }
        for object in mine.filter(|o| o.kind == ObjectKind::Network) {
            ignore_missing(engine::remove_network(&object.id))?;
        }
        Ok(())
    }
}

fn container_spec(
    request: &DeployRequest,
    g: &EffectiveGuardrails,
    name: &str,
    served: &stdio::Served,
) -> ContainerSpec {
    let volumes = g
        .filesystem
        .allowed_mounts
        .iter()
        .enumerate()
        .map(|(i, path)| VolumeMount { volume: format!("{name}-v{i}"), path: path.clone() })
        .collect();
    let mut security_opts = Vec::new();
    if let Some(profile) = g.seccomp.as_deref().filter(|s| is_inline_or_builtin(s) && *s != "runtime/default") {
        security_opts.push(format!("seccomp={profile}"));
    }
    if let Some(profile) = &g.apparmor {
        if engine_supports("apparmor").unwrap_or(false) {
            security_opts.push(format!("apparmor={profile}"));
        }
    }
    ContainerSpec {
        deployment_id: request.deployment_id.clone(),
        name: name.into(),
        image: served.image().to_string(),
        env: request.env.clone(),
        network: name.into(),
        labels: vec![("mcp-runtime.catalog-slug".into(), request.entry.slug.clone())],
        read_only_root: g.filesystem.read_only_root,
        tmpfs: if g.filesystem.read_only_root { vec![SCRATCH_TMPFS.into()] } else { Vec::new() },
        volumes,
        cap_drop: if g.capabilities.drop_all { vec!["ALL".into()] } else { Vec::new() },
        cap_add: g.capabilities.add.clone(),
        no_new_privileges: true,
        nano_cpus: g.cpu_millis.map(|m| u64::from(m) * 1_000_000),
        memory_bytes: g.memory_bytes,
        pids_limit: g.pids,
        security_opts,
        max_restarts: request.entry.max_restarts,
        command: stdio::command(served, request.entry.command.clone()),
        args: request.entry.args.clone(),
        stdin_open: matches!(served, stdio::Served::Attached { .. }),
        network_aliases: Vec::new(),
        user: None,
        healthcheck: None,
    }
}

/// The last lines a crashed server wrote that are not protocol, to say why.
fn last_words(container: &str) -> String {
    let query = LogQuery { tail: 20, since: None, until: None };
    let Ok(logs) = engine::container_logs(container, query) else { return String::new() };
    let lines: Vec<&str> =
        logs.iter().map(|l| l.text.trim()).filter(|l| !l.is_empty() && !l.starts_with('{')).collect();
    match lines.len() {
        0 => String::new(),
        n => format!("; last output: {}", lines[n.saturating_sub(3)..].join(" | ")),
    }
}

fn is_inline_or_builtin(seccomp: &str) -> bool {
    matches!(seccomp, "runtime/default" | "unconfined") || seccomp.trim_start().starts_with('{')
}

fn engine_supports(option: &str) -> Result<bool, BackendError> {
    let info = engine::info().map_err(engine_error)?;
    Ok(info.security_options.iter().any(|o| o == option))
}

/// The first service of a stack that exited with an error, said so.
fn failed_service(handle: &Handle) -> Result<Option<String>, BackendError> {
    for (service, container) in handle.services.iter().filter(|(_, id)| *id != handle.container) {
        let info = engine::inspect_container(container).map_err(engine_error)?;
        let code = info.exit_code.unwrap_or_default();
        let ended = matches!(info.state, ContainerState::Exited | ContainerState::Dead);
        if ended && code != 0 {
            return Ok(Some(format!("service '{service}' exited with code {code}{}", last_words(container))));
        }
    }
    Ok(None)
}

/// What the engine cannot enforce of the guardrails, said as warnings.
fn guardrail_warnings(guardrails: &EffectiveGuardrails) -> Result<Vec<Warning>, BackendError> {
    let mut warnings = Vec::new();
    if guardrails.apparmor.is_some() && !engine_supports("apparmor")? {
        warnings.push(warning("apparmor", "AppArmor is not available on this Docker host; the profile is not applied"));
    }
    if let Some(seccomp) = guardrails.seccomp.as_deref().filter(|s| !is_inline_or_builtin(s)) {
        let message = format!("seccomp profile '{seccomp}' is not inline JSON; Docker's default profile applies");
        warnings.push(warning("seccomp", message));
    }
    Ok(warnings)
}

/// An engine call's answer, its error as the backend's.
fn engine_call<T>(result: Result<T, EngineError>) -> Result<T, BackendError> {
    result.map_err(engine_error)
}

/// The hosts the egress proxy lets through, when egress is on but goes
/// through one: limited to some hosts, or learning what the server reaches.
fn filtered_egress(g: &EffectiveGuardrails, learn: bool) -> Option<Vec<String>> {
    let hosts = &g.network.allowed_hosts;
    let open = hosts.is_empty() || hosts.iter().any(|h| h == "*");
    match (g.network.egress_allowed, learn, open) {
        (false, ..) | (true, false, true) => None,
        (true, true, _) => Some(hosts.iter().filter(|h| *h != "*").cloned().collect()),
        (true, false, false) => Some(hosts.clone()),
    }
}

fn short_id(deployment_id: &str) -> &str {
    &deployment_id[..deployment_id.len().min(8)]
}

fn invalid(field: &str, reason: &str) -> BackendError {
    BackendError::Invalid(denial(field, reason))
}

fn engine_error(e: EngineError) -> BackendError {
    match e {
        EngineError::NotFound(m) => BackendError::NotFound(m),
        EngineError::Unavailable(m) => BackendError::Unavailable(m),
        EngineError::NotOwned(m) | EngineError::Conflict(m) | EngineError::Failed(m) => BackendError::Failed(m),
    }
}

fn ignore_missing(result: Result<(), EngineError>) -> Result<(), BackendError> {
    match result {
        Err(EngineError::NotFound(_)) => Ok(()),
        other => other.map_err(engine_error),
    }
}

export!(DockerBackend);

#[cfg(test)]
mod tests {
    use super::*;
    use guest_kit::types::{CapabilityPolicy, FilesystemPolicy, NetworkPolicy};

    fn guardrails(egress_allowed: bool, allowed_hosts: &[&str]) -> EffectiveGuardrails {
        EffectiveGuardrails {
            profile: "p".into(),
            network: NetworkPolicy {
                egress_allowed,
                allowed_hosts: allowed_hosts.iter().map(|h| h.to_string()).collect(),
                ingress_ports: vec![],
            },
            filesystem: FilesystemPolicy { read_only_root: false, allowed_mounts: vec![] },
            capabilities: CapabilityPolicy { drop_all: true, add: vec![] },
            cpu_millis: None,
            memory_bytes: None,
            pids: None,
            seccomp: None,
            apparmor: None,
        }
    }

    #[test]
    fn egress_goes_through_the_proxy_when_filtered_or_learning() {
        let hosts = |h: &[&str]| Some(h.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(filtered_egress(&guardrails(false, &["a.example"]), true), None, "no egress at all");
        assert_eq!(filtered_egress(&guardrails(true, &[]), false), None, "open");
        assert_eq!(filtered_egress(&guardrails(true, &["*"]), false), None, "open");
        assert_eq!(filtered_egress(&guardrails(true, &["a.example"]), false), hosts(&["a.example"]));
        assert_eq!(filtered_egress(&guardrails(true, &[]), true), hosts(&[]), "learning what it reaches");
        assert_eq!(filtered_egress(&guardrails(true, &["*", "10.0.0.5"]), true), hosts(&["10.0.0.5"]));
    }
}
