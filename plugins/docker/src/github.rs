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

pub fn prepare(request: &DeployRequest, github: &GithubSource) -> Result<Prepared, BackendError> {
    let commit = source::resolve(&github.repo, github.revision.as_deref()).map_err(source_error)?;
    let name = format!("{LOCAL_REGISTRY}/{}", request.entry.slug);
    let image = format!("{name}:{}", &commit[..12]);
    if crate::engine_call(engine::image_present(&image))? {
        log(Level::Info, &format!("{image} is built already: reusing it"));
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
    };
    source::build(&spec).map_err(source_error)?;
    Ok(Prepared { image, warnings: Vec::new(), build: Some(BuildFacts { commit, cache_hit: false }) })
}

fn source_error(e: SourceError) -> BackendError {
    match e {
        SourceError::Invalid(denial) => BackendError::Invalid(denial),
        SourceError::Denied(why) => BackendError::Invalid(guest_kit::denial("source.repo", &why)),
        SourceError::BuildFailed(why) => BackendError::Failed(format!("the build failed: {why}")),
        SourceError::Stopped(why) => BackendError::Failed(why),
        SourceError::Unavailable(why) => BackendError::Unavailable(why),
    }
}
