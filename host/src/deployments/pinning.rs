//! Images pinned to their content (`supply_chain::PinnedImage`): read when a
//! request is checked, so policies, approval rules and approvers judge one
//! content; run by that content, so a tag that moves later changes nothing
//! that was approved; and read again before an approved deployment starts,
//! so a tag that moved in between is not started: it goes back to its
//! approvers, with the new content pinned, rather than leaving them believing
//! the tag still names what they approved.

use super::{Runtime, RuntimeError};
use crate::approvals::Decision;
use crate::capabilities::Grant;
use crate::catalog::ServerSource;
use crate::contract::types as wit;
use crate::deployment::{Deployment, DeploymentRequest, State};
use crate::plugins::Plugin;
use crate::supply_chain::PinnedImage;

/// What a deployment about to start is to run.
pub(super) enum Pinned {
    /// The request as the backend runs it.
    Runs(Box<DeploymentRequest>),
    /// Its content moved since it was approved: it waits for approval again.
    HeldAgain,
}

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
    /// content (an image id only for a backend on the host's own engine; a
    /// stack's services are named in the plugin's request, `pin_services`).
    pub(super) async fn as_pinned(
        &self,
        d: &Deployment,
        stored: &DeploymentRequest,
        backend: &Plugin,
    ) -> Result<Pinned, RuntimeError> {
        if let Some(approved) = &d.approved {
            let pins = stored.pinned_image.iter().chain(&stored.pinned_stack);
            for pinned in pins.filter(|p| image_ref::digest(&p.requested).is_none()) {
                let now = self.pin_image(&pinned.requested).await;
                if pinned.moved(&now) {
                    let why = format!(
                        "{} moved after {} approved it: approved {}, it now names {}",
                        pinned.requested,
                        approved.by,
                        pinned.content().unwrap_or("?"),
                        now.content().unwrap_or("?")
                    );
                    self.ask_again(d, now, why).await?;
                    return Ok(Pinned::HeldAgain);
                }
            }
        }
        let mut runs = stored.clone();
        if let (Some(pinned), ServerSource::Docker { image, .. }) = (&stored.pinned_image, &mut runs.entry.source) {
            *image = pinned.runs(on_host_engine(backend));
        }
        Ok(Pinned::Runs(Box::new(runs)))
    }

    /// Holds an approved deployment for approval again, the new content
    /// pinned: a new request (the rules asked again, the move its first
    /// reason), then the deployment back to `awaiting_approval`.
    async fn ask_again(&self, d: &Deployment, now: PinnedImage, why: String) -> Result<(), RuntimeError> {
        let mut held = d.clone();
        if let Some(request) = held.request.as_mut() {
            repin(request, &now);
        }
        held.approved = None;
        let stored = held.request.as_ref().ok_or_else(|| RuntimeError::Conflict("deployment has no request".into()))?;
        let plugin_request = crate::contract::deploy_request(&d.id, &d.backend, stored, d.requested_by.as_deref());
        let asked = self.approvals.needs_approval(&plugin_request, &d.guardrails_applied, &stored.evidence).await?;
        let mut decision = asked.unwrap_or(Decision { reasons: Vec::new(), approvers: Vec::new() });
        decision.reasons.insert(0, why.clone());
        self.approvals.request_again(&held, decision)?;
        self.transition(&d.id, State::AwaitingApproval, Some(why), |d| {
            if let Some(request) = d.request.as_mut() {
                repin(request, &now);
            }
            d.approved = None;
        })?;
        Ok(())
    }
}

/// `now` in place of the pin of the same reference (the image's, or one of the stack's).
fn repin(request: &mut DeploymentRequest, now: &PinnedImage) {
    let pins = request.pinned_image.iter_mut().chain(request.pinned_stack.iter_mut());
    for pinned in pins.filter(|p| p.requested == now.requested) {
        *pinned = now.clone();
    }
    if request.pinned_image.as_ref().is_some_and(|p| p.requested == now.requested) {
        request.evidence.digest = now.content().map(String::from);
    }
}

fn on_host_engine(backend: &Plugin) -> bool {
    backend.manifest.grants.contains(&Grant::ContainerEngine)
}

/// A stack's services in the plugin's request named by their pinned content.
pub(super) fn pin_services(request: &mut wit::DeployRequest, runs: &DeploymentRequest, backend: &Plugin) {
    let wit::Source::Compose(stack) = &mut request.entry.source else { return };
    for service in &mut stack.services {
        if let Some(pinned) = runs.pinned_stack.iter().find(|p| p.requested == service.image) {
            service.image = pinned.runs(on_host_engine(backend));
        }
    }
}
