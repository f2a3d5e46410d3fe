//! Known vulnerabilities, offline: OSV records from a directory the operator
//! keeps (`runtime.supply_chain.osv_dir`, any layout beneath it, as the OSV
//! project and GitHub's advisory database publish them), indexed by package,
//! matched against exact versions with each ecosystem's own order. No network
//! is needed; the database's `state` names which records judged a deploy.

mod record;
mod severity;
mod versions;

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use severity::Severity;
pub use versions::Ecosystem;

/// One advisory that affects one installed package.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// The record's id (`GHSA-…`, `PYSEC-…`, `DSA-…`).
    pub advisory: String,
    /// Other ids of the same advisory (`CVE-…`).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    pub package: String,
    pub version: String,
    /// The first version that fixes it, when the record names one.
    #[serde(default)]
    pub fixed: Option<String>,
    pub severity: Severity,
    /// The CVSS v3 base score the severity came from, if any.
    #[serde(default)]
    pub score: Option<f64>,
}

/// Which records judged: how many were read, how many files were not records, and a digest of them all.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DatabaseState {
    pub records: usize,
    pub skipped: usize,
    /// `sha256:` over every record's id and `modified` time, in order.
    pub digest: String,
}

#[derive(Debug, thiserror::Error)]
#[error("runtime.supply_chain.osv_dir: {0}")]
pub struct OsvError(String);

#[derive(Default)]
pub struct OsvDatabase {
    by_package: HashMap<(Ecosystem, String), Vec<Arc<record::Record>>>,
    state: Option<DatabaseState>,
}

impl OsvDatabase {
    /// Reads every `*.json` beneath `dir`; files that are not OSV records are counted and skipped.
    pub fn load(dir: &Path) -> Result<OsvDatabase, OsvError> {
        let mut files = Vec::new();
        collect_json(dir, &mut files).map_err(|e| OsvError(format!("{}: {e}", dir.display())))?;
        files.sort();
        let (mut database, mut skipped, mut stamps) = (OsvDatabase::default(), 0, Vec::new());
        for file in files {
            let parsed = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice::<record::Record>(&b).ok());
            let Some(record) = parsed.filter(|r| r.withdrawn.is_none()) else {
                skipped += 1;
                continue;
            };
            stamps.push(format!("{}@{}", record.id, record.modified));
            let record = Arc::new(record);
            for affected in &record.affected {
                let Some(package) = &affected.package else { continue };
                let Some(ecosystem) = Ecosystem::of_osv(&package.ecosystem) else { continue };
                let key = (ecosystem, ecosystem.normalize(&package.name));
                let records = database.by_package.entry(key).or_default();
                if !records.iter().any(|r| Arc::ptr_eq(r, &record)) {
                    records.push(record.clone());
                }
            }
        }
        stamps.sort();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(stamps.join("\n").as_bytes())));
        database.state = Some(DatabaseState { records: stamps.len(), skipped, digest });
        Ok(database)
    }

    /// The state of the records read; `None` when no directory is configured.
    pub fn state(&self) -> Option<&DatabaseState> {
        self.state.as_ref()
    }

    /// Every advisory affecting `name` at `version`.
    pub fn findings(&self, ecosystem: Ecosystem, name: &str, version: &str) -> Vec<Finding> {
        let Some(records) = self.by_package.get(&(ecosystem, ecosystem.normalize(name))) else { return Vec::new() };
        let mut found = Vec::new();
        for record in records {
            let ours = record.affected.iter().filter(|a| {
                a.package.as_ref().is_some_and(|p| {
                    Ecosystem::of_osv(&p.ecosystem) == Some(ecosystem)
                        && ecosystem.normalize(&p.name) == ecosystem.normalize(name)
                })
            });
            // Several entries of one record may each cover a range: the first that matches says.
            if let Some(fixed) = ours.filter_map(|a| record::affects(a, ecosystem, version)).next() {
                found.push(Finding {
                    advisory: record.id.clone(),
                    aliases: record.aliases.clone(),
                    summary: record.summary.clone(),
                    package: name.into(),
                    version: version.into(),
                    fixed,
                    severity: record.severity(),
                    score: record.score(),
                });
            }
        }
        found
    }
}

/// What the database said of everything a deployment installs.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VulnerabilityReport {
    /// The records that judged.
    pub database: DatabaseState,
    /// Findings by severity (`critical`, `high`, `medium`, `low`, `unknown`).
    pub counts: BTreeMap<String, usize>,
    /// The worst first.
    pub findings: Vec<Finding>,
}

/// The operator's OSV database, read at start and again on request.
pub struct Advisories {
    dir: Option<PathBuf>,
    database: RwLock<Arc<OsvDatabase>>,
}

impl Advisories {
    /// Reads `dir` (none configured: nothing is ever matched).
    pub fn load(dir: Option<PathBuf>) -> Result<Advisories, OsvError> {
        let database = match &dir {
            Some(dir) => OsvDatabase::load(dir)?,
            None => OsvDatabase::default(),
        };
        Ok(Advisories { dir, database: RwLock::new(Arc::new(database)) })
    }

    /// Reads the directory again; its new state (`None`: no directory configured).
    pub fn reload(&self) -> Result<Option<DatabaseState>, OsvError> {
        let Some(dir) = &self.dir else { return Ok(None) };
        let database = OsvDatabase::load(dir)?;
        let state = database.state().cloned();
        *self.database.write().expect("advisories poisoned") = Arc::new(database);
        Ok(state)
    }

    /// Matches `(name, version)` pairs of one ecosystem; `None` when no database is configured.
    pub fn judge<'a>(
        &self,
        ecosystem: Ecosystem,
        packages: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<VulnerabilityReport> {
        self.judge_each(packages.into_iter().map(|(name, version)| (ecosystem, name, version)))
    }

    /// Matches packages of any ecosystem; `None` when no database is configured.
    pub fn judge_each<'a>(
        &self,
        packages: impl IntoIterator<Item = (Ecosystem, &'a str, &'a str)>,
    ) -> Option<VulnerabilityReport> {
        let database = self.database.read().expect("advisories poisoned").clone();
        let state = database.state()?.clone();
        let findings = packages
            .into_iter()
            .flat_map(|(ecosystem, name, version)| database.findings(ecosystem, name, version))
            .collect();
        Some(VulnerabilityReport::of(state, findings))
    }
}

impl VulnerabilityReport {
    /// The report of `findings`: the worst first, counted by severity.
    pub fn of(database: DatabaseState, mut findings: Vec<Finding>) -> VulnerabilityReport {
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.advisory.cmp(&b.advisory)));
        findings.dedup_by(|a, b| a.advisory == b.advisory && a.package == b.package && a.version == b.version);
        let mut counts = BTreeMap::new();
        for finding in &findings {
            *counts.entry(finding.severity.name().to_string()).or_insert(0) += 1;
        }
        VulnerabilityReport { database, counts, findings }
    }
}

fn collect_json(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> OsvDatabase {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/osv");
        OsvDatabase::load(&dir).unwrap()
    }

    #[test]
    fn real_advisories_find_vulnerable_versions_and_spare_fixed_ones() {
        let db = fixtures();
        assert_eq!(db.state().unwrap().records, 2);
        let minimist = db.findings(Ecosystem::Npm, "minimist", "1.2.5");
        assert_eq!(minimist.len(), 1, "{minimist:?}");
        let f = &minimist[0];
        assert_eq!(
            (f.advisory.as_str(), f.aliases.as_slice()),
            ("GHSA-xvch-5gv4-984h", &["CVE-2021-44906".to_string()][..])
        );
        assert_eq!((f.fixed.as_deref(), f.severity, f.score), (Some("1.2.6"), Severity::Critical, Some(9.8)));
        assert_eq!(db.findings(Ecosystem::Npm, "minimist", "0.2.1")[0].fixed.as_deref(), Some("0.2.4"));
        assert!(db.findings(Ecosystem::Npm, "minimist", "1.2.6").is_empty());
        assert!(db.findings(Ecosystem::Npm, "minimist", "0.2.4").is_empty());
        // PyPI names compare normalized; the severity comes from the vector (the label agrees).
        let jinja = db.findings(Ecosystem::Pypi, "Jinja2", "3.1.2");
        assert_eq!((jinja[0].advisory.as_str(), jinja[0].severity), ("GHSA-h5c8-rqwp-cp95", Severity::Medium));
        assert!(db.findings(Ecosystem::Pypi, "jinja2", "3.1.3").is_empty());
        assert!(db.findings(Ecosystem::Npm, "jinja2", "3.1.2").is_empty(), "another ecosystem's package");
    }

    #[test]
    fn a_lock_is_judged_worst_first_and_reloading_reads_the_directory_again() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/osv");
        let advisories = Advisories::load(Some(dir.path().to_path_buf())).unwrap();
        let tree = [("minimist", "1.2.5"), ("left-pad", "1.3.0")];
        let empty = advisories.judge(Ecosystem::Npm, tree).unwrap();
        assert!(empty.findings.is_empty() && empty.database.records == 0);
        std::fs::copy(fixtures.join("npm/GHSA-xvch-5gv4-984h.json"), dir.path().join("minimist.json")).unwrap();
        assert_eq!(advisories.reload().unwrap().unwrap().records, 1);
        let report = advisories.judge(Ecosystem::Npm, tree).unwrap();
        assert_eq!(report.counts, BTreeMap::from([("critical".to_string(), 1)]));
        assert_eq!(report.findings[0].package, "minimist");
        assert!(Advisories::load(None).unwrap().judge(Ecosystem::Npm, tree).is_none(), "no database, no verdict");
    }

    #[test]
    fn what_is_not_a_record_is_skipped_and_the_state_names_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/osv/npm/GHSA-xvch-5gv4-984h.json");
        std::fs::copy(&fixture, nested.join("one.json")).unwrap();
        std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let db = OsvDatabase::load(dir.path()).unwrap();
        let state = db.state().unwrap();
        assert_eq!((state.records, state.skipped), (1, 1));
        assert_ne!(state.digest, fixtures().state().unwrap().digest);
        let missing = OsvDatabase::load(&dir.path().join("nope")).err().unwrap().to_string();
        assert!(missing.starts_with("runtime.supply_chain.osv_dir: ") && missing.contains("nope"), "{missing}");
    }
}
