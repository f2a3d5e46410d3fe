//! The supply-chain evidence of a deployment: what is known when it is
//! checked (the pinned digest and its signature, what that content was found
//! to install before), and once its image is there (`contents`), judged
//! again; evidence the rules did not see sends the request back to them.

use super::{Runtime, RuntimeError};
use crate::contract::{types as wit, GuardrailOptions};
use crate::deployment::{Deployment, DeploymentRequest, State};
use crate::guardrails::Profile;
use crate::supply_chain::osv::VulnerabilityReport;
use crate::supply_chain::signatures::ImageToCheck;
use crate::supply_chain::{Evidence, PinnedImage, SignatureCheck, SignatureMode, SignatureOutcome};

impl Runtime {
    /// What is known when a request is checked: the pinned content and its
    /// signature as the profile asks, and for a package whose version was
    /// built before, what its kept locks install.
    pub(super) async fn evidence_at_check(
        &self,
        request: &DeploymentRequest,
        profile: &Profile,
    ) -> Result<Evidence, RuntimeError> {
        let digest = request.pinned_image.as_ref().and_then(|p| p.content().map(String::from));
        let mut vulnerabilities = None;
        if let Some(package) = request.entry.source.package() {
            let boms = self.catalog.bills_of_materials(&request.entry)?;
            let tree = boms.iter().flat_map(|b| &b.packages).map(|p| (p.name.as_str(), p.version.as_str()));
            if !boms.is_empty() {
                vulnerabilities = self.advisories.judge(package.ecosystem.into(), tree);
            }
        }
        // Content read before (the same digest deployed earlier): judged now.
        let pins = request.pinned_image.iter().chain(&request.pinned_stack);
        let mut known = Vec::new();
        for pinned in pins {
            let keys = pinned.digest.iter().chain(&pinned.image_id);
            if let Some(inventory) = keys.filter_map(|k| self.inventory(k).transpose()).next().transpose()? {
                known.push(inventory);
            }
        }
        if !known.is_empty() {
            let installed = known.iter().flat_map(|i| &i.packages);
            vulnerabilities = self
                .advisories
                .judge_each(installed.filter_map(|p| Some((p.ecosystem()?, p.name.as_str(), p.version.as_str()))));
        }
        let signature = self.check_signatures(request, profile.supply_chain.signatures).await;
        Ok(Evidence { digest, signature, vulnerabilities })
    }

    /// The signatures of every image the request pulls (a stack's each): the
    /// first that is not valid says, else the keys that verified them.
    async fn check_signatures(&self, request: &DeploymentRequest, mode: SignatureMode) -> SignatureCheck {
        let pins: Vec<&PinnedImage> = request.pinned_image.iter().chain(&request.pinned_stack).collect();
        if pins.is_empty() {
            return SignatureCheck::not_checked(mode, "built by the host: checked once it is built");
        }
        let (mut valid, mut verdict) = (Vec::new(), None);
        for pinned in &pins {
            let image = ImageToCheck {
                image: &pinned.requested,
                digest: pinned.digest.as_deref(),
                slug: &request.entry.slug,
                login: self.login_for(&pinned.requested),
            };
            let check = self.signatures.check(&image, mode).await;
            match check.outcome {
                SignatureOutcome::Valid { key } => valid.push(key),
                SignatureOutcome::NotConfigured => {}
                outcome if pins.len() > 1 => {
                    verdict.get_or_insert(SignatureCheck { mode, outcome: outcome.of_image(&pinned.requested) });
                }
                outcome => {
                    verdict.get_or_insert(SignatureCheck { mode, outcome });
                }
            }
        }
        verdict.unwrap_or_else(|| match valid.is_empty() {
            true => SignatureCheck { mode, outcome: SignatureOutcome::NotConfigured },
            false => {
                valid.dedup();
                SignatureCheck { mode, outcome: SignatureOutcome::Valid { key: valid.join(", ") } }
            }
        })
    }
}

/// What a signature check means for the deploy: under `require` anything
/// but valid (or not configured) refuses it, naming the field; under `warn`
/// it is a warning.
pub(super) fn signature_verdict(check: &SignatureCheck, profile: &str) -> Result<Option<wit::Warning>, RuntimeError> {
    let why = match &check.outcome {
        SignatureOutcome::Valid { .. } | SignatureOutcome::NotConfigured => return Ok(None),
        SignatureOutcome::Missing => "no signature was found, and a trusted key covers the image".to_string(),
        SignatureOutcome::Invalid { why } => format!("its signature is not valid: {why}"),
        SignatureOutcome::NotChecked { why } => format!("its signature could not be checked: {why}"),
    };
    match check.mode {
        SignatureMode::Require => Err(super::error::invalid(
            "supply_chain.signature",
            format!("{why}; profile '{profile}' requires a valid signature"),
        )),
        SignatureMode::Warn => Ok(Some(wit::Warning { field: "supply_chain.signature".into(), message: why })),
        SignatureMode::Off => Ok(None),
    }
}

impl Runtime {
    /// The content of an image the backend prepared: the digest its
    /// reference pins (pulled by digest, or pushed), else the id the host's
    /// engine holds it under.
    pub(super) async fn content_of(&self, image: &str) -> Option<String> {
        if let Some(digest) = image_ref::digest(image) {
            return Some(digest.to_string());
        }
        let engine = self.backends.engine()?;
        engine.local_image(image).await.ok().flatten().map(|local| local.id)
    }

    /// The guardrail profile the deployment was checked under, as it is now.
    pub(super) fn profile_of(&self, d: &Deployment) -> Result<Profile, RuntimeError> {
        self.profiles
            .find(&d.profile)?
            .ok_or_else(|| RuntimeError::Conflict(format!("guardrails profile '{}' no longer exists", d.profile)))
    }

    /// Judges the prepared image again when `now` names what the policies,
    /// the approval rules and any approver did not see (findings of a
    /// build, or a build that came to other content than was approved): a
    /// policy may deny it (the deploy fails, naming the field), a rule may
    /// hold it for approval again, with what was prepared (and `now`) recorded by `keep`.
    /// `true` when it was held.
    pub(super) async fn judge_again(
        &self,
        d: &Deployment,
        stored: &DeploymentRequest,
        request: &wit::DeployRequest,
        now: &Evidence,
        keep: impl Fn(&mut Deployment),
    ) -> Result<bool, RuntimeError> {
        let judged = &stored.evidence;
        let other_content = d.approved.is_some() && judged.digest.is_some() && judged.digest != now.digest;
        if !judged.learned_from(now) && !other_content {
            return Ok(false);
        }
        let profile = self.profile_of(d)?;
        let capabilities = self.capabilities_of(&d.backend)?;
        let asked = GuardrailOptions::asked_by(&profile, &stored.entry);
        if let Err(e) = self.evaluate_policies(request, &profile, &capabilities, asked, now).await {
            if let RuntimeError::Invalid { field, .. } = &e {
                self.metrics.policy_decision(field, "denied");
            }
            return Err(e);
        }
        let Some(mut decision) = self.approvals.needs_approval(request, &d.guardrails_applied, now).await? else {
            return Ok(false);
        };
        let why = match (other_content, &now.vulnerabilities) {
            (true, _) => format!(
                "the image built now ({}) is not the one approved ({})",
                now.digest.as_deref().unwrap_or("?"),
                judged.digest.as_deref().unwrap_or("?")
            ),
            (false, Some(report)) if !report.findings.is_empty() => {
                format!("the image installs {}", counted(report))
            }
            _ => format!("the built image's signature is {}", now.signature.name().replace('_', " ")),
        };
        decision.reasons.insert(0, why.clone());
        // `keep` records `now` as the request's evidence too.
        let mut held = d.clone();
        keep(&mut held);
        held.approved = None;
        self.approvals.request_again(&held, decision)?;
        self.transition(&d.id, State::AwaitingApproval, Some(format!("held for approval: {why}")), |d| {
            keep(d);
            d.approved = None;
        })?;
        Ok(true)
    }
}

/// `2 known vulnerabilities (1 critical, 1 high)`.
fn counted(report: &VulnerabilityReport) -> String {
    let by_severity: Vec<String> = ["critical", "high", "medium", "low", "unknown"]
        .iter()
        .filter_map(|s| report.counts.get(*s).map(|n| format!("{n} {s}")))
        .collect();
    format!("{} known vulnerabilities ({})", report.findings.len(), by_severity.join(", "))
}
