//! What an image installs, read from the package databases in its
//! filesystem without running it: Debian's dpkg status, Alpine's apk
//! database, npm's `package.json` of each package under a `node_modules`,
//! and Python's `*.dist-info/METADATA`. The engine capability streams the
//! image's files through `Reader`; what it finds is kept by image content.

use serde::{Deserialize, Serialize};

/// Where a package came from, as purls name the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deb,
    Apk,
    Npm,
    Pypi,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstalledPackage {
    pub kind: Kind,
    pub name: String,
    pub version: String,
    /// The distribution of a system package (`debian`, `alpine`), from `/etc/os-release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
}

impl InstalledPackage {
    /// The OSV ecosystem its versions are judged in; none for Alpine's (not judged yet).
    pub fn ecosystem(&self) -> Option<super::osv::Ecosystem> {
        match self.kind {
            Kind::Deb => Some(super::osv::Ecosystem::Debian),
            Kind::Npm => Some(super::osv::Ecosystem::Npm),
            Kind::Pypi => Some(super::osv::Ecosystem::Pypi),
            Kind::Apk => None,
        }
    }

    /// A system package (the distribution's), rather than a language package.
    pub fn is_system(&self) -> bool {
        matches!(self.kind, Kind::Deb | Kind::Apk)
    }

    /// Its package URL (`pkg:deb/debian/bash@5.2.15-2`, `pkg:npm/%40scope/x@1.0.0`).
    pub fn purl(&self) -> String {
        match self.kind {
            Kind::Npm => crate::packages::purl(crate::packages::Ecosystem::Npm, &self.name, &self.version),
            Kind::Pypi => crate::packages::purl(crate::packages::Ecosystem::Pypi, &self.name, &self.version),
            Kind::Deb | Kind::Apk => {
                let kind = if self.kind == Kind::Deb { "deb" } else { "apk" };
                let distro = self.distro.as_deref().unwrap_or(if self.kind == Kind::Deb { "debian" } else { "alpine" });
                format!("pkg:{kind}/{distro}/{}@{}", self.name, self.version)
            }
        }
    }
}

/// Everything an image installs, as read once and kept by its content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inventory {
    /// The engine's image id it was read from.
    pub image_id: String,
    /// Sorted; each package once.
    pub packages: Vec<InstalledPackage>,
}

/// What of a file's path makes it worth reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    DpkgStatus,
    ApkInstalled,
    OsRelease,
    NpmManifest,
    PythonMetadata,
}

/// Whether a path in the image (without a leading `/`) is one of the databases.
pub fn wanted(path: &str) -> Option<Wanted> {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    match path {
        "var/lib/dpkg/status" => return Some(Wanted::DpkgStatus),
        "lib/apk/db/installed" => return Some(Wanted::ApkInstalled),
        "etc/os-release" | "usr/lib/os-release" => return Some(Wanted::OsRelease),
        _ => {}
    }
    if let Some(dir) = path.strip_suffix("/METADATA") {
        return dir.ends_with(".dist-info").then_some(Wanted::PythonMetadata);
    }
    // `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/package.json`.
    let dir = path.strip_suffix("/package.json")?;
    let (parent, name) = dir.rsplit_once('/')?;
    let parent = match parent.rsplit_once('/') {
        Some((above, scope)) if scope.starts_with('@') => above,
        _ => parent,
    };
    let is_package = (parent == "node_modules" || parent.ends_with("/node_modules")) && !name.starts_with('.');
    is_package.then_some(Wanted::NpmManifest)
}

/// Collects the packages of the files handed to it.
#[derive(Default)]
pub struct Reader {
    packages: Vec<InstalledPackage>,
    distro: Option<String>,
}

impl Reader {
    pub fn read(&mut self, wanted: Wanted, text: &str) {
        match wanted {
            Wanted::DpkgStatus => self.packages.extend(dpkg_status(text)),
            Wanted::ApkInstalled => self.packages.extend(apk_installed(text)),
            Wanted::OsRelease => self.distro = os_release_id(text),
            Wanted::NpmManifest => self.packages.extend(npm_manifest(text)),
            Wanted::PythonMetadata => self.packages.extend(python_metadata(text)),
        }
    }

    pub fn finish(mut self, image_id: &str) -> Inventory {
        for p in self.packages.iter_mut().filter(|p| matches!(p.kind, Kind::Deb | Kind::Apk)) {
            p.distro = self.distro.clone();
        }
        self.packages.sort();
        self.packages.dedup();
        Inventory { image_id: image_id.into(), packages: self.packages }
    }
}

/// Paragraphs of `Field: value` lines (dpkg's and apk's databases, METADATA headers).
fn field<'a>(paragraph: &'a str, name: &str) -> Option<&'a str> {
    paragraph.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

fn dpkg_status(text: &str) -> Vec<InstalledPackage> {
    text.split("\n\n")
        .filter(|p| field(p, "Status").is_some_and(|s| s.ends_with(" installed")))
        .filter_map(|p| {
            Some(InstalledPackage {
                kind: Kind::Deb,
                name: field(p, "Package")?.into(),
                version: field(p, "Version")?.into(),
                distro: None,
            })
        })
        .collect()
}

fn apk_installed(text: &str) -> Vec<InstalledPackage> {
    text.split("\n\n")
        .filter_map(|p| {
            let value = |key: &str| p.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
            Some(InstalledPackage {
                kind: Kind::Apk,
                name: value("P:")?.into(),
                version: value("V:")?.into(),
                distro: None,
            })
        })
        .collect()
}

fn os_release_id(text: &str) -> Option<String> {
    let id = text.lines().find_map(|l| l.strip_prefix("ID="))?;
    Some(id.trim().trim_matches('"').to_string())
}

fn npm_manifest(text: &str) -> Option<InstalledPackage> {
    #[derive(Deserialize)]
    struct Manifest {
        name: String,
        version: String,
    }
    let manifest: Manifest = serde_json::from_str(text).ok()?;
    Some(InstalledPackage { kind: Kind::Npm, name: manifest.name, version: manifest.version, distro: None })
}

fn python_metadata(text: &str) -> Option<InstalledPackage> {
    // The headers end at the first blank line; the long description follows.
    let headers = text.split("\n\n").next()?;
    Some(InstalledPackage {
        kind: Kind::Pypi,
        name: crate::packages::normalize_python(field(headers, "Name")?),
        version: field(headers, "Version")?.into(),
        distro: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_package_databases_are_read() {
        assert_eq!(wanted("var/lib/dpkg/status"), Some(Wanted::DpkgStatus));
        assert_eq!(wanted("./lib/apk/db/installed"), Some(Wanted::ApkInstalled));
        assert_eq!(wanted("app/node_modules/minimist/package.json"), Some(Wanted::NpmManifest));
        assert_eq!(wanted("node_modules/@scope/x/package.json"), Some(Wanted::NpmManifest));
        assert_eq!(wanted("app/node_modules/x/node_modules/y/package.json"), Some(Wanted::NpmManifest));
        assert_eq!(wanted("app/node_modules/x/test/package.json"), None, "a file inside a package");
        assert_eq!(wanted("app/package.json"), None, "the application itself");
        assert_eq!(
            wanted("usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA"),
            Some(Wanted::PythonMetadata)
        );
        assert_eq!(wanted("usr/share/doc/METADATA"), None);
        assert_eq!(wanted("var/lib/dpkg/status-old"), None);
    }

    #[test]
    fn each_database_names_its_packages() {
        let mut reader = Reader::default();
        let status = "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nArchitecture: amd64\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                      Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n";
        reader.read(Wanted::DpkgStatus, status);
        reader.read(Wanted::OsRelease, "PRETTY_NAME=\"Debian GNU/Linux 12\"\nID=debian\n");
        reader.read(Wanted::NpmManifest, r#"{"name": "minimist", "version": "1.2.5", "main": "index.js"}"#);
        reader.read(Wanted::NpmManifest, "not json");
        reader.read(Wanted::PythonMetadata, "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n\nName: not this\n");
        let inventory = reader.finish("sha256:img");
        let purls: Vec<String> = inventory.packages.iter().map(InstalledPackage::purl).collect();
        assert_eq!(
            purls,
            [
                "pkg:deb/debian/bash@5.2.15-2+b2",
                "pkg:deb/debian/libc6@2.36-9+deb12u4",
                "pkg:npm/minimist@1.2.5",
                "pkg:pypi/jinja2@3.1.2",
            ]
        );
        let mut alpine = Reader::default();
        alpine.read(Wanted::ApkInstalled, "C:Q1abc\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\n");
        alpine.read(Wanted::OsRelease, "ID=alpine\nVERSION_ID=3.19.1\n");
        let purls: Vec<String> = alpine.finish("sha256:a").packages.iter().map(InstalledPackage::purl).collect();
        assert_eq!(purls, ["pkg:apk/alpine/busybox@1.36.1-r5", "pkg:apk/alpine/musl@1.2.4-r2"]);
    }
}
