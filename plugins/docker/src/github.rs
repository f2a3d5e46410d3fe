//! Images built from a repository: the host resolves the revision to a
//! commit and builds it (grant `source`); a commit already built is reused
//! without fetching anything (`cache-hit`).

use crate::exports::mcp_runtime::plugin::backend::{BackendError, BuildFacts, Prepared};
use crate::mcp_runtime::plugin::container_engine as engine;
use crate::mcp_runtime::plugin::logging::{log, Level};
use crate::mcp_runtime::plugin::source::{self, BuildSpec, SourceError};
use guest_kit::types::{DeployRequest, GithubSource};

/// Images built here are named under this prefix: they are never pulled.
const LOCAL_REGISTRY: &str = "mcp-runtime.local";

/// A push needs a registry, and one the backend may use: refused before anything is built.
pub fn check_push(github: &GithubSource, allowed: Option<&[String]>) -> Result<(), BackendError> {
    if !github.push_to_registry {
        return Ok(());
    }
    let Some(registry) = github.registry.as_deref().filter(|r| !r.trim().is_empty()) else {
        return Err(BackendError::Invalid(guest_kit::denial("source.registry", "push_to_registry needs a registry")));
    };
    let probe = format!("{}/probe:1", registry.trim_end_matches('/'));
    if let Some(allowed) = allowed.filter(|allowed| !image_ref::is_allowed(&probe, allowed)) {
        let reason = format!("registry '{}' is not in allowed_registries {allowed:?}", image_ref::of(&probe));
        return Err(BackendError::Invalid(guest_kit::denial("source.registry", &reason)));
    }
    Ok(())
}

pub fn prepare(request: &DeployRequest, github: &GithubSource) -> Result<Prepared, BackendError> {
    let credential = github.credential.as_deref();
    let commit = source::resolve(&github.repo, github.revision.as_deref(), credential).map_err(source_error)?;
    let name = format!("{LOCAL_REGISTRY}/{}", request.entry.slug);
    let image = format!("{name}:{}", &commit[..12]);
    if crate::engine_call(engine::image_present(&image))? {
        log(Level::Info, &format!("{image} is built already: reusing it"));
        let image = pushed(request, github, &image, &commit)?;
        return Ok(Prepared { image, warnings: Vec::new(), build: Some(BuildFacts { commit, cache_hit: true }) });
    }
    let mut tags = vec![image.clone()];
    tags.extend(request.entry.version.as_ref().map(|v| format!("{name}:{v}")));
    let spec = BuildSpec {
        deployment_id: request.deployment_id.clone(),
        repo: github.repo.clone(),
        commit: commit.clone(),
        dockerfile: github.dockerfile.clone(),
        context_dir: github.context_dir.clone(),
        build_args: github.build_args.clone(),
        target: github.target.clone(),
        tags,
        credential: github.credential.clone(),
    };
    source::build(&spec).map_err(source_error)?;
    let image = pushed(request, github, &image, &commit)?;
    Ok(Prepared { image, warnings: Vec::new(), build: Some(BuildFacts { commit, cache_hit: false }) })
}

/// With `push_to_registry`, the image pushed and named by its digest (what
/// then runs); otherwise the local image.
fn pushed(request: &DeployRequest, github: &GithubSource, image: &str, commit: &str) -> Result<String, BackendError> {
    let Some(registry) = github.registry.as_deref().filter(|_| github.push_to_registry) else {
        return Ok(image.to_string());
    };
    let destination = format!("{}/{}:{}", registry.trim_end_matches('/'), request.entry.slug, &commit[..12]);
    source::push(&request.deployment_id, image, &destination).map_err(source_error)
}

pub fn source_error(e: SourceError) -> BackendError {
    match e {
        SourceError::Invalid(denial) => BackendError::Invalid(denial),
        SourceError::Denied(why) => BackendError::Invalid(guest_kit::denial("source.repo", &why)),
        SourceError::BuildFailed(why) => BackendError::Failed(format!("the build failed: {why}")),
        SourceError::Stopped(why) => BackendError::Failed(why),
        SourceError::Unavailable(why) => BackendError::Unavailable(why),
    }
}
