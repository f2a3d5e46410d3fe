//! Grant `source`: the host resolves refs, checks commits out and builds
//! images from them through the engine (see `repositories/`). The plugin names a
//! repository, a commit and paths; credentials and checkouts never reach it.
//! Package entries (1.4) are built here too (`package_build`): the plugin
//! names only the deployment; what is built is the host's record of it.
//! A stdio server's image gets the host's stdio bridge as its entrypoint
//! (1.5, `stdio_bridge`) for backends that run only HTTP servers.

mod package_build;
mod stdio_bridge;

use bollard::query_parameters::{BuildImageOptions, TagImageOptions};
use futures_util::StreamExt;
use std::sync::Arc;

use super::{CallState, ContainerEngine};
use crate::contract::source::{BuildSpec, BuiltPackage, Host, SourceError};
use crate::contract::types::{Denial, PackageSource};
use crate::repositories::{context_tar, Repositories, RepositoryError as Failure};

/// Log lines a failed build's error quotes.
const LAST_LINES: usize = 12;

impl From<Failure> for SourceError {
    fn from(e: Failure) -> SourceError {
        match e {
            Failure::Invalid { field, reason } => SourceError::Invalid(Denial { field, reason }),
            Failure::Denied(why) => SourceError::Denied(why),
            Failure::Unavailable(why) => SourceError::Unavailable(why),
        }
    }
}

impl CallState {
    fn repositories(&self) -> Result<(Arc<Repositories>, Arc<ContainerEngine>), SourceError> {
        let repositories = self
            .ctx
            .repositories
            .clone()
            .ok_or_else(|| SourceError::Unavailable("no repositories configured".into()))?;
        let engine = self
            .ctx
            .engine
            .clone()
            .ok_or_else(|| SourceError::Unavailable("no container engine is connected".into()))?;
        Ok((repositories, engine))
    }
}

impl Host for CallState {
    async fn push(&mut self, deployment_id: String, image: String, destination: String) -> Result<String, SourceError> {
        let (repositories, engine) = self.repositories()?;
        let pushed = push(&repositories, &engine, &deployment_id, &image, &destination).await;
        if let Err(e) = &pushed {
            repositories.logs.append(&deployment_id, &format!("push failed: {}", describe(e)));
        }
        pushed
    }

    async fn resolve(
        &mut self,
        repo: String,
        revision: Option<String>,
        credential: Option<String>,
    ) -> Result<String, SourceError> {
        let (repositories, _) = self.repositories()?;
        Ok(repositories.resolve(&repo, revision.as_deref(), credential.as_deref()).await?)
    }

    async fn build(&mut self, spec: BuildSpec) -> Result<String, SourceError> {
        let (repositories, engine) = self.repositories()?;
        let deployment = spec.deployment_id.clone();
        let timeout = repositories.build_timeout();
        logged_build(&repositories, &deployment, timeout, build(&repositories, &engine, spec)).await
    }

    async fn deployment_package(&mut self) -> Option<PackageSource> {
        self.about.source.as_ref().and_then(|source| source.package()).map(|package| (&package).into())
    }

    async fn build_package(&mut self, deployment_id: String, tags: Vec<String>) -> Result<BuiltPackage, SourceError> {
        let (repositories, engine) = self.repositories()?;
        let source = self.about.source.clone().filter(|s| s.package().is_some()).ok_or_else(|| {
            let reason = "build-package builds the package entry a backend's prepare is called for; this call has none";
            SourceError::Invalid(Denial { field: "source.type".into(), reason: reason.into() })
        })?;
        let package = source.package().expect("a package source");
        let build = package_build::PackageBuild {
            engine: &engine,
            repositories: &repositories,
            store: &self.ctx.store,
            deployment: &deployment_id,
            package,
            made: Default::default(),
        };
        let network = package_build::build_network(&deployment_id);
        let timeout = std::time::Duration::from_secs(repositories.builders().build_timeout_seconds);
        let outcome = logged_build(&repositories, &deployment_id, timeout, build.run(&tags)).await;
        // Finished or cut short (a timeout, a cancel), what the build made goes.
        build.clean_up(&network).await;
        outcome
    }

    async fn bridge_stdio(
        &mut self,
        deployment_id: String,
        image: String,
        tags: Vec<String>,
    ) -> Result<String, SourceError> {
        let (repositories, engine) = self.repositories()?;
        let bridging =
            stdio_bridge::StdioBridge { engine: &engine, repositories: &repositories, deployment: &deployment_id };
        // Copying a file and committing is quick; pulling the image may not be.
        let timeout = std::time::Duration::from_secs(repositories.builders().build_timeout_seconds);
        let bridged = tokio::time::timeout(timeout, bridging.run(&image, &tags))
            .await
            .unwrap_or_else(|_| Err(SourceError::Stopped(format!("bridging took longer than {}s", timeout.as_secs()))));
        if let Err(e) = &bridged {
            repositories.logs.append(&deployment_id, &format!("stdio bridge failed: {}", describe(e)));
        }
        bridged
    }
}

/// Runs a build with its log kept, under the time limit, cancelled when
/// the deployment is deleted; the failure written to the log.
async fn logged_build<T>(
    repositories: &Repositories,
    deployment: &str,
    timeout: std::time::Duration,
    build: impl std::future::Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    let cancelled = repositories.begin_build(deployment);
    repositories.logs.start(deployment);
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(timeout, build) => outcome.unwrap_or_else(|_| {
            Err(SourceError::Stopped(format!("the build took longer than {}s", timeout.as_secs())))
        }),
        _ = cancelled.cancelled() => Err(SourceError::Stopped("the build was cancelled".into())),
    };
    if let Err(e) = &outcome {
        repositories.logs.append(deployment, &format!("build failed: {}", describe(e)));
    }
    repositories.logs.finish(deployment);
    repositories.end_build(deployment);
    outcome
}

/// Tags `image` as `destination`, pushes it with the host's login for its
/// registry, and names it by the digest the registry gave it.
async fn push(
    repositories: &Repositories,
    engine: &ContainerEngine,
    deployment: &str,
    image: &str,
    destination: &str,
) -> Result<String, SourceError> {
    use bollard::query_parameters::PushImageOptions;
    let unavailable =
        |what: &str, e: bollard::errors::Error| SourceError::Unavailable(repositories.mask(&format!("{what}: {e}")));
    let (repo, tag) = match destination.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (destination, "latest"),
    };
    let registry = repo.split('/').next().unwrap_or_default();
    let docker = engine.docker();
    let options = TagImageOptions { repo: Some(repo.into()), tag: Some(tag.into()) };
    docker.tag_image(image, Some(options)).await.map_err(|e| unavailable("tagging", e))?;
    let credentials = repositories.registry_credentials(registry);
    repositories.logs.append(deployment, &format!("pushing {destination}"));
    let mut progress =
        docker.push_image(repo, Some(PushImageOptions { tag: Some(tag.into()), ..Default::default() }), credentials);
    while let Some(step) = progress.next().await {
        match step {
            Ok(step) => {
                if let Some(error) = step.error_detail.and_then(|d| d.message) {
                    return Err(push_refused(repositories, registry, &error));
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(push_refused(repositories, registry, &error))
            }
            Err(e) => return Err(unavailable("pushing", e)),
        }
    }
    let inspected = docker.inspect_image(destination).await.map_err(|e| unavailable("inspecting", e))?;
    let digest = inspected.repo_digests.unwrap_or_default().into_iter().find(|d| d.starts_with(&format!("{repo}@")));
    let digest = digest.ok_or_else(|| SourceError::Unavailable(format!("{registry} gave {destination} no digest")))?;
    repositories.logs.append(deployment, &format!("pushed {digest}"));
    Ok(digest)
}

fn push_refused(repositories: &Repositories, registry: &str, error: &str) -> SourceError {
    let lower = error.to_lowercase();
    let error = repositories.mask(error);
    if ["unauthorized", "authentication required", "denied"].iter().any(|m| lower.contains(m)) {
        let reason = format!("{registry} refused the host's login (runtime.repositories.registries): {error}");
        return SourceError::Invalid(Denial { field: "source.registry".into(), reason });
    }
    SourceError::Unavailable(format!("pushing to {registry}: {error}"))
}

/// Reads a build's progress into the deployment's log: the image built,
/// with the image each step made (not found in the cache) gathered in `steps`.
async fn follow_build(
    repositories: &Repositories,
    deployment: &str,
    stream: &mut (impl futures_util::Stream<Item = Result<bollard::models::BuildInfo, bollard::errors::Error>> + Unpin),
    steps: &mut Vec<String>,
) -> Result<Option<String>, SourceError> {
    let failed = |error: &str| {
        let tail = repositories.logs.tail(deployment, LAST_LINES);
        SourceError::BuildFailed(repositories.mask(&format!("{error}\n{tail}")))
    };
    let (mut image, mut cached) = (None, false);
    while let Some(step) = stream.next().await {
        let step = match step {
            Ok(step) => step,
            // How the engine reports a step that failed.
            Err(bollard::errors::Error::DockerStreamError { error }) => return Err(failed(&error)),
            Err(e) => return Err(SourceError::Unavailable(format!("engine: {e}"))),
        };
        if let Some(text) = &step.stream {
            repositories.logs.append(deployment, &repositories.mask(text));
            for line in text.lines().map(str::trim) {
                // Only images this build made: a cached one may be under another build right now.
                if line == "---> Using cache" {
                    cached = true;
                } else if let Some(id) =
                    line.strip_prefix("---> ").filter(|id| id.chars().all(|c| c.is_ascii_hexdigit()))
                {
                    if !std::mem::take(&mut cached) {
                        steps.push(id.to_string());
                    }
                }
            }
        }
        if let Some(error) = step.error_detail.and_then(|d| d.message) {
            return Err(failed(&error));
        }
        if let Some(id) = step.aux.and_then(|aux| aux.id) {
            image = Some(id);
        }
    }
    Ok(image)
}

/// Checkout, context, build, tags; the image id.
async fn build(repositories: &Repositories, engine: &ContainerEngine, spec: BuildSpec) -> Result<String, SourceError> {
    let deployment = spec.deployment_id.as_str();
    let log = |line: &str| repositories.logs.append(deployment, &repositories.mask(line));
    log(&format!("fetching {} at {}", spec.repo, spec.commit));
    let checkout = repositories.checkout(deployment, &spec.repo, &spec.commit, spec.credential.as_deref()).await?;
    // A large repository takes a while to pack: off the async workers (there may be one).
    let context =
        crate::tasks::blocking(|| context_tar(checkout.path(), spec.context_dir.as_deref(), &spec.dockerfile))?;
    drop(checkout);
    let Some((first, more)) = spec.tags.split_first() else {
        return Err(SourceError::Invalid(Denial { field: "tags".into(), reason: "a build needs a tag".into() }));
    };
    let options = BuildImageOptions {
        dockerfile: context.dockerfile.clone(),
        t: Some(first.clone()),
        buildargs: Some(spec.build_args.iter().cloned().collect()),
        target: spec.target.clone().unwrap_or_default(),
        labels: Some(engine.labels(deployment, &[("mcp-runtime.commit".into(), spec.commit.clone())])),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let docker = engine.docker();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.tar.into())));
    let mut steps = Vec::new();
    let image = match follow_build(repositories, deployment, &mut stream, &mut steps).await {
        Ok(image) => image,
        Err(e) => {
            // The steps that succeeded left images the failure made dangling; one that
            // still lies under a tagged image stays (the engine refuses to remove it). No
            // pruning beyond them: their parents may be another build's cache right now.
            let exactly = bollard::query_parameters::RemoveImageOptions { noprune: true, ..Default::default() };
            for id in steps.iter().rev() {
                let _ = docker.remove_image(id, Some(exactly.clone()), None).await;
            }
            return Err(e);
        }
    };
    tag_all(engine, first, more).await?;
    log(&format!("built {first}"));
    image.ok_or_else(|| SourceError::BuildFailed("the engine named no image".into()))
}

/// Gives `image` every tag of `tags` (`repo:tag`; `repo` alone is `repo:latest`).
async fn tag_all(engine: &ContainerEngine, image: &str, tags: &[String]) -> Result<(), SourceError> {
    for extra in tags {
        let (repo, tag) = extra.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((extra, "latest"));
        let options = TagImageOptions { repo: Some(repo.into()), tag: Some(tag.into()) };
        let tagged = engine.docker().tag_image(image, Some(options)).await;
        tagged.map_err(|e| SourceError::Unavailable(format!("tagging: {e}")))?;
    }
    Ok(())
}

fn describe(e: &SourceError) -> String {
    match e {
        SourceError::Invalid(d) => format!("{}: {}", d.field, d.reason),
        SourceError::Denied(m)
        | SourceError::BuildFailed(m)
        | SourceError::Stopped(m)
        | SourceError::Unavailable(m) => m.clone(),
    }
}
