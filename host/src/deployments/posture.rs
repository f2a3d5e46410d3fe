//! One deployment's security posture in one document: what protects the
//! running server, from what is stored — the guardrails the backend applied
//! and those it could not, what each container was created with (recorded
//! when it was), the content that runs and its signature, what the OSV database found, and
//! the approval that let it run. No engine is asked.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Runtime, RuntimeError};
use crate::deployment::{Approved, State};
use crate::events::{ContainerFacts, EventData, EventFilter};
use crate::guardrails::{EffectiveGuardrails, Warning};
use crate::supply_chain::osv::DatabaseState;
use crate::supply_chain::{PinnedImage, SignatureCheck};

#[derive(Debug, Serialize, ToSchema)]
pub struct Posture {
    pub deployment: String,
    pub status: State,
    pub backend: String,
    /// The reference the entry named and the content it was pinned to (image sources).
    pub pinned_image: Option<PinnedImage>,
    /// What the backend was asked to run.
    pub image: Option<String>,
    /// The guardrails in force, as the backend applies them.
    pub guardrails: EffectiveGuardrails,
    /// Guardrails the backend could not enforce, and why (the deploy went on).
    pub not_enforced: Vec<Warning>,
    /// How the server reaches out: `blocked`, `allowlist` (only `allowed_hosts`), `learning`, or `open`.
    pub egress: &'static str,
    pub allowed_hosts: Vec<String>,
    /// Each container as it was created (read-only root, capabilities,
    /// no-new-privileges, user, security options, limits); none on a
    /// backend that does not run on the host's engine.
    pub containers: Vec<ContainerFacts>,
    /// Known vulnerabilities in what it installs, by severity, and the database that judged.
    pub vulnerabilities: Option<VulnerabilityCounts>,
    /// What the profile asked of the image's signature and what came of it
    /// (`valid` naming the key, `missing`, `invalid` with why, `not_configured`, `not_checked`).
    pub signature: SignatureCheck,
    /// Who let it run, when it was held for approval.
    pub approved: Option<Approved>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VulnerabilityCounts {
    pub counts: std::collections::BTreeMap<String, usize>,
    pub database: DatabaseState,
}

impl Runtime {
    pub fn posture(&self, id: &str) -> Result<Posture, RuntimeError> {
        let d = self.get(id)?;
        let filter = EventFilter {
            deployment: Some(id.into()),
            kind: Some("deployment.container_created".into()),
            ..Default::default()
        };
        // Newest first: the latest container of each name is the one that runs.
        let mut containers: Vec<ContainerFacts> = Vec::new();
        for event in self.events(&filter)? {
            if let EventData::ContainerCreated(facts) = event.data {
                if !containers.iter().any(|c| c.name == facts.name) {
                    containers.push(facts);
                }
            }
        }
        containers.reverse();
        let network = &d.guardrails_applied.network;
        let egress = match (network.egress_allowed, network.egress_audit, network.allowed_hosts.is_empty()) {
            (false, _, _) => "blocked",
            (true, true, _) => "learning",
            (true, false, false) => "allowlist",
            (true, false, true) => "open",
        };
        Ok(Posture {
            deployment: d.id.clone(),
            status: d.status,
            backend: d.backend.clone(),
            pinned_image: d.request.as_ref().and_then(|r| r.pinned_image.clone()),
            image: d.image.clone(),
            allowed_hosts: network.allowed_hosts.clone(),
            egress,
            not_enforced: d.guardrails_warnings.clone(),
            guardrails: d.guardrails_applied.clone(),
            containers,
            vulnerabilities: d
                .vulnerabilities
                .as_ref()
                .map(|v| VulnerabilityCounts { counts: v.counts.clone(), database: v.database.clone() }),
            signature: d.request.as_ref().map(|r| r.evidence.signature.clone()).unwrap_or_default(),
            approved: d.approved.clone(),
        })
    }
}
