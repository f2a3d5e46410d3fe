//! What a deployment's image installs, judged by the operator's OSV database
//! before the server starts: a package build's whole locked tree, and what
//! the backend read from the image's package databases (through the engine,
//! `container-engine.read-installed`), each version matched with its
//! ecosystem's order. The report is kept with the deployment, the build's
//! event names the database state that judged it, and the SBOM is made from
//! the same facts.

use super::{Runtime, RuntimeError};
use crate::contract::backend::Prepared;
use crate::deployment::{Build, Deployment, DeploymentRequest};
use crate::events::{EventData, ImageBuilt, Judgement};
use crate::guardrails::Warning;
use crate::store::{NewEvent, Table};
use crate::supply_chain::inventory::Inventory;
use crate::supply_chain::osv::VulnerabilityReport;
use crate::supply_chain::Evidence;

/// What the image a backend prepared came to, before anything starts.
pub(super) struct Examined {
    image: String,
    build: Option<Build>,
    vulnerabilities: Option<VulnerabilityReport>,
    /// Where what it installs is kept.
    contents: Option<String>,
    warnings: Vec<Warning>,
    /// What the rules judge of it now.
    pub evidence: Evidence,
}

impl Examined {
    /// Records it on the deployment: held for approval, or on its way to start.
    pub fn keep(&self, d: &mut Deployment) {
        d.image = Some(self.image.clone());
        d.build = self.build.clone();
        d.vulnerabilities = self.vulnerabilities.clone();
        d.contents = self.contents.clone();
        d.guardrails_warnings.extend(self.warnings.iter().cloned());
        if let Some(request) = d.request.as_mut() {
            request.evidence = self.evidence.clone();
        }
    }
}

impl Runtime {
    /// Examines what the backend prepared: its content, what it installs
    /// (judged, and the database that judged it recorded), a build's facts,
    /// its signature (a build is signed and checked here; a pulled image's
    /// was at check), and so the evidence the rules judge now.
    pub(super) async fn examine(
        &self,
        d: &Deployment,
        stored: &DeploymentRequest,
        prepared: &Prepared,
    ) -> Result<Examined, RuntimeError> {
        let mut build = prepared.build.as_ref().map(|b| Build::of(&stored.entry.source, &b.commit, b.cache_hit));
        // What the image installs, when the backend had it read: by the content now on the engine.
        let content = self.content_of(&prepared.image).await;
        let inventory = match content.as_deref() {
            Some(id) => self.inventory(id)?,
            None => None,
        };
        let vulnerabilities = self.judge_contents(stored, build.as_ref(), inventory.as_ref())?;
        if let Some(report) = &vulnerabilities {
            let data = EventData::DeploymentJudged(Judgement {
                database: report.database.digest.clone(),
                records: report.database.records,
                counts: report.counts.clone(),
            });
            self.store.record(NewEvent::for_deployment(&d.id, data))?;
        }
        let mut evidence = stored.evidence.clone();
        evidence.vulnerabilities = vulnerabilities.clone().or(evidence.vulnerabilities);
        let mut warnings: Vec<Warning> = prepared.warnings.iter().map(Warning::from).collect();
        if let Some(build) = build.as_mut() {
            build.content = content.clone();
            let data = EventData::DeploymentBuilt(ImageBuilt {
                commit: build.commit.clone(),
                lock: build.lock.clone(),
                cache: build.cache.name().into(),
                image: prepared.image.clone(),
                builder: d.backend.clone(),
                judged_by: vulnerabilities.as_ref().map(|v| v.database.digest.clone()),
            });
            self.store.record(NewEvent::for_deployment(&d.id, data))?;
            evidence.digest = content.clone();
            let mode = self.profile_of(d)?.supply_chain.signatures;
            evidence.signature = self.sign_and_check_built(d, &prepared.image, content.as_deref(), mode).await?;
            let verdict = super::evidence::signature_verdict(&evidence.signature, &d.profile)?;
            warnings.extend(verdict.iter().map(Warning::from));
        }
        Ok(Examined {
            image: prepared.image.clone(),
            build,
            vulnerabilities,
            contents: inventory.map(|i| i.image_id),
            warnings,
            evidence,
        })
    }

    /// What the image kept under `content` (an image id or a registry digest) installs, if it was read.
    pub(super) fn inventory(&self, content: &str) -> Result<Option<Inventory>, RuntimeError> {
        Ok(self.store.get(Table::ImageInventories, content)?)
    }

    /// The report on what the prepared image installs: a package build's
    /// lock and its image's system packages, or everything read from any
    /// other image; `None` when nothing is known or no database is configured.
    pub(super) fn judge_contents(
        &self,
        stored: &DeploymentRequest,
        build: Option<&Build>,
        inventory: Option<&Inventory>,
    ) -> Result<Option<VulnerabilityReport>, RuntimeError> {
        let mut judged = Vec::new();
        let lock = build.and_then(|b| b.lock.as_deref());
        let bom = match lock {
            Some(lock) => self.catalog.bill_of_materials(lock)?,
            None => None,
        };
        let package = stored.entry.source.package();
        if let (Some(package), Some(bom)) = (&package, &bom) {
            let ecosystem = package.ecosystem.into();
            judged.extend(bom.packages.iter().map(|p| (ecosystem, p.name.as_str(), p.version.as_str())));
        }
        // A package's own tree is its lock's; of its image, the system's packages.
        let installed = inventory.iter().flat_map(|i| &i.packages).filter(|p| package.is_none() || p.is_system());
        judged.extend(installed.filter_map(|p| Some((p.ecosystem()?, p.name.as_str(), p.version.as_str()))));
        if bom.is_none() && inventory.is_none() {
            return Ok(None);
        }
        Ok(self.advisories.judge_each(judged))
    }

    /// The deployment's SBOM (CycloneDX JSON): a package build's from its
    /// lock (with its image's system packages), any other image's from its
    /// package databases; where neither is known, why.
    pub fn sbom(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let d = self.get(id)?;
        if let Some(Ok(component)) = d.request.as_ref().and_then(|r| r.entry.source.component()) {
            let producers =
                self.components.producers(&component.sha256).map_err(|e| RuntimeError::NotFound(e.to_string()))?;
            let name = component.origin.to_string();
            return Ok(crate::supply_chain::sbom::of_component(&name, &component.sha256, &producers));
        }
        let image = d.image.as_deref().unwrap_or_default();
        let inventory = match d.contents.as_deref() {
            Some(key) => self.inventory(key)?,
            None => None,
        };
        let package = d.request.as_ref().and_then(|r| r.entry.source.package());
        if let (Some(package), Some(lock)) = (package, d.build.as_ref().and_then(|b| b.lock.as_deref())) {
            let bom = self
                .catalog
                .bill_of_materials(lock)?
                .ok_or_else(|| RuntimeError::NotFound(format!("the lock {lock} of deployment '{id}'")))?;
            let system = inventory.map(|i| i.packages).unwrap_or_default();
            return Ok(crate::supply_chain::sbom::of_package_build(image, package.ecosystem, &bom, &system));
        }
        match inventory {
            Some(inventory) => Ok(crate::supply_chain::sbom::of_image(image, &inventory)),
            None => Err(RuntimeError::NotFound(format!(
                "an SBOM of deployment '{id}': unavailable — what its image installs was not read (its backend, \
                 '{}', reads images only on the host's engine, and does so once the image is there)",
                d.backend
            ))),
        }
    }

    /// Reads the OSV database again (`POST /supply-chain/osv/reload`): later
    /// deploys are judged by it; the new state, or `None` without a directory.
    pub fn reload_advisories(&self) -> Result<Option<crate::supply_chain::osv::DatabaseState>, RuntimeError> {
        self.advisories.reload().map_err(|e| RuntimeError::Unavailable(e.to_string()))
    }
}
