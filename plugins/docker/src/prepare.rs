//! Making a deployment's images available: pulled (from allowed registries,
//! checked at `validate`), or built through the host (`github`, `package`);
//! then what each installs read through the engine for its SBOM.

use crate::exports::mcp_runtime::plugin::backend::{BackendError, Prepared};
use crate::mcp_runtime::plugin::container_engine::{self as engine, EngineError};
use crate::mcp_runtime::plugin::logging::{log, Level};
use crate::{engine_error, github, invalid, package};
use guest_kit::types::{DeployRequest, Source};
use guest_kit::warning;

pub fn prepare(request: &DeployRequest) -> Result<Prepared, BackendError> {
    let mut prepared = prepare_source(request)?;
    // What each image installs, for its SBOM and the OSV match (kept by the host).
    let images = match &request.entry.source {
        Source::Compose(stack) => stack.services.iter().map(|s| s.image.clone()).collect(),
        _ => vec![prepared.image.clone()],
    };
    for image in images {
        if let Err(
            EngineError::NotFound(why)
            | EngineError::Unavailable(why)
            | EngineError::NotOwned(why)
            | EngineError::Conflict(why)
            | EngineError::Failed(why),
        ) = engine::read_installed(&image)
        {
            let message = format!("what {image} installs could not be read: {why}");
            prepared.warnings.push(warning("supply_chain.sbom", message));
        }
    }
    Ok(prepared)
}

/// The image to run: pulled, or built through the host.
fn prepare_source(request: &DeployRequest) -> Result<Prepared, BackendError> {
    let source = match &request.entry.source {
        Source::Image(source) if package::is_package(&source.image) => return package::prepare(&request.deployment_id),
        Source::Image(source) => source.clone(),
        Source::Github(github) => return github::prepare(request, github),
        Source::Compose(stack) => {
            for service in &stack.services {
                if !engine::image_present(&service.image).map_err(engine_error)? {
                    log(Level::Info, &format!("pulling {} for service {}", service.image, service.name));
                    engine::pull_image(&service.image).map_err(engine_error)?;
                }
            }
            let main = stack.services.iter().find(|s| s.name == stack.main_service);
            let image =
                main.map(|s| s.image.clone()).ok_or_else(|| invalid("source.main_service", "not in the stack"))?;
            return Ok(Prepared { image, warnings: Vec::new(), build: None });
        }
    };
    if !engine::image_present(&source.image).map_err(engine_error)? {
        log(Level::Info, &format!("pulling {}", source.image));
        engine::pull_image(&source.image).map_err(engine_error)?;
    }
    Ok(Prepared { image: source.image, warnings: Vec::new(), build: None })
}
