//! The lock: a package's whole dependency tree, each package pinned by the
//! hash its index published, as the installer reads it (npm's
//! `package-lock.json`, pip's hash-pinned requirements). Made at the first
//! build, kept by (package, version, extras, base image) and reused, so the
//! same entry on the same base always installs the same tree.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Ecosystem, PackageRequest};

/// One package of the tree: the deployment's bill of materials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// As the index published it: npm's SRI (`sha512-…`), PyPI's `sha256:…`.
    pub integrity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lock {
    pub ecosystem: Ecosystem,
    /// `sha256:` of `document`: what images built from it are named by.
    pub digest: String,
    /// The image the tree was resolved on (its id): a PyPI tree depends on its Python.
    pub base_image: String,
    pub packages: Vec<LockedPackage>,
    /// What the installer reads.
    #[schema(ignore)]
    pub document: String,
}

/// A deployment's or an entry's bill of materials: the lock, the base image
/// it was resolved on, and every package of the tree with its hash.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BillOfMaterials {
    /// `sha256:` of the lock.
    pub lock: String,
    /// The base image's id.
    pub base_image: String,
    pub packages: Vec<LockedPackage>,
}

impl From<Lock> for BillOfMaterials {
    fn from(lock: Lock) -> BillOfMaterials {
        BillOfMaterials { lock: lock.digest, base_image: lock.base_image, packages: lock.packages }
    }
}

/// The store key of the lock of `package` on `base_image` (an image id).
pub fn key(package: &PackageRequest<'_>, base_image: &str) -> String {
    format!("{}{base_image}", key_prefix(package))
}

/// What the keys of every lock of `package` (on any base image) begin with.
pub fn key_prefix(package: &PackageRequest<'_>) -> String {
    let extras = match package.extras {
        [] => String::new(),
        extras => format!("[{}]", extras.join(",")),
    };
    format!("{}:{}{extras}@{}:", package.ecosystem.as_str(), package.name, package.version)
}

pub fn digest(document: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(document.as_bytes())))
}

impl Lock {
    fn new(ecosystem: Ecosystem, base_image: &str, packages: Vec<LockedPackage>, document: String) -> Lock {
        Lock { ecosystem, digest: digest(&document), base_image: base_image.into(), packages, document }
    }

    /// From `npm install --package-lock-only`'s lock; refused when a
    /// package in it carries no integrity, naming it.
    pub fn from_npm(document: String, base_image: &str) -> Result<Lock, String> {
        let lock: serde_json::Value =
            serde_json::from_str(&document).map_err(|e| format!("package-lock.json is not JSON: {e}"))?;
        let entries = lock.get("packages").and_then(|p| p.as_object()).ok_or("package-lock.json lists no packages")?;
        let mut packages = Vec::new();
        for (path, entry) in entries.iter().filter(|(path, _)| !path.is_empty()) {
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_else(|| path.rsplit("node_modules/").next().unwrap_or(path));
            let version = entry.get("version").and_then(|v| v.as_str()).unwrap_or_default();
            if entry.get("link").and_then(|l| l.as_bool()) == Some(true) {
                return Err(format!("{name} is a link, not a package from the registry"));
            }
            let integrity = entry
                .get("integrity")
                .and_then(|i| i.as_str())
                .ok_or_else(|| format!("{name}@{version} has no integrity hash in the lock"))?;
            packages.push(LockedPackage { name: name.into(), version: version.into(), integrity: integrity.into() });
        }
        packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        packages.dedup();
        Ok(Lock::new(Ecosystem::Npm, base_image, packages, document))
    }

    /// From `pip install --dry-run --report`: every distribution it would
    /// install, pinned by the sha256 the index gave; the requirements file
    /// `--require-hashes` reads.
    pub fn from_pip_report(report: &str, base_image: &str) -> Result<Lock, String> {
        let report: serde_json::Value =
            serde_json::from_str(report).map_err(|e| format!("pip's report is not JSON: {e}"))?;
        let install =
            report.get("install").and_then(|i| i.as_array()).ok_or("pip's report lists nothing to install")?;
        let mut packages = Vec::new();
        for item in install {
            let name = item.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("?");
            let version = item.pointer("/metadata/version").and_then(|v| v.as_str()).unwrap_or("?");
            let sha256 = item
                .pointer("/download_info/archive_info/hashes/sha256")
                .and_then(|h| h.as_str())
                .ok_or_else(|| format!("{name}=={version}: the index gave no sha256 for it"))?;
            packages.push(LockedPackage {
                name: name.into(),
                version: version.into(),
                integrity: format!("sha256:{sha256}"),
            });
        }
        packages.sort_by_key(|p| p.name.to_lowercase());
        let document: String =
            packages.iter().map(|p| format!("{}=={} --hash={}\n", p.name, p.version, p.integrity)).collect();
        Ok(Lock::new(Ecosystem::Pypi, base_image, packages, document))
    }

    /// The package whose hash an installer's failure names (`wanted
    /// sha512-…`, `Expected sha256 …`), for an error that says which.
    pub fn package_named_in(&self, output: &str) -> Option<&LockedPackage> {
        self.packages.iter().find(|p| {
            let bare = p.integrity.trim_start_matches("sha256:");
            output.contains(&p.integrity) || (bare.len() >= 32 && output.contains(bare))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_locks_pin_every_package() {
        let lock = serde_json::json!({"lockfileVersion": 3, "packages": {
            "": {"dependencies": {"a": "1.0.0"}},
            "node_modules/a": {"version": "1.0.0", "integrity": "sha512-AAA"},
            "node_modules/a/node_modules/@s/b": {"version": "2.0.0", "integrity": "sha512-BBB"}
        }});
        let parsed = Lock::from_npm(lock.to_string(), "sha256:base").unwrap();
        let names: Vec<_> = parsed.packages.iter().map(|p| format!("{}@{}", p.name, p.version)).collect();
        assert_eq!(names, ["@s/b@2.0.0", "a@1.0.0"]);
        assert!(parsed.digest.starts_with("sha256:") && parsed.digest.len() == 71);
        assert_eq!(parsed.package_named_in("wanted sha512-BBB but got sha512-CCC").unwrap().name, "@s/b");
        let unpinned = serde_json::json!({"packages": {"node_modules/c": {"version": "3.0.0"}}});
        assert_eq!(Lock::from_npm(unpinned.to_string(), "b").unwrap_err(), "c@3.0.0 has no integrity hash in the lock");
    }

    #[test]
    fn pip_reports_become_hash_pinned_requirements() {
        let report = serde_json::json!({"install": [
            {"metadata": {"name": "tzdata", "version": "2026.6"}, "download_info": {"archive_info": {"hashes": {"sha256": "ab12"}}}},
            {"metadata": {"name": "Click", "version": "8.5.1"}, "download_info": {"archive_info": {"hashes": {"sha256": "cd34"}}}}
        ]});
        let lock = Lock::from_pip_report(&report.to_string(), "sha256:base").unwrap();
        assert_eq!(lock.document, "Click==8.5.1 --hash=sha256:cd34\ntzdata==2026.6 --hash=sha256:ab12\n");
        let unhashed =
            serde_json::json!({"install": [{"metadata": {"name": "x", "version": "1"}, "download_info": {}}]});
        assert!(Lock::from_pip_report(&unhashed.to_string(), "b").unwrap_err().starts_with("x==1"));
    }
}
