//! `source.build-package` (1.4): a package entry built into an image the
//! host's way. Each step runs in an ordinary container the host creates
//! itself, guarded like a `restricted` server: every capability dropped, no
//! new privileges, memory and process limits, on an internal network whose
//! only way out is the egress proxy letting through the package index. The
//! install's result is committed as the image, with the package's
//! executable as entrypoint, run by a non-root user. (The engine's builder
//! runs `RUN` steps with its default capabilities and the bridge's open
//! egress; a plain container takes every guardrail.)

use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CommitContainerOptions, CreateContainerOptions, DownloadFromContainerOptions, LogsOptions, RemoveContainerOptions,
    UploadToContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};

use super::super::ContainerEngine;
use crate::contract::container_engine::NetworkSpec;
use crate::contract::source::{BuiltPackage, SourceError};
use crate::contract::types::Denial;
use crate::events::{EventData, PackageLock};
use crate::packages::recipe::{self, Recipe, Step};
use crate::packages::{lock, Ecosystem, Lock, PackageRequest};
use crate::repositories::Repositories;
use crate::store::{NewEvent, Store, Table};

/// What one build step's container may use.
const STEP_MEMORY_BYTES: i64 = 2 << 30;
const STEP_PIDS: i64 = 1024;
/// Log lines a failure quotes.
const LAST_LINES: usize = 15;
/// Images built here are named under this prefix: they are never pulled.
const LOCAL_REGISTRY: &str = "mcp-runtime.local";

pub struct PackageBuild<'a> {
    pub engine: &'a ContainerEngine,
    pub repositories: &'a Repositories,
    pub store: &'a Store,
    pub deployment: &'a str,
    pub package: PackageRequest<'a>,
    /// Containers made so far, removed however the build ends.
    pub made: Arc<Mutex<Vec<String>>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Unavailable(format!("{what}: {e}"))
}

fn invalid(field: &str, reason: String) -> SourceError {
    SourceError::Invalid(Denial { field: field.into(), reason })
}

/// `pkg:npm/%40scope/name` as an image repository: `…/npm/scope/name`.
fn repository(package: &PackageRequest<'_>) -> String {
    let name: String = package
        .name
        .trim_start_matches('@')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "/-.".contains(c) { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("{LOCAL_REGISTRY}/{}/{name}", package.ecosystem.as_str())
}

/// The cache key as a tag: version, lock, base image, and whether scripts ran.
fn tag(package: &PackageRequest<'_>, lock: &Lock, base: &str) -> String {
    let short = |digest: &str| digest.trim_start_matches("sha256:").chars().take(12).collect::<String>();
    let version: String =
        package.version.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    let scripts = if package.allow_install_scripts { "-scripts" } else { "" };
    format!("{version}-{}-{}{scripts}", short(&lock.digest), short(base))
}

impl PackageBuild<'_> {
    fn log(&self, line: &str) {
        self.repositories.logs.append(self.deployment, line);
    }

    /// Builds the package, or finds it built: the image by its tag. The
    /// caller runs `clean_up` afterwards, also when the build was cut short.
    pub async fn run(&self, tags: &[String]) -> Result<BuiltPackage, SourceError> {
        let docker = self.engine.docker();
        let builders = self.repositories.builders();
        let config = builders.ecosystem(self.package.ecosystem);
        let key = match self.package.ecosystem {
            Ecosystem::Npm => "runtime.builders.npm.base_image",
            Ecosystem::Pypi => "runtime.builders.pypi.base_image",
        };
        let base = docker.inspect_image(&config.base_image).await.map_err(|e| {
            SourceError::Unavailable(format!(
                "the base image {} ({key}) is not on the engine ({e}): `make base-images` builds the default ones",
                config.base_image
            ))
        })?;
        let base_id = base.id.unwrap_or_default();
        let lock_key = lock::key(&self.package, &base_id);
        let stored: Option<Lock> =
            self.store.get(Table::PackageLocks, &lock_key).map_err(|e| unavailable("store", e))?;
        if let Some(lock) = &stored {
            let image = format!("{}:{}", repository(&self.package), tag(&self.package, lock, &base_id));
            if docker.inspect_image(&image).await.is_ok() {
                self.log(&format!("{image} is built already (lock {}): reusing it", lock.digest));
                super::tag_all(self.engine, &image, tags).await?;
                return Ok(BuiltPackage { image, lock: lock.digest.clone(), cache_hit: true });
            }
        }
        let network = build_network(self.deployment);
        let spec = NetworkSpec { deployment_id: self.deployment.into(), name: network.clone(), internal: true };
        self.engine
            .create_network(spec)
            .await
            .map_err(|e| unavailable("creating the build network", engine_message(e)))?;
        // The network and the steps' containers go in `clean_up`, however the build ends.
        self.build_on(&network, &base_id, &config.base_image, stored, tags).await
    }

    async fn build_on(
        &self,
        network: &str,
        base_id: &str,
        base_name: &str,
        stored: Option<Lock>,
        tags: &[String],
    ) -> Result<BuiltPackage, SourceError> {
        let builders = self.repositories.builders();
        let index = builders.ecosystem(self.package.ecosystem).index;
        let allowed = index_hosts(&index);
        let proxy = self
            .engine
            .open_egress(network, allowed.clone(), false, &builders.index_networks())
            .await
            .map_err(|e| unavailable("opening the build's egress", engine_message(e)))?
            .proxy;
        let recipe = Recipe::new(&self.package, builders, proxy)
            .map_err(|e| unavailable("reading runtime.builders.ca_bundle", e))?;
        self.log(&format!(
            "building {} on {base_name} ({base_id}); egress only to {}",
            self.package.purl(),
            allowed.join(", ")
        ));
        let lock = match stored {
            Some(lock) => {
                self.log(&format!(
                    "installing from the stored lock {} ({} packages)",
                    lock.digest,
                    lock.packages.len()
                ));
                lock
            }
            None => self.make_lock(&recipe, network, base_id, &allowed).await?,
        };
        let bin = self.package.bin.unwrap_or_else(|| self.package.name.rsplit('/').next().unwrap_or_default());
        let step = recipe.install_step(&lock, bin);
        let container = self.run_step("install", &step, network, base_id).await;
        let container = match container {
            Ok(container) => container,
            Err(StepFailure::Exited(code, tail)) if code == recipe::NO_EXECUTABLE => {
                return Err(invalid("source.bin", format!("the package installed no executable '{bin}'\n{tail}")))
            }
            Err(failure) => return Err(self.failed("the install", failure, Some(&lock), &allowed)),
        };
        let image = format!("{}:{}", repository(&self.package), tag(&self.package, &lock, base_id));
        self.commit(&container, &image, &recipe, bin, &lock).await?;
        super::tag_all(self.engine, &image, tags).await?;
        self.log(&format!("built {image}"));
        Ok(BuiltPackage { image, lock: lock.digest, cache_hit: false })
    }

    /// Resolves the tree at the first build and keeps the lock.
    async fn make_lock(
        &self,
        recipe: &Recipe<'_>,
        network: &str,
        base_id: &str,
        index: &[String],
    ) -> Result<Lock, SourceError> {
        self.log("resolving the dependency tree (no lock for this version on this base image yet)");
        let step = recipe.lock_step();
        let container = self
            .run_step("lock", &step, network, base_id)
            .await
            .map_err(|f| self.failed("resolving", f, None, index))?;
        let output = step.output.as_deref().unwrap_or_default();
        let document = self.read_file(&container, output).await?;
        let parsed = match self.package.ecosystem {
            Ecosystem::Npm => Lock::from_npm(document, base_id),
            Ecosystem::Pypi => Lock::from_pip_report(&document, base_id),
        };
        let lock = parsed.map_err(|reason| SourceError::BuildFailed(format!("the lock is not usable: {reason}")))?;
        let data = EventData::PackageLocked(PackageLock {
            package: self.package.purl(),
            base_image: base_id.into(),
            digest: lock.digest.clone(),
            packages: lock.packages.len(),
        });
        let event = NewEvent::for_deployment(self.deployment, data);
        self.store
            .put(Table::PackageLocks, &lock::key(&self.package, base_id), &lock, event)
            .map_err(|e| unavailable("store", e))?;
        self.log(&format!("locked {} packages: {}", lock.packages.len(), lock.digest));
        Ok(lock)
    }

    /// Runs one step to its end; the stopped container, for reading and committing.
    async fn run_step(&self, name: &str, step: &Step, network: &str, base_id: &str) -> Result<String, StepFailure> {
        let docker = self.engine.docker();
        let proxy_ip = self.engine.egress().proxy_of(network, &[]).map(|(at, _)| at.ip().to_string());
        let body = ContainerCreateBody {
            image: Some(base_id.into()),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), step.script.clone()]),
            cmd: Some(Vec::new()),
            env: Some(vec![format!("HOME={}/home", recipe::BUILD_DIR)]),
            working_dir: Some("/".into()),
            labels: Some(self.engine.labels(self.deployment, &[("mcp-runtime.build".into(), name.into())])),
            host_config: Some(HostConfig {
                network_mode: Some(network.into()),
                dns: proxy_ip.map(|ip| vec![ip]),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges:true".into()]),
                memory: Some(STEP_MEMORY_BYTES),
                memory_swap: Some(STEP_MEMORY_BYTES),
                pids_limit: Some(STEP_PIDS),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(format!("mcp-build-{}-{name}", self.deployment)),
            ..Default::default()
        };
        let id = docker.create_container(Some(options), body).await.map_err(|e| StepFailure::Engine(e.to_string()))?.id;
        self.made.lock().expect("build containers poisoned").push(id.clone());
        let files = files_tar(&step.files).map_err(|e| StepFailure::Engine(e.to_string()))?;
        let upload = UploadToContainerOptions { path: "/".into(), ..Default::default() };
        docker
            .upload_to_container(&id, Some(upload), bollard::body_full(files.into()))
            .await
            .map_err(|e| StepFailure::Engine(format!("placing the build's files: {e}")))?;
        docker.start_container(&id, None).await.map_err(|e| StepFailure::Engine(e.to_string()))?;
        let follow = LogsOptions { follow: true, stdout: true, stderr: true, ..Default::default() };
        let mut output = docker.logs(&id, Some(follow));
        while let Some(Ok(chunk)) = output.next().await {
            self.repositories.logs.append(self.deployment, &String::from_utf8_lossy(&chunk.into_bytes()));
        }
        let mut waited = docker.wait_container(&id, None::<WaitContainerOptions>);
        let code = match waited.next().await {
            Some(Ok(exit)) => exit.status_code,
            // A non-zero exit arrives as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(StepFailure::Engine(e.to_string())),
            None => return Err(StepFailure::Engine("the engine never said how the step ended".into())),
        };
        match code {
            0 => Ok(id),
            code => Err(StepFailure::Exited(code, self.repositories.logs.tail(self.deployment, LAST_LINES))),
        }
    }

    /// A failed step as the deployment's error: the host it tried to reach
    /// outside the allowlist, the locked package whose hash did not match,
    /// or the step's last lines.
    fn failed(&self, what: &str, failure: StepFailure, lock: Option<&Lock>, index: &[String]) -> SourceError {
        let (code, tail) = match failure {
            StepFailure::Engine(e) => return SourceError::Unavailable(format!("{what}: {e}")),
            StepFailure::Exited(code, tail) => (code, tail),
        };
        let observed = self.engine.egress().observed(self.deployment);
        let refused: Vec<&crate::egress::Observed> = observed.iter().filter(|o| o.refused > 0).collect();
        // The index itself refused: its name resolves where egress may not go.
        let is_index = |o: &&&crate::egress::Observed| is_index_host(index, &o.host, o.port);
        if let Some(o) = refused.iter().find(is_index) {
            let why = o.last_refusal.as_deref().unwrap_or("refused");
            let hint = match why.starts_with("resolves to") {
                true => "; if the index is meant to be there, list its network in runtime.builders.index_addresses",
                false => "",
            };
            let reason = format!("{what} could not reach the package index {}:{}: {why}{hint}\n{tail}", o.host, o.port);
            return SourceError::BuildFailed(reason);
        }
        let refused: Vec<String> = refused.iter().map(|o| format!("{}:{}", o.host, o.port)).collect();
        if !refused.is_empty() {
            let reason = format!(
                "{what} tried to reach {}, which is not a package index this build may use (runtime.builders)\n{tail}",
                refused.join(", ")
            );
            return SourceError::BuildFailed(reason);
        }
        if let Some(package) = lock.and_then(|l| l.package_named_in(&tail)) {
            let reason = format!(
                "{what} failed: {}@{} does not match the lock's hash {} (the index now serves other content)\n{tail}",
                package.name, package.version, package.integrity
            );
            return SourceError::BuildFailed(reason);
        }
        SourceError::BuildFailed(format!("{what} failed (exit {code})\n{tail}"))
    }

    /// One file the step left, read from its stopped container.
    async fn read_file(&self, container: &str, path: &str) -> Result<String, SourceError> {
        let options = DownloadFromContainerOptions { path: path.into() };
        let mut stream = self.engine.docker().download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            archive.extend_from_slice(&chunk.map_err(|e| unavailable(&format!("reading {path}"), e))?);
        }
        let mut entries = tar::Archive::new(archive.as_slice());
        let mut text = String::new();
        let mut first = entries
            .entries()
            .map_err(|e| unavailable(path, e))?
            .next()
            .ok_or_else(|| unavailable(path, "empty"))?
            .map_err(|e| unavailable(path, e))?;
        std::io::Read::read_to_string(&mut first, &mut text).map_err(|e| unavailable(path, e))?;
        Ok(text)
    }

    /// The install's container as the image: the executable as entrypoint,
    /// the non-root user, HOME under `/tmp`; refused above the size limit.
    async fn commit(
        &self,
        container: &str,
        image: &str,
        recipe: &Recipe<'_>,
        bin: &str,
        lock: &Lock,
    ) -> Result<(), SourceError> {
        let docker = self.engine.docker();
        let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let mut labels = self.engine.labels(self.deployment, &[]);
        labels.insert("mcp-runtime.package".into(), self.package.purl());
        labels.insert("mcp-runtime.lock".into(), lock.digest.clone());
        let config = ContainerConfig {
            user: Some(recipe::RUN_AS.into()),
            entrypoint: Some(recipe.entrypoint(bin)),
            // With an entrypoint given, the container's own command is not carried over.
            cmd: Some(Vec::new()),
            env: Some(recipe.env()),
            working_dir: Some("/tmp".into()),
            labels: Some(labels),
            ..Default::default()
        };
        let options = CommitContainerOptions {
            container: Some(container.into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            comment: Some(format!("{} from lock {}", self.package.purl(), lock.digest)),
            pause: false,
            ..Default::default()
        };
        let committed =
            docker.commit_container(options, config).await.map_err(|e| unavailable("committing the image", e))?;
        let size = docker.inspect_image(&committed.id).await.ok().and_then(|i| i.size).unwrap_or(0).max(0) as u64;
        let most = self.repositories.builders().max_image_mb;
        if size > most << 20 {
            let _ = docker.remove_image(image, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
            return Err(SourceError::BuildFailed(format!(
                "the image is {} MB, more than runtime.builders.max_image_mb ({most} MB)",
                size >> 20
            )));
        }
        self.log(&format!("image {image}: {} MB", size >> 20));
        Ok(())
    }

    /// Removes the steps' containers and the build network (with its proxy);
    /// the build's egress observations are not the server's.
    pub async fn clean_up(&self, network: &str) {
        let made = std::mem::take(&mut *self.made.lock().expect("build containers poisoned"));
        let docker = self.engine.docker();
        for id in made {
            let _ = docker
                .remove_container(&id, Some(RemoveContainerOptions { force: true, v: true, ..Default::default() }))
                .await;
        }
        let _ = self.engine.remove_network(network).await;
        self.engine.egress().forget(self.deployment);
    }
}

/// The build's network: a bridge name is at most 15 characters.
pub fn build_network(deployment: &str) -> String {
    format!("mcpb-{}", deployment.chars().take(10).collect::<String>())
}

fn engine_message(e: crate::contract::container_engine::EngineError) -> String {
    use crate::contract::container_engine::EngineError as E;
    match e {
        E::NotFound(m) | E::NotOwned(m) | E::Conflict(m) | E::Unavailable(m) | E::Failed(m) => m,
    }
}

/// How a step ended when it did not succeed.
enum StepFailure {
    Engine(String),
    /// Its exit code and last log lines.
    Exited(i64, String),
}

/// The index's host (with its port when not the scheme's), and the host
/// PyPI serves its files from.
fn index_hosts(index: &str) -> Vec<String> {
    let Ok(url) = reqwest::Url::parse(index) else { return Vec::new() };
    let host = url.host_str().unwrap_or_default().to_string();
    let mut hosts = vec![match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    }];
    if host == "pypi.org" {
        hosts.push("files.pythonhosted.org".into());
    }
    hosts
}

/// Whether `host:port` is one of the index hosts (`name:port`, or `name` on 443 or 80).
fn is_index_host(index: &[String], host: &str, port: u16) -> bool {
    index.iter().any(|i| match i.rsplit_once(':') {
        Some((name, listed)) => name == host && listed.parse::<u16>() == Ok(port),
        None => i == host && (port == 443 || port == 80),
    })
}

/// The step's files as a tar to unpack at `/`.
fn files_tar(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        archive.append_data(&mut header, path.trim_start_matches('/'), contents.as_slice())?;
    }
    archive.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_named_by_their_cache_key() {
        let package = PackageRequest {
            ecosystem: Ecosystem::Npm,
            name: "@modelcontextprotocol/server-everything",
            version: "2026.8.31",
            bin: None,
            extras: &[],
            allow_install_scripts: false,
        };
        assert_eq!(repository(&package), "mcp-runtime.local/npm/modelcontextprotocol/server-everything");
        let lock = Lock {
            digest: "sha256:0123456789abcdef".into(),
            ..Lock::from_npm("{\"packages\": {}}".into(), "b").unwrap()
        };
        assert_eq!(tag(&package, &lock, "sha256:fedcba9876543210"), "2026.8.31-0123456789ab-fedcba987654");
        let scripts = PackageRequest { allow_install_scripts: true, version: "1.0.0+local", ..package };
        assert_eq!(tag(&scripts, &lock, "sha256:fedcba9876543210"), "1.0.0_local-0123456789ab-fedcba987654-scripts");
        assert_eq!(index_hosts("http://127.0.0.1:4873/"), ["127.0.0.1:4873"]);
        let index = index_hosts("http://127.0.0.1:4873/");
        assert!(is_index_host(&index, "127.0.0.1", 4873) && !is_index_host(&index, "127.0.0.1", 4874));
        let public = index_hosts("https://registry.npmjs.org/");
        assert!(
            is_index_host(&public, "registry.npmjs.org", 443) && !is_index_host(&public, "registry.npmjs.org", 8443)
        );
        assert_eq!(index_hosts("https://pypi.org/simple/"), ["pypi.org", "files.pythonhosted.org"]);
    }
}
