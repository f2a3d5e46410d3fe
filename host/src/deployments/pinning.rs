//! Images pinned to their content (`supply_chain::PinnedImage`): read when a
//! request is checked, so policies, approval rules and approvers judge one
//! content; run by that content, so a tag that moves later changes nothing
//! that was approved; and read again before an approved deployment starts,
//! so a tag that moved in between stops it rather than leaving approvers
//! believing the tag still names what they approved.

use super::{Runtime, RuntimeError};
use crate::capabilities::Grant;
use crate::catalog::ServerSource;
use crate::deployment::{Deployment, DeploymentRequest};
use crate::plugins::Plugin;
use crate::supply_chain::PinnedImage;

impl Runtime {
    /// `image` pinned through the host's engine, with the host's login for
    /// its registry (unresolved, and said why, without an engine).
    pub(super) async fn pin_image(&self, image: &str) -> PinnedImage {
        let Some(engine) = self.backends.engine() else {
            return PinnedImage::unresolved(image, "no container engine is connected to read its digest".into());
        };
        engine.pin(image, self.repositories.registry_credentials(image_ref::of(image))).await
    }

    /// The request as the backend runs it: an image source names its pinned
    /// content (an image id only for a backend on the host's own engine).
    pub(super) async fn as_pinned(
        &self,
        d: &Deployment,
        stored: &DeploymentRequest,
        backend: &Plugin,
    ) -> Result<DeploymentRequest, RuntimeError> {
        let mut runs = stored.clone();
        let (Some(pinned), ServerSource::Docker { image, .. }) = (&stored.pinned_image, &mut runs.entry.source) else {
            return Ok(runs);
        };
        if let Some(approved) = &d.approved {
            if image_ref::digest(&pinned.requested).is_none() {
                let now = self.pin_image(&pinned.requested).await;
                if pinned.moved(&now) {
                    return Err(RuntimeError::Conflict(format!(
                        "{} moved after {} approved it: approved {}, it now names {}; deploy again to ask for \
                         approval of what it names now",
                        pinned.requested,
                        approved.by,
                        pinned.content().unwrap_or("?"),
                        now.content().unwrap_or("?")
                    )));
                }
            }
        }
        *image = pinned.runs(backend.manifest.grants.contains(&Grant::ContainerEngine));
        Ok(runs)
    }
}
