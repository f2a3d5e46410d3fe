//! The supply-chain evidence about what one deployment runs, as policies,
//! approval rules and approvers judge it: the content digest, the
//! signature's outcome, and what the OSV database found in what the image
//! installs. Gathered when a request is checked (what is known then: the
//! digest, a kept lock's findings) and completed once an image is built.

use serde::{Deserialize, Serialize};

use super::osv::VulnerabilityReport;
use super::signature::{SignatureCheck, SignatureOutcome};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// The content that runs (`sha256:…`): the registry's manifest digest,
    /// else the engine's image id; none until it is known.
    pub digest: Option<String>,
    pub signature: SignatureCheck,
    /// What the OSV database found; none when nothing was judged (no
    /// database, or what the image installs is not known yet).
    pub vulnerabilities: Option<VulnerabilityReport>,
}

impl Evidence {
    /// Whether `later` names a finding this evidence did not, or a signature
    /// that came out missing or invalid since: what the rules and approvers
    /// judged is no longer all there is, so they are asked again.
    pub fn learned_from(&self, later: &Evidence) -> bool {
        let signature_failed =
            matches!(later.signature.outcome, SignatureOutcome::Missing | SignatureOutcome::Invalid { .. });
        if signature_failed && later.signature != self.signature {
            return true;
        }
        let known = |e: &Evidence| -> Vec<(String, String, String)> {
            let findings = e.vulnerabilities.iter().flat_map(|r| &r.findings);
            findings.map(|f| (f.advisory.clone(), f.package.clone(), f.version.clone())).collect()
        };
        let before = known(self);
        known(later).iter().any(|f| !before.contains(f))
    }
}
