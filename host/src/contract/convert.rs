//! Conversions between the host's domain types and the WIT types plugins see.

use super::options::GuardrailOptions;
use super::types as wit;
use crate::catalog::{CatalogEntry, RestartPolicy, ServerSource, Transport};
use crate::deployment::{DeploymentRequest, Resources, Visibility};
use crate::guardrails::{parse_cpu, parse_memory, CapabilityPolicy, EffectiveGuardrails, FilesystemPolicy};
use crate::guardrails::{NetworkPolicy, Profile, Warning};

impl From<&ServerSource> for wit::Source {
    fn from(source: &ServerSource) -> wit::Source {
        match source {
            ServerSource::Docker { image, registry_secret } => {
                wit::Source::Image(wit::ImageSource { image: image.clone(), registry_secret: registry_secret.clone() })
            }
            ServerSource::Github {
                repo,
                revision,
                dockerfile,
                context_dir,
                build_args,
                target,
                credential,
                push_to_registry,
                registry,
            } => wit::Source::Github(wit::GithubSource {
                repo: repo.clone(),
                revision: revision.clone(),
                dockerfile: dockerfile.clone(),
                context_dir: context_dir.clone(),
                build_args: build_args.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                target: target.clone(),
                credential: credential.clone(),
                push_to_registry: *push_to_registry,
                registry: registry.clone(),
            }),
            ServerSource::Compose { compose_file, main_service } => wit::Source::Compose(wit::ComposeSource {
                compose_file: compose_file.clone(),
                main_service: main_service.clone(),
                services: stack_services(compose_file, main_service),
            }),
            // Records keep their shape within a major version: a package
            // reaches plugins as its purl; 1.4 backends ask `source.deployment-package`.
            ServerSource::Package { .. } => {
                let purl = source.package().map(|p| p.purl()).unwrap_or_default();
                wit::Source::Image(wit::ImageSource { image: purl, registry_secret: None })
            }
            // Likewise a component reaches plugins as `wasm@sha256:<hex>`; 1.7
            // backends granted `server-components` ask `deployment-component`.
            ServerSource::Wasm { sha256, .. } => {
                let hex = sha256.strip_prefix("sha256:").unwrap_or(sha256).to_ascii_lowercase();
                wit::Source::Image(wit::ImageSource { image: format!("wasm@sha256:{hex}"), registry_secret: None })
            }
            // Nothing is deployed for a remote entry: `deployments::check`
            // refuses it before any request a plugin could see is made.
            ServerSource::Remote { url, .. } => unreachable!("a deploy request for the remote server at {url}"),
        }
    }
}

impl From<&crate::packages::PackageRequest<'_>> for wit::PackageSource {
    fn from(package: &crate::packages::PackageRequest<'_>) -> wit::PackageSource {
        wit::PackageSource {
            ecosystem: match package.ecosystem {
                crate::packages::Ecosystem::Npm => wit::PackageEcosystem::Npm,
                crate::packages::Ecosystem::Pypi => wit::PackageEcosystem::Pypi,
            },
            name: package.name.to_string(),
            version: package.version.to_string(),
            bin: package.bin.map(str::to_string),
            extras: package.extras.to_vec(),
        }
    }
}

/// A compose file's services as the host checked them, in starting order
/// (none for a file that does not pass: the backend then has nothing to run).
fn stack_services(compose_file: &str, main_service: &str) -> Vec<wit::StackService> {
    use crate::compose::{Condition, Stack};
    let Ok(stack) = Stack::parse(compose_file, main_service) else { return Vec::new() };
    let millis = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    stack
        .services
        .into_iter()
        .map(|s| wit::StackService {
            name: s.name,
            image: s.image,
            command: s.command,
            entrypoint: s.entrypoint,
            env: s.environment.into_iter().collect(),
            depends_on: s
                .depends_on
                .into_iter()
                .map(|(service, condition)| {
                    let condition = match condition {
                        Condition::Started => wit::StartCondition::Started,
                        Condition::Healthy => wit::StartCondition::Healthy,
                        Condition::CompletedSuccessfully => wit::StartCondition::CompletedSuccessfully,
                    };
                    (service, condition)
                })
                .collect(),
            healthcheck: s.healthcheck.map(|h| wit::HealthCheck {
                test: h.test,
                interval_ms: millis(h.interval),
                timeout_ms: millis(h.timeout),
                retries: h.retries,
            }),
            volumes: s.volumes,
            tmpfs: s.tmpfs,
            user: s.user,
            read_only: s.read_only,
            cap_add: s.cap_add,
            cap_drop: s.cap_drop,
            cpu_millis: s.cpu_millis,
            memory_bytes: s.memory_bytes,
            pids: s.pids,
        })
        .collect()
}

impl From<&wit::Source> for ServerSource {
    fn from(source: &wit::Source) -> ServerSource {
        match source {
            wit::Source::Image(s) => {
                ServerSource::Docker { image: s.image.clone(), registry_secret: s.registry_secret.clone() }
            }
            wit::Source::Github(s) => ServerSource::Github {
                repo: s.repo.clone(),
                revision: s.revision.clone(),
                dockerfile: s.dockerfile.clone(),
                context_dir: s.context_dir.clone(),
                build_args: s.build_args.iter().cloned().collect(),
                target: s.target.clone(),
                credential: s.credential.clone(),
                push_to_registry: s.push_to_registry,
                registry: s.registry.clone(),
            },
            wit::Source::Compose(s) => {
                ServerSource::Compose { compose_file: s.compose_file.clone(), main_service: s.main_service.clone() }
            }
        }
    }
}

impl From<&CatalogEntry> for wit::CatalogEntry {
    fn from(entry: &CatalogEntry) -> wit::CatalogEntry {
        wit::CatalogEntry {
            slug: entry.slug.clone(),
            name: entry.name.clone(),
            version: entry.version.clone(),
            category: entry.category.clone(),
            tags: entry.tags.clone(),
            source: (&entry.source).into(),
            supported_backends: entry.supported_backends.clone(),
            guardrails_profile: entry.guardrails_profile.clone(),
            requires_approval: entry.requires_approval,
            port: entry.port,
            mcp_path: entry.mcp_path.clone(),
            transport: entry.transport.into(),
            command: entry.command.clone(),
            args: entry.args.clone(),
            max_restarts: match entry.restart_policy {
                RestartPolicy::Never => 0,
                RestartPolicy::Always | RestartPolicy::OnFailure => entry.max_restarts,
            },
        }
    }
}

impl From<Transport> for wit::Transport {
    fn from(t: Transport) -> wit::Transport {
        match t {
            Transport::StreamableHttp => wit::Transport::StreamableHttp,
            Transport::Sse => wit::Transport::Sse,
            Transport::Stdio => wit::Transport::Stdio,
        }
    }
}

/// Learn mode (`egress_audit`) is not in the record: it travels as a
/// guardrail option (`GuardrailOptions`), asked for during the call.
impl From<&NetworkPolicy> for wit::NetworkPolicy {
    fn from(n: &NetworkPolicy) -> wit::NetworkPolicy {
        wit::NetworkPolicy {
            egress_allowed: n.egress_allowed,
            allowed_hosts: n.allowed_hosts.clone(),
            ingress_ports: n.ingress_ports.clone(),
        }
    }
}

impl From<&Profile> for wit::GuardrailProfile {
    fn from(p: &Profile) -> wit::GuardrailProfile {
        wit::GuardrailProfile {
            name: p.name.clone(),
            description: p.description.clone(),
            recommended_backends: p.recommended_backends.clone(),
            network: (&p.network).into(),
            filesystem: wit::FilesystemPolicy {
                read_only_root: p.filesystem.read_only_root,
                allowed_mounts: p.filesystem.allowed_mounts.clone(),
            },
            capabilities: wit::CapabilityPolicy { drop_all: p.capabilities.drop_all, add: p.capabilities.add.clone() },
            resources: wit::ResourceLimits {
                max_cpu_millis: p.resources.max_cpu.as_deref().and_then(parse_cpu),
                max_memory_bytes: p.resources.max_memory.as_deref().and_then(parse_memory),
                max_pids: p.resources.max_pids,
            },
            seccomp: p.seccomp.clone(),
            apparmor: p.apparmor.clone(),
        }
    }
}

/// The starting point of policy evaluation: the profile's own values.
pub fn initial_guardrails(profile: &Profile) -> wit::EffectiveGuardrails {
    let p = wit::GuardrailProfile::from(profile);
    wit::EffectiveGuardrails {
        profile: p.name,
        network: p.network,
        filesystem: p.filesystem,
        capabilities: p.capabilities,
        cpu_millis: p.resources.max_cpu_millis,
        memory_bytes: p.resources.max_memory_bytes,
        pids: p.resources.max_pids,
        seccomp: p.seccomp,
        apparmor: p.apparmor,
    }
}

impl From<&wit::RequestedResources> for Resources {
    fn from(r: &wit::RequestedResources) -> Resources {
        Resources {
            cpu_millis: r.cpu_millis,
            memory_bytes: r.memory_bytes,
            pids: r.pids,
            min_scale: r.min_scale,
            max_scale: r.max_scale,
            visibility: r.visibility.map(Visibility::from),
        }
    }
}

impl From<Visibility> for wit::Visibility {
    fn from(v: Visibility) -> wit::Visibility {
        match v {
            Visibility::Public => wit::Visibility::Public,
            Visibility::Private => wit::Visibility::Private,
            Visibility::Project => wit::Visibility::Project,
        }
    }
}

impl From<wit::Visibility> for Visibility {
    fn from(v: wit::Visibility) -> Visibility {
        match v {
            wit::Visibility::Public => Visibility::Public,
            wit::Visibility::Private => Visibility::Private,
            wit::Visibility::Project => Visibility::Project,
        }
    }
}

/// What a backend can enforce, as `GET /backends` shows it.
pub fn capabilities_view(c: &wit::BackendCapabilities) -> serde_json::Value {
    let isolation = match c.network_isolation_level {
        wit::IsolationLevel::Container => "container",
        wit::IsolationLevel::Project => "project",
    };
    let observability = match c.observability_type {
        wit::ObservabilityType::Native => "native",
        wit::ObservabilityType::IbmCloud => "ibm_cloud",
    };
    serde_json::json!({
        "supports_compose": c.supports_compose,
        "supports_readonly_fs": c.supports_readonly_fs,
        "supports_custom_capabilities": c.supports_custom_capabilities,
        "supports_capability_add": c.supports_capability_add,
        "supports_build_cache": c.supports_build_cache,
        "supports_egress_host_filtering": c.supports_egress_host_filtering,
        "supports_pid_limits": c.supports_pid_limits,
        "supports_stdio": c.supports_stdio,
        "network_isolation_level": isolation,
        "observability_type": observability,
        "max_cpu_millis": c.max_cpu_millis,
        "max_memory_bytes": c.max_memory_bytes,
        "max_timeout_seconds": c.max_timeout_seconds,
    })
}

impl From<&EffectiveGuardrails> for wit::EffectiveGuardrails {
    fn from(g: &EffectiveGuardrails) -> wit::EffectiveGuardrails {
        wit::EffectiveGuardrails {
            profile: g.profile.clone(),
            network: (&g.network).into(),
            filesystem: wit::FilesystemPolicy {
                read_only_root: g.filesystem.read_only_root,
                allowed_mounts: g.filesystem.allowed_mounts.clone(),
            },
            capabilities: wit::CapabilityPolicy { drop_all: g.capabilities.drop_all, add: g.capabilities.add.clone() },
            cpu_millis: g.cpu_millis,
            memory_bytes: g.memory_bytes,
            pids: g.pids,
            seccomp: g.seccomp.clone(),
            apparmor: g.apparmor.clone(),
        }
    }
}

/// The guardrails a policy chain decided, with the options that travelled
/// beside them: learn mode stays on only where egress is open.
pub fn effective_guardrails(g: &wit::EffectiveGuardrails, options: GuardrailOptions) -> EffectiveGuardrails {
    EffectiveGuardrails {
        profile: g.profile.clone(),
        network: NetworkPolicy {
            egress_allowed: g.network.egress_allowed,
            allowed_hosts: g.network.allowed_hosts.clone(),
            ingress_ports: g.network.ingress_ports.clone(),
            egress_audit: options.egress_learn && g.network.egress_allowed,
        },
        filesystem: FilesystemPolicy {
            read_only_root: g.filesystem.read_only_root,
            allowed_mounts: g.filesystem.allowed_mounts.clone(),
        },
        capabilities: CapabilityPolicy { drop_all: g.capabilities.drop_all, add: g.capabilities.add.clone() },
        cpu_millis: g.cpu_millis,
        memory_bytes: g.memory_bytes,
        pids: g.pids,
        seccomp: g.seccomp.clone(),
        apparmor: g.apparmor.clone(),
        install_scripts: options.allow_install_scripts,
    }
}

impl From<&wit::Warning> for Warning {
    fn from(w: &wit::Warning) -> Warning {
        Warning { field: w.field.clone(), message: w.message.clone() }
    }
}

impl From<&Resources> for wit::RequestedResources {
    fn from(r: &Resources) -> wit::RequestedResources {
        wit::RequestedResources {
            cpu_millis: r.cpu_millis,
            memory_bytes: r.memory_bytes,
            pids: r.pids,
            min_scale: r.min_scale,
            max_scale: r.max_scale,
            visibility: r.visibility.map(wit::Visibility::from),
        }
    }
}

/// A stored request as the backend and the policies see it.
pub fn deploy_request(
    id: &str,
    backend: &str,
    request: &DeploymentRequest,
    requested_by: Option<&str>,
) -> wit::DeployRequest {
    let mut entry: wit::CatalogEntry = (&request.entry).into();
    // The commit pinned when the request was checked is what gets built, even if the branch moves.
    if let (Some(commit), wit::Source::Github(source)) = (&request.commit, &mut entry.source) {
        source.revision = Some(commit.clone());
    }
    wit::DeployRequest {
        deployment_id: id.into(),
        backend: backend.into(),
        entry,
        env: request.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        resources: (&request.resources).into(),
        requested_by: requested_by.map(String::from),
    }
}

impl From<crate::logs::Window> for wit::LogQuery {
    fn from(w: crate::logs::Window) -> wit::LogQuery {
        wit::LogQuery { tail: w.tail, since: w.since, until: w.until }
    }
}

impl From<wit::LogLine> for crate::logs::Line {
    fn from(l: wit::LogLine) -> crate::logs::Line {
        let stream = match l.stream {
            wit::LogStream::Stdout => crate::logs::Stream::Stdout,
            wit::LogStream::Stderr => crate::logs::Stream::Stderr,
        };
        crate::logs::Line { stream, time: l.time, text: l.text, service: l.service }
    }
}
