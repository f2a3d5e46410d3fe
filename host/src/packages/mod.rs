//! Servers published as npm or PyPI packages: the names each ecosystem
//! allows, the version an entry asks for resolved against the index to an
//! exact one (and its executable chosen), the lock that pins the whole
//! dependency tree by integrity, and the image built from it.

mod config;
mod index;
pub mod lock;
mod names;
pub mod recipe;

pub use config::{BuildersConfig, EcosystemConfig};
pub use index::{Indexes, Resolved};
pub use lock::{BillOfMaterials, Lock, LockedPackage};
pub use names::normalize_python;

/// No build may run longer (the seed's limit for any build, as for Git builds).
pub const MAX_BUILD_SECONDS: u64 = 3600;

use serde::{Deserialize, Serialize};

/// The ecosystems a package source installs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Npm,
    Pypi,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
        }
    }
}

/// What went wrong with a package source, naming the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PackageError {
    /// Can never work as written (answered 422).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The index could not be asked (answered 502): worth retrying.
    #[error("{field}: {reason}")]
    IndexUnavailable { field: String, reason: String },
}

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> PackageError {
    PackageError::Invalid { field: field.into(), reason: reason.into() }
}

impl PackageError {
    pub fn field(&self) -> &str {
        match self {
            PackageError::Invalid { field, .. } | PackageError::IndexUnavailable { field, .. } => field,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            PackageError::Invalid { reason, .. } | PackageError::IndexUnavailable { reason, .. } => reason,
        }
    }
}

/// A package as a catalog entry names it, before or after resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageRequest<'a> {
    pub ecosystem: Ecosystem,
    pub name: &'a str,
    pub version: &'a str,
    pub bin: Option<&'a str>,
    pub extras: &'a [String],
    pub allow_install_scripts: bool,
}

impl PackageRequest<'_> {
    /// What can be checked without the index: the name by its ecosystem's
    /// rules, the extras, and a version that is at least a version, a range
    /// or a tag.
    pub fn check(&self) -> Result<(), PackageError> {
        names::check(self.ecosystem, self.name)?;
        if self.version.trim().is_empty() || self.version.len() > 100 {
            return Err(invalid("source.version", "an exact version, a range or `latest`, 1-100 characters"));
        }
        match self.ecosystem {
            Ecosystem::Npm if !self.extras.is_empty() => {
                Err(invalid("source.extras", "npm packages have no extras (a PyPI notion)"))
            }
            Ecosystem::Npm => Ok(()),
            Ecosystem::Pypi => self.extras.iter().enumerate().try_for_each(|(i, extra)| {
                names::check_python_name(extra).map_err(|reason| invalid(&format!("source.extras[{i}]"), reason))
            }),
        }?;
        if let Some(bin) = self.bin {
            if bin.is_empty() || bin.len() > 214 || !bin.chars().all(|c| c.is_ascii_graphic() && c != '/') {
                return Err(invalid("source.bin", "an executable's name: printable characters, no '/'"));
            }
        }
        Ok(())
    }

    /// Whether `version` is one exact version (no range, no tag).
    pub fn is_exact(&self) -> bool {
        index::is_exact(self.ecosystem, self.version)
    }

    /// The package URL (purl) naming this version: how a package entry
    /// reaches plugins (`pkg:npm/%40scope/name@1.2.3`).
    pub fn purl(&self) -> String {
        purl(self.ecosystem, self.name, self.version)
    }
}

/// A package's purl (`pkg:npm/%40scope/name@1.2.3`, `pkg:pypi/name@1.0`).
pub fn purl(ecosystem: Ecosystem, name: &str, version: &str) -> String {
    let name = match ecosystem {
        Ecosystem::Npm => name.replacen('@', "%40", 1),
        Ecosystem::Pypi => names::normalize_python(name),
    };
    format!("pkg:{}/{name}@{version}", ecosystem.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npm(name: &str) -> PackageRequest<'_> {
        PackageRequest {
            ecosystem: Ecosystem::Npm,
            name,
            version: "1.0.0",
            bin: None,
            extras: &[],
            allow_install_scripts: false,
        }
    }

    #[test]
    fn purls_follow_the_spec() {
        assert_eq!(
            npm("@modelcontextprotocol/server-everything").purl(),
            "pkg:npm/%40modelcontextprotocol/server-everything@1.0.0"
        );
        let pypi = PackageRequest { ecosystem: Ecosystem::Pypi, name: "MCP_Server.Time", ..npm("") };
        assert_eq!(pypi.purl(), "pkg:pypi/mcp-server-time@1.0.0");
    }

    #[test]
    fn checks_name_the_field() {
        let field = |r: PackageRequest| r.check().err().map(|e| e.field().to_string());
        assert_eq!(field(npm("left-pad")), None);
        assert_eq!(field(npm("Left-Pad")), Some("source.name".into()));
        let extras = ["cli".to_string()];
        assert_eq!(field(PackageRequest { extras: &extras, ..npm("x") }), Some("source.extras".into()));
        let bad = ["no good".to_string()];
        let pypi = PackageRequest { ecosystem: Ecosystem::Pypi, extras: &bad, ..npm("mcp-server-time") };
        assert_eq!(field(pypi), Some("source.extras[0]".into()));
        assert_eq!(field(PackageRequest { version: " ", ..npm("x") }), Some("source.version".into()));
        assert_eq!(field(PackageRequest { bin: Some("../sh"), ..npm("x") }), Some("source.bin".into()));
    }
}
