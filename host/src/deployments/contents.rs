//! What a deployment's image installs, judged by the operator's OSV database
//! before the server starts: a package build's whole locked tree, and what
//! the backend read from the image's package databases (through the engine,
//! `container-engine.read-installed`), each version matched with its
//! ecosystem's order. The report is kept with the deployment, the build's
//! event names the database state that judged it, and the SBOM is made from
//! the same facts.

use super::{Runtime, RuntimeError};
use crate::deployment::{Build, DeploymentRequest};
use crate::store::Table;
use crate::supply_chain::inventory::Inventory;
use crate::supply_chain::osv::VulnerabilityReport;

impl Runtime {
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
