//! What a build installed, judged by the operator's OSV database before the
//! server starts: a package's whole locked tree, each version matched with
//! its ecosystem's order. The report is kept with the deployment and the
//! build's event names the database state that judged it.

use super::{Runtime, RuntimeError};
use crate::deployment::{Build, DeploymentRequest};
use crate::supply_chain::osv::VulnerabilityReport;

impl Runtime {
    /// The report on a package build's lock; `None` for other builds or without a database.
    pub(super) fn judge_build(
        &self,
        stored: &DeploymentRequest,
        build: Option<&Build>,
    ) -> Result<Option<VulnerabilityReport>, RuntimeError> {
        let (Some(package), Some(lock)) = (stored.entry.source.package(), build.and_then(|b| b.lock.as_deref())) else {
            return Ok(None);
        };
        let Some(bom) = self.catalog.bill_of_materials(lock)? else { return Ok(None) };
        let tree = bom.packages.iter().map(|p| (p.name.as_str(), p.version.as_str()));
        Ok(self.advisories.judge(package.ecosystem.into(), tree))
    }

    /// The deployment's SBOM (CycloneDX JSON): made from its lock for a
    /// package build; for anything else, why there is none yet.
    pub fn sbom(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let d = self.get(id)?;
        let package = d.request.as_ref().and_then(|r| r.entry.source.package());
        let lock = d.build.as_ref().and_then(|b| b.lock.as_deref());
        let (Some(package), Some(lock), Some(image)) = (package, lock, d.image.as_deref()) else {
            return Err(RuntimeError::NotFound(format!(
                "an SBOM of deployment '{id}': one is made from a package build's lock once it is built; \
                 images pulled or built from a repository are not read yet"
            )));
        };
        let bom = self
            .catalog
            .bill_of_materials(lock)?
            .ok_or_else(|| RuntimeError::NotFound(format!("the lock {lock} of deployment '{id}'")))?;
        Ok(crate::supply_chain::sbom::of_package_build(image, package.ecosystem, &bom))
    }

    /// Reads the OSV database again (`POST /supply-chain/osv/reload`): later
    /// builds are judged by it; the new state, or `None` without a directory.
    pub fn reload_advisories(&self) -> Result<Option<crate::supply_chain::osv::DatabaseState>, RuntimeError> {
        self.advisories.reload().map_err(|e| RuntimeError::Unavailable(e.to_string()))
    }
}
