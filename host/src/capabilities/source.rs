//! Grant `source`: the host resolves refs, checks commits out and builds
//! images from them through the engine (see `sources/`). The plugin names a
//! repository, a commit and paths; credentials and checkouts never reach it.

use bollard::query_parameters::{BuildImageOptions, TagImageOptions};
use futures_util::StreamExt;
use std::sync::Arc;

use super::{CallState, ContainerEngine};
use crate::contract::source::{BuildSpec, Host, SourceError};
use crate::contract::types::Denial;
use crate::sources::{context_tar, SourceError as Failure, Sources};

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
    fn sources(&self) -> Result<(Arc<Sources>, Arc<ContainerEngine>), SourceError> {
        let sources =
            self.ctx.sources.clone().ok_or_else(|| SourceError::Unavailable("no sources configured".into()))?;
        let engine = self
            .ctx
            .engine
            .clone()
            .ok_or_else(|| SourceError::Unavailable("no container engine is connected".into()))?;
        Ok((sources, engine))
    }
}

impl Host for CallState {
    async fn push(&mut self, deployment_id: String, image: String, destination: String) -> Result<String, SourceError> {
        let (sources, engine) = self.sources()?;
        let pushed = push(&sources, &engine, &deployment_id, &image, &destination).await;
        if let Err(e) = &pushed {
            sources.logs.append(&deployment_id, &format!("push failed: {}", describe(e)));
        }
        pushed
    }

    async fn resolve(
        &mut self,
        repo: String,
        revision: Option<String>,
        credential: Option<String>,
    ) -> Result<String, SourceError> {
        let (sources, _) = self.sources()?;
        Ok(sources.resolve(&repo, revision.as_deref(), credential.as_deref()).await?)
    }

    async fn build(&mut self, spec: BuildSpec) -> Result<String, SourceError> {
        let (sources, engine) = self.sources()?;
        let deployment = spec.deployment_id.clone();
        let cancelled = sources.begin_build(&deployment);
        sources.logs.start(&deployment);
        let build = build(&sources, &engine, spec);
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(sources.build_timeout(), build) => outcome.unwrap_or_else(|_| {
                Err(SourceError::Stopped(format!("the build took longer than {}s", sources.build_timeout().as_secs())))
            }),
            _ = cancelled.cancelled() => Err(SourceError::Stopped("the build was cancelled".into())),
        };
        if let Err(e) = &outcome {
            sources.logs.append(&deployment, &format!("build failed: {}", describe(e)));
        }
        sources.logs.finish(&deployment);
        sources.end_build(&deployment);
        outcome
    }
}

/// Tags `image` as `destination`, pushes it with the host's login for its
/// registry, and names it by the digest the registry gave it.
async fn push(
    sources: &Sources,
    engine: &ContainerEngine,
    deployment: &str,
    image: &str,
    destination: &str,
) -> Result<String, SourceError> {
    use bollard::auth::DockerCredentials;
    use bollard::query_parameters::PushImageOptions;
    let unavailable =
        |what: &str, e: bollard::errors::Error| SourceError::Unavailable(sources.mask(&format!("{what}: {e}")));
    let (repo, tag) = match destination.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (destination, "latest"),
    };
    let registry = repo.split('/').next().unwrap_or_default();
    let docker = engine.docker();
    let options = TagImageOptions { repo: Some(repo.into()), tag: Some(tag.into()) };
    docker.tag_image(image, Some(options)).await.map_err(|e| unavailable("tagging", e))?;
    let credentials = sources.registry_login(registry).map(|login| DockerCredentials {
        username: Some(login.username.clone()),
        password: Some(login.password.clone()),
        serveraddress: Some(registry.into()),
        ..Default::default()
    });
    sources.logs.append(deployment, &format!("pushing {destination}"));
    let mut progress =
        docker.push_image(repo, Some(PushImageOptions { tag: Some(tag.into()), ..Default::default() }), credentials);
    while let Some(step) = progress.next().await {
        match step {
            Ok(step) => {
                if let Some(error) = step.error_detail.and_then(|d| d.message) {
                    return Err(push_refused(sources, registry, &error));
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(push_refused(sources, registry, &error))
            }
            Err(e) => return Err(unavailable("pushing", e)),
        }
    }
    let inspected = docker.inspect_image(destination).await.map_err(|e| unavailable("inspecting", e))?;
    let digest = inspected.repo_digests.unwrap_or_default().into_iter().find(|d| d.starts_with(&format!("{repo}@")));
    let digest = digest.ok_or_else(|| SourceError::Unavailable(format!("{registry} gave {destination} no digest")))?;
    sources.logs.append(deployment, &format!("pushed {digest}"));
    Ok(digest)
}

fn push_refused(sources: &Sources, registry: &str, error: &str) -> SourceError {
    let lower = error.to_lowercase();
    let error = sources.mask(error);
    if ["unauthorized", "authentication required", "denied"].iter().any(|m| lower.contains(m)) {
        let reason = format!("{registry} refused the host's login (runtime.sources.registries): {error}");
        return SourceError::Invalid(Denial { field: "source.registry".into(), reason });
    }
    SourceError::Unavailable(format!("pushing to {registry}: {error}"))
}

/// Reads a build's progress into the deployment's log: the image built,
/// with the image each step made (not found in the cache) gathered in `steps`.
async fn follow_build(
    sources: &Sources,
    deployment: &str,
    stream: &mut (impl futures_util::Stream<Item = Result<bollard::models::BuildInfo, bollard::errors::Error>> + Unpin),
    steps: &mut Vec<String>,
) -> Result<Option<String>, SourceError> {
    let failed = |error: &str| {
        let tail = sources.logs.tail(deployment, LAST_LINES);
        SourceError::BuildFailed(sources.mask(&format!("{error}\n{tail}")))
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
            sources.logs.append(deployment, &sources.mask(text));
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
async fn build(sources: &Sources, engine: &ContainerEngine, spec: BuildSpec) -> Result<String, SourceError> {
    let deployment = spec.deployment_id.as_str();
    let log = |line: &str| sources.logs.append(deployment, &sources.mask(line));
    log(&format!("fetching {} at {}", spec.repo, spec.commit));
    let checkout = sources.checkout(deployment, &spec.repo, &spec.commit, spec.credential.as_deref()).await?;
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
    let image = match follow_build(sources, deployment, &mut stream, &mut steps).await {
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
    for tag in more {
        let (repo, tag) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
        let options = TagImageOptions { repo: Some(repo.into()), tag: Some(tag.into()) };
        docker.tag_image(first, Some(options)).await.map_err(|e| SourceError::Unavailable(format!("tagging: {e}")))?;
    }
    log(&format!("built {first}"));
    image.ok_or_else(|| SourceError::BuildFailed("the engine named no image".into()))
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
