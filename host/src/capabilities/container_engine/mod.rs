//! Grant `container-engine`: Docker through bollard, limited to objects the
//! runtime owns. The host labels everything it creates and refuses to touch
//! anything without its label, so a plugin cannot reach foreign containers.
//!
//! A network may have its egress filtered by host name (`egress.rs`).
//!
//! An `internal` network also gets its host side closed: Docker's internal
//! networks block forwarding but a container can still reach the host itself
//! through the bridge address, so new connections from the bridge to the host
//! are dropped (the host's own connections to the container still work).

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType, NetworkCreateRequest,
    NetworkingConfig, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;

use super::CallState;
use crate::contract::container_engine::{
    ContainerInfo, ContainerSpec, ContainerStats, EgressInfo, EngineError, EngineInfo, Host, NetworkInfo, NetworkSpec,
    ObjectKind, OwnedObject,
};
use crate::contract::types::{LogLine, LogQuery};
use crate::events::EventData;

/// Marks objects the runtime created; its value names the runtime instance.
pub const OWNER_LABEL: &str = "mcp-runtime.owner";
/// The deployment an object belongs to.
pub const DEPLOYMENT_LABEL: &str = "mcp-runtime.deployment";
/// Size cap of each tmpfs scratch mount.
const TMPFS_OPTIONS: &str = "rw,noexec,nosuid,size=64m";

#[derive(Debug, thiserror::Error)]
#[error("no Docker engine answers on {socket}: {reason}")]
pub struct EngineConnectError {
    pub socket: String,
    pub reason: String,
}

pub struct ContainerEngine {
    /// Replaced once the engine's API version is negotiated.
    docker: std::sync::RwLock<Docker>,
    negotiated: std::sync::atomic::AtomicBool,
    socket: String,
    /// Value of `OWNER_LABEL` on everything this runtime creates.
    owner: String,
    /// Proxies of networks whose egress is filtered by host name.
    egress: crate::egress::EgressProxies,
    /// Pulls in progress, layer by layer.
    pulls: pulls::Pulls,
    /// Containers' last readings, until the engine's events say they changed.
    inspections: inspections::Inspections,
    /// The deployments whose containers the engine's events said changed.
    changed_deployments: tokio::sync::broadcast::Sender<String>,
}

/// How long a liveness check waits for the engine.
const PING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

impl ContainerEngine {
    /// An engine on `socket`; nothing is asked of it until `check`, so an
    /// engine that is down now can come up later.
    pub fn new(
        socket: &str,
        owner: &str,
        egress: crate::egress::EgressProxies,
    ) -> Result<ContainerEngine, EngineConnectError> {
        let path = socket.strip_prefix("unix://").unwrap_or(socket);
        let docker = Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| EngineConnectError { socket: socket.into(), reason: e.to_string() })?;
        Ok(ContainerEngine {
            docker: std::sync::RwLock::new(docker),
            negotiated: Default::default(),
            socket: socket.into(),
            owner: owner.into(),
            egress,
            pulls: Default::default(),
            inspections: Default::default(),
            changed_deployments: tokio::sync::broadcast::channel(1024).0,
        })
    }

    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Whether the engine answers now (negotiating its API version the first time).
    pub async fn check(&self) -> Result<(), EngineConnectError> {
        let fail = |reason: String| EngineConnectError { socket: self.socket.clone(), reason };
        let answer = async {
            if !self.negotiated.load(std::sync::atomic::Ordering::Acquire) {
                let negotiated = self.docker().negotiate_version().await.map_err(|e| fail(e.to_string()))?;
                *self.docker.write().expect("engine lock poisoned") = negotiated;
                self.negotiated.store(true, std::sync::atomic::Ordering::Release);
            }
            self.docker().ping().await.map_err(|e| fail(e.to_string())).map(drop)
        };
        tokio::time::timeout(PING_DEADLINE, answer).await.unwrap_or_else(|_| Err(fail("no answer in time".into())))
    }

    /// The client (cheap to clone: its connection pool is shared).
    pub fn docker(&self) -> Docker {
        self.docker.read().expect("engine lock poisoned").clone()
    }

    /// The ownership label's value: what this host's objects carry.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    pub(crate) fn labels(&self, deployment_id: &str, extra: &[(String, String)]) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = extra.iter().cloned().collect();
        labels.insert(OWNER_LABEL.into(), self.owner.clone());
        labels.insert(DEPLOYMENT_LABEL.into(), deployment_id.into());
        labels
    }

    fn owned_by_us(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.and_then(|l| l.get(OWNER_LABEL)) == Some(&self.owner)
    }

    fn owner_filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), vec![format!("{OWNER_LABEL}={}", self.owner)])])
    }

    pub async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self.docker().info().await.map_err(engine_error)?;
        let security_options = info
            .security_options
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o.strip_prefix("name=").map(|rest| rest.split(',').next().unwrap_or(rest).to_string()))
            .collect();
        Ok(EngineInfo { version: info.server_version.unwrap_or_default(), security_options })
    }

    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker().inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) => match engine_error(e) {
                EngineError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    pub async fn pull_image(&self, image: &str) -> Result<(), EngineError> {
        let options = CreateImageOptions { from_image: Some(image.into()), ..Default::default() };
        let mut progress = self.docker().create_image(Some(options), None, None);
        let pulled = async {
            while let Some(step) = progress.next().await {
                let step = step.map_err(engine_error)?;
                if let Some(detail) = step.error_detail.and_then(|d| d.message) {
                    return Err(EngineError::Failed(format!("pulling {image}: {detail}")));
                }
                let (current, total) = step.progress_detail.map(|p| (p.current, p.total)).unwrap_or_default();
                self.pulls.record(image, step.id.as_deref(), step.status.as_deref(), current, total);
            }
            Ok(())
        }
        .await;
        self.pulls.finished(image);
        pulled
    }

    /// The layers of `image`'s pull in progress.
    pub fn pull_progress(&self, image: &str) -> Vec<pulls::Layer> {
        self.pulls.layers(image)
    }

    pub async fn create_network(&self, spec: NetworkSpec) -> Result<NetworkInfo, EngineError> {
        if spec.name.len() > 15 {
            return Err(EngineError::Failed(format!(
                "network name '{}' is longer than a bridge name may be (15)",
                spec.name
            )));
        }
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".into()),
            internal: Some(spec.internal),
            labels: Some(self.labels(&spec.deployment_id, &[])),
            // Name the bridge after the network so the host-side rule can find it.
            options: Some(HashMap::from([("com.docker.network.bridge.name".into(), spec.name.clone())])),
            ..Default::default()
        };
        let created = self.docker().create_network(request).await.map_err(engine_error)?;
        let host_isolated = spec.internal && host_firewall::close(&spec.name).await;
        Ok(NetworkInfo { id: created.id, host_isolated })
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let network = self.docker().inspect_network(name, None).await.map_err(engine_error)?;
        if !self.owned_by_us(network.labels.as_ref()) {
            return Err(EngineError::NotOwned(format!("network '{name}' is not owned by this runtime")));
        }
        self.docker().remove_network(name).await.map_err(engine_error)?;
        self.egress.close(name);
        host_firewall::reopen(name).await;
        Ok(())
    }

    pub async fn create_container(&self, spec: ContainerSpec) -> Result<String, EngineError> {
        let mut mounts = Vec::new();
        for v in &spec.volumes {
            let volume = VolumeCreateRequest {
                name: Some(v.volume.clone()),
                labels: Some(self.labels(&spec.deployment_id, &[])),
                ..Default::default()
            };
            self.docker().create_volume(volume).await.map_err(engine_error)?;
            mounts.push(Mount {
                target: Some(v.path.clone()),
                source: Some(v.volume.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            });
        }
        let mut security_opt = spec.security_opts.clone();
        if spec.no_new_privileges {
            security_opt.push("no-new-privileges:true".into());
        }
        let (egress_env, dns) = self.egress_settings(&spec.network, &spec.network_aliases).unwrap_or_default();
        let host_config = HostConfig {
            network_mode: Some(spec.network.clone()),
            dns: (!dns.is_empty()).then_some(dns),
            readonly_rootfs: Some(spec.read_only_root),
            tmpfs: Some(spec.tmpfs.iter().map(|p| (p.clone(), TMPFS_OPTIONS.to_string())).collect()),
            mounts: Some(mounts),
            cap_drop: Some(spec.cap_drop.clone()),
            cap_add: Some(spec.cap_add.clone()),
            security_opt: Some(security_opt),
            nano_cpus: spec.nano_cpus.map(|n| n as i64),
            memory: spec.memory_bytes.map(|m| m as i64),
            // Same as memory: no swap beyond the limit.
            memory_swap: spec.memory_bytes.map(|m| m as i64),
            pids_limit: spec.pids_limit.map(i64::from),
            // An init as PID 1 passes signals on: a server that installs no
            // SIGTERM handler (most stdio servers) stops at once, not after the
            // engine's stop timeout, and its exited children are reaped.
            init: Some(true),
            restart_policy: Some(match spec.max_restarts {
                0 => RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None },
                n => RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ON_FAILURE),
                    maximum_retry_count: Some(i64::from(n)),
                },
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).chain(egress_env).collect()),
            labels: Some(self.labels(&spec.deployment_id, &spec.labels)),
            host_config: Some(host_config),
            entrypoint: spec.command.clone(),
            cmd: spec.args.clone(),
            // MCP over stdio: stdin stays open across attaches, no terminal in between.
            open_stdin: Some(spec.stdin_open),
            stdin_once: Some(false),
            tty: Some(false),
            user: spec.user.clone(),
            healthcheck: spec.healthcheck.as_ref().map(|h| {
                let nanos = |ms: u32| i64::from(ms) * 1_000_000;
                HealthConfig {
                    test: Some(h.test.clone()),
                    interval: Some(nanos(h.interval_ms)),
                    timeout: Some(nanos(h.timeout_ms)),
                    retries: Some(i64::from(h.retries)),
                    ..Default::default()
                }
            }),
            // A compose service is reached by its name on the stack's network.
            networking_config: (!spec.network_aliases.is_empty()).then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    spec.network.clone(),
                    EndpointSettings { aliases: Some(spec.network_aliases.clone()), ..Default::default() },
                )])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions { name: Some(spec.name.clone()), ..Default::default() };
        let created = self.docker().create_container(Some(options), body).await.map_err(engine_error)?;
        Ok(created.id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.ensure_container_owned(id).await?;
        let started = self.docker().start_container(id, None).await;
        // Before its event arrives, a reading must not show it as it was.
        self.inspections.changed(id, false);
        match started {
            // 304: already running.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => other.map_err(engine_error),
        }
    }

    pub async fn stop_container(&self, id: &str, timeout_seconds: u32) -> Result<(), EngineError> {
        self.ensure_container_owned(id).await?;
        let options = StopContainerOptions { t: Some(timeout_seconds as i32), ..Default::default() };
        let stopped = self.docker().stop_container(id, Some(options)).await;
        self.inspections.changed(id, false);
        match stopped {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => other.map_err(engine_error),
        }
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let c = self.docker().inspect_container(id, None).await.map_err(engine_error)?;
        let labels = c.config.as_ref().and_then(|c| c.labels.as_ref());
        if !self.owned_by_us(labels) {
            return Err(EngineError::NotOwned(format!("container '{id}' is not owned by this runtime")));
        }
        let deployment = labels.and_then(|l| l.get(DEPLOYMENT_LABEL)).cloned();
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        let removed = self.docker().remove_container(id, Some(options)).await;
        self.inspections.changed(id, true);
        removed.map_err(engine_error)?;
        if let Some(deployment) = deployment {
            self.remove_volumes_of(&deployment).await?;
        }
        Ok(())
    }

    async fn remove_volumes_of(&self, deployment: &str) -> Result<(), EngineError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{OWNER_LABEL}={}", self.owner), format!("{DEPLOYMENT_LABEL}={deployment}")],
        )]);
        let volumes = self
            .docker()
            .list_volumes(Some(ListVolumesOptions { filters: Some(filters) }))
            .await
            .map_err(engine_error)?;
        for volume in volumes.volumes.unwrap_or_default() {
            let _ = self.docker().remove_volume(&volume.name, Some(RemoveVolumeOptions { force: true })).await;
        }
        Ok(())
    }

    /// The stdin and the output of a container this runtime owns, for the
    /// host's own MCP session with a server that speaks stdio. Not granted
    /// to plugins: the bridge in `mcp::stdio` is its only user.
    pub async fn attach(&self, id: &str) -> Result<bollard::container::AttachContainerResults, EngineError> {
        self.ensure_container_owned(id).await?;
        let options =
            AttachContainerOptions { stdin: true, stdout: true, stderr: true, stream: true, ..Default::default() };
        self.docker().attach_container(id, Some(options)).await.map_err(engine_error)
    }

    /// Containers this runtime owns, with the deployment each belongs to.
    async fn owned_containers(&self) -> Result<Vec<OwnedObject>, EngineError> {
        let options = ListContainersOptions { all: true, filters: Some(self.owner_filter()), ..Default::default() };
        let containers = self.docker().list_containers(Some(options)).await.map_err(engine_error)?;
        Ok(containers
            .into_iter()
            .map(|c| OwnedObject {
                kind: ObjectKind::Container,
                id: c.id.unwrap_or_default(),
                deployment_id: c.labels.and_then(|mut l| l.remove(DEPLOYMENT_LABEL)),
            })
            .collect())
    }

    /// Networks this runtime owns (by name), with the deployment each belongs to.
    async fn owned_networks(&self) -> Result<Vec<OwnedObject>, EngineError> {
        let options = ListNetworksOptions { filters: Some(self.owner_filter()) };
        let networks = self.docker().list_networks(Some(options)).await.map_err(engine_error)?;
        Ok(networks
            .into_iter()
            .map(|n| OwnedObject {
                kind: ObjectKind::Network,
                id: n.name.unwrap_or_default(),
                deployment_id: n.labels.and_then(|mut l| l.remove(DEPLOYMENT_LABEL)),
            })
            .collect())
    }
}

fn engine_error(e: bollard::errors::Error) -> EngineError {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError { status_code: 404, message } => EngineError::NotFound(message),
        B::DockerResponseServerError { status_code: 409, message } => EngineError::Conflict(message),
        B::DockerResponseServerError { status_code, message } if status_code >= 500 => {
            EngineError::Failed(format!("engine error {status_code}: {message}"))
        }
        B::DockerResponseServerError { message, .. } => EngineError::Failed(message),
        // What a deployment's status then says: the engine, not the server, went away.
        B::IOError { err } => EngineError::Unavailable(format!("the container engine did not answer: {err}")),
        other => EngineError::Unavailable(format!("the container engine did not answer: {other}")),
    }
}

mod digests;
mod egress;
mod facts;
mod host_firewall;
mod inspections;
mod installed;
mod output;
pub mod pulls;
pub use digests::LocalImage;

/// The guest-facing side: every call needs the engine the plugin was granted.
macro_rules! engine {
    ($state:expr) => {
        match $state.ctx.engine.clone() {
            Some(engine) => engine,
            None => return Err(EngineError::Unavailable("no container engine is connected".into())),
        }
    };
}

impl Host for CallState {
    async fn info(&mut self) -> Result<EngineInfo, EngineError> {
        engine!(self).info().await
    }
    async fn list_owned(&mut self) -> Result<Vec<OwnedObject>, EngineError> {
        let engine = engine!(self);
        let mut owned = engine.owned_containers().await?;
        owned.extend(engine.owned_networks().await?);
        Ok(owned)
    }
    async fn read_installed(&mut self, image: String) -> Result<u32, EngineError> {
        let engine = engine!(self);
        installed::read_and_keep(&engine, &self.ctx.store, &image).await
    }
    async fn image_present(&mut self, image: String) -> Result<bool, EngineError> {
        engine!(self).image_present(&image).await
    }
    async fn pull_image(&mut self, image: String) -> Result<(), EngineError> {
        engine!(self).pull_image(&image).await
    }
    async fn create_network(&mut self, spec: NetworkSpec) -> Result<NetworkInfo, EngineError> {
        engine!(self).create_network(spec).await
    }
    async fn remove_network(&mut self, name: String) -> Result<(), EngineError> {
        engine!(self).remove_network(&name).await
    }
    async fn create_container(&mut self, spec: ContainerSpec) -> Result<String, EngineError> {
        let engine = engine!(self);
        let id = engine.create_container(spec.clone()).await?;
        // What it was created with: the deployment's posture is read from this, never from the engine.
        let facts = engine.facts_of(&id, &spec).await;
        let event = crate::store::NewEvent::for_deployment(&spec.deployment_id, EventData::ContainerCreated(facts));
        if let Err(e) = self.ctx.store.record(event) {
            tracing::warn!(deployment = %spec.deployment_id, "cannot record the container's facts: {e}");
        }
        Ok(id)
    }
    async fn start_container(&mut self, id: String) -> Result<(), EngineError> {
        engine!(self).start_container(&id).await
    }
    async fn stop_container(&mut self, id: String, timeout_seconds: u32) -> Result<(), EngineError> {
        engine!(self).stop_container(&id, timeout_seconds).await
    }
    async fn remove_container(&mut self, id: String) -> Result<(), EngineError> {
        engine!(self).remove_container(&id).await
    }
    async fn inspect_container(&mut self, id: String) -> Result<ContainerInfo, EngineError> {
        engine!(self).inspect_container(&id).await
    }
    async fn container_usage(&mut self, id: String) -> Result<ContainerStats, EngineError> {
        engine!(self).container_usage(&id).await
    }
    async fn open_egress(&mut self, network: String, allowed_hosts: Vec<String>) -> Result<EgressInfo, EngineError> {
        engine!(self).open_egress(&network, allowed_hosts, false, &[]).await
    }
    async fn open_egress_learning(
        &mut self,
        network: String,
        allowed_hosts: Vec<String>,
    ) -> Result<EgressInfo, EngineError> {
        engine!(self).open_egress(&network, allowed_hosts, true, &[]).await
    }
    async fn container_logs(&mut self, id: String, query: LogQuery) -> Result<Vec<LogLine>, EngineError> {
        engine!(self).container_logs(&id, &query).await
    }
}
