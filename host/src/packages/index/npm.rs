//! The npm registry's view of a package: its packument (dist-tags and
//! every version's manifest), read as the abbreviated form installers use.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::{choose_bin, Indexes, Resolved};
use crate::packages::{invalid, PackageError, PackageRequest};

#[derive(Deserialize)]
struct Packument {
    #[serde(default, rename = "dist-tags")]
    dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    versions: BTreeMap<String, Manifest>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    bin: Option<Bin>,
}

/// `"bin": "cli.js"` (named after the package) or `{"name": "path", …}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Bin {
    // First: anything would read as `One`.
    Many(BTreeMap<String, String>),
    One(serde::de::IgnoredAny),
}

/// `@scope/name` → `name`: what a single `bin` is called.
fn unscoped(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub async fn resolve(
    indexes: &Indexes,
    registry: &str,
    request: &PackageRequest<'_>,
) -> Result<Resolved, PackageError> {
    let url = format!("{registry}{}", request.name.replacen('/', "%2f", 1));
    let accept = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8";
    let Some((_, body)) = indexes.fetch(&url, accept).await? else {
        return Err(invalid("source.name", format!("{registry} has no package '{}'", request.name)));
    };
    let packument: Packument = serde_json::from_slice(&body).map_err(|e| PackageError::IndexUnavailable {
        field: "source.version".into(),
        reason: format!("{url} is not a packument: {e}"),
    })?;
    let version = pick(&packument, request)?;
    let manifest = &packument.versions[&version];
    let declared: Vec<String> = match &manifest.bin {
        None => Vec::new(),
        Some(Bin::One(_)) => vec![unscoped(request.name).to_string()],
        Some(Bin::Many(bins)) => bins.keys().cloned().collect(),
    };
    let bin = choose_bin(request.bin, unscoped(request.name), &declared)?;
    Ok(Resolved { version, bin })
}

/// The exact version asked for, a dist-tag's, or the highest in a range.
fn pick(packument: &Packument, request: &PackageRequest<'_>) -> Result<String, PackageError> {
    let asked = request.version.trim();
    let newest = || packument.dist_tags.get("latest").map(|l| format!(" (latest is {l})")).unwrap_or_default();
    if semver::Version::parse(asked).is_ok() {
        return match packument.versions.contains_key(asked) {
            true => Ok(asked.to_string()),
            false => Err(invalid("source.version", format!("'{}' has no version {asked}{}", request.name, newest()))),
        };
    }
    if let Some(tagged) = packument.dist_tags.get(asked) {
        return Ok(tagged.clone());
    }
    if asked.contains("||") {
        return Err(invalid("source.version", "ranges joined by || are not supported: name one range or version"));
    }
    // npm writes `>=1.2 <2`; the semver crate, `>=1.2, <2`.
    let range = asked.split_whitespace().collect::<Vec<_>>().join(", ");
    let range = semver::VersionReq::parse(&range).map_err(|_| {
        invalid("source.version", format!("'{asked}' is not a version, a range or a dist-tag of '{}'", request.name))
    })?;
    packument
        .versions
        .keys()
        .filter_map(|v| semver::Version::parse(v).ok())
        .filter(|v| range.matches(v))
        .max()
        .map(|v| v.to_string())
        .ok_or_else(|| {
            invalid("source.version", format!("no version of '{}' matches {asked}{}", request.name, newest()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::Ecosystem;

    fn packument() -> Packument {
        serde_json::from_value(serde_json::json!({
            "dist-tags": {"latest": "1.2.0", "next": "2.0.0-rc.1"},
            "versions": {"1.0.0": {}, "1.2.0": {"bin": "cli.js"}, "1.3.0-beta.1": {}, "2.0.0-rc.1": {"bin": {"a": "a.js", "b": "b.js"}}}
        }))
        .unwrap()
    }

    fn asking(version: &str) -> PackageRequest<'_> {
        let extras: &[String] = &[];
        PackageRequest {
            ecosystem: Ecosystem::Npm,
            name: "@x/y",
            version,
            bin: None,
            extras,
            allow_install_scripts: false,
        }
    }

    #[test]
    fn versions_resolve_to_exact_ones() {
        let p = packument();
        assert_eq!(pick(&p, &asking("1.0.0")).unwrap(), "1.0.0");
        assert_eq!(pick(&p, &asking("latest")).unwrap(), "1.2.0");
        assert_eq!(pick(&p, &asking("next")).unwrap(), "2.0.0-rc.1");
        assert_eq!(pick(&p, &asking("^1.0.0")).unwrap(), "1.2.0", "pre-releases only when asked");
        assert_eq!(pick(&p, &asking(">=1.0.0 <1.2.0")).unwrap(), "1.0.0");
        let missing = pick(&p, &asking("9.9.9")).unwrap_err();
        assert_eq!(missing.field(), "source.version");
        assert!(missing.to_string().contains("latest is 1.2.0"), "{missing}");
        assert_eq!(pick(&p, &asking("^3")).unwrap_err().field(), "source.version");
        assert_eq!(pick(&p, &asking("1 || 2")).unwrap_err().field(), "source.version");
        assert_eq!(pick(&p, &asking("banana")).unwrap_err().field(), "source.version");
    }
}
