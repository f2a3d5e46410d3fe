//! What an image reference names, read through the engine for the host's
//! supply-chain checks (`supply_chain::PinnedImage`): the registry's manifest
//! digest without pulling (the engine's distribution inspect), and the
//! image the engine holds locally under that name.

use bollard::auth::DockerCredentials;
use std::time::Duration;

use super::{engine_error, ContainerEngine, EngineError};
use crate::supply_chain::PinnedImage;

/// How long the registry may take to name a digest.
const REGISTRY_DEADLINE: Duration = Duration::from_secs(30);

/// An image the engine holds: its id, and the registry digests it was pulled or pushed as.
pub struct LocalImage {
    pub id: String,
    pub repo_digests: Vec<String>,
}

impl ContainerEngine {
    /// The manifest digest (`sha256:…`) the registry serves for `image` now.
    pub async fn registry_digest(
        &self,
        image: &str,
        credentials: Option<DockerCredentials>,
    ) -> Result<String, EngineError> {
        let inspected = self.docker().inspect_registry_image(image, credentials).await.map_err(engine_error)?;
        inspected
            .descriptor
            .digest
            .filter(|d| d.starts_with("sha256:"))
            .ok_or_else(|| EngineError::Failed(format!("the registry named no digest for {image}")))
    }

    /// The image the engine holds under `image`, if any.
    pub async fn local_image(&self, image: &str) -> Result<Option<LocalImage>, EngineError> {
        match self.docker().inspect_image(image).await {
            Ok(found) => Ok(Some(LocalImage {
                id: found.id.unwrap_or_default(),
                repo_digests: found.repo_digests.unwrap_or_default(),
            })),
            Err(e) => match engine_error(e) {
                EngineError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// `image` pinned to its content, with the host's login for its registry.
    pub async fn pin(&self, image: &str, credentials: Option<DockerCredentials>) -> PinnedImage {
        let repository = image_ref::repository(image);
        let local = self.local_image(image).await.ok().flatten();
        let from_registry = match image_ref::digest(image) {
            Some(named) => Ok(named.to_string()),
            None => match tokio::time::timeout(REGISTRY_DEADLINE, self.registry_digest(image, credentials)).await {
                Ok(Ok(digest)) => Ok(digest),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("the registry did not answer within {}s", REGISTRY_DEADLINE.as_secs())),
            },
        };
        // The local image counts only when it is the content the registry names (a tag
        // pulled long ago may be other content now).
        let local_digest = |local: &LocalImage| {
            local.repo_digests.iter().find_map(|d| d.strip_prefix(&format!("{repository}@")).map(String::from))
        };
        match (from_registry, local) {
            (Ok(digest), local) => {
                let image_id = local.filter(|l| local_digest(l).as_deref() == Some(digest.as_str())).map(|l| l.id);
                PinnedImage { requested: image.into(), digest: Some(digest), image_id, unresolved: None }
            }
            (Err(_), Some(local)) => {
                let digest = local_digest(&local);
                PinnedImage { requested: image.into(), digest, image_id: Some(local.id), unresolved: None }
            }
            (Err(why), None) => PinnedImage::unresolved(
                image,
                format!("the registry cannot be read ({why}) and the engine holds no copy"),
            ),
        }
    }
}
