//! Asking the configured index what a package entry means: the exact
//! version a range or tag stands for (a version that is not there, or was
//! yanked, refused), and the executable the image is to run.

mod npm;
mod pypi;

use std::sync::Arc;

use super::{invalid, BuildersConfig, Ecosystem, PackageError, PackageRequest};

/// The most an index page or a wheel read for its entry points may be.
const MOST_BYTES: usize = 64 << 20;

/// What the index said of a package entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Exact.
    pub version: String,
    /// The executable the image runs.
    pub bin: String,
}

pub struct Indexes {
    http: reqwest::Client,
    config: Arc<BuildersConfig>,
}

impl Indexes {
    pub fn new(http: reqwest::Client, config: Arc<BuildersConfig>) -> Indexes {
        Indexes { http, config }
    }

    /// The exact version and executable `request` names, as its index knows them.
    pub async fn resolve(&self, request: &PackageRequest<'_>) -> Result<Resolved, PackageError> {
        request.check()?;
        let index = self.config.ecosystem(request.ecosystem).index;
        match request.ecosystem {
            Ecosystem::Npm => npm::resolve(self, &index, request).await,
            Ecosystem::Pypi => pypi::resolve(self, &index, request).await,
        }
    }

    /// A document of the index: `None` when it has no such package.
    async fn fetch(&self, url: &str, accept: &str) -> Result<Option<(String, Vec<u8>)>, PackageError> {
        let unavailable = |why: String| PackageError::IndexUnavailable { field: "source.version".into(), reason: why };
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| unavailable(format!("the index at {url} cannot be reached: {e}")))?;
        match response.status() {
            s if s == reqwest::StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => return Err(unavailable(format!("the index answered {s} for {url}"))),
            _ => {}
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(format!("reading {url}: {e}")))? {
            if body.len() + chunk.len() > MOST_BYTES {
                return Err(unavailable(format!("{url} is larger than {} MB", MOST_BYTES >> 20)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some((content_type, body)))
    }
}

/// Whether `version` names one version exactly in the ecosystem's scheme.
pub fn is_exact(ecosystem: Ecosystem, version: &str) -> bool {
    match ecosystem {
        Ecosystem::Npm => semver::Version::parse(version).is_ok(),
        Ecosystem::Pypi => {
            version.starts_with(|c: char| c.is_ascii_digit()) && version.parse::<pep440_rs::Version>().is_ok()
        }
    }
}

/// The executable to run among those the package declares: the one asked
/// for, else the one named like the package, else the only one.
fn choose_bin(asked: Option<&str>, package: &str, declared: &[String]) -> Result<String, PackageError> {
    let listed = || declared.join(", ");
    if declared.is_empty() {
        return Err(invalid("source.bin", "the package declares no executable to run"));
    }
    if let Some(asked) = asked {
        return match declared.iter().any(|d| d == asked) {
            true => Ok(asked.to_string()),
            false => Err(invalid("source.bin", format!("the package declares no '{asked}'; it declares {}", listed()))),
        };
    }
    if let Some(named) = declared.iter().find(|d| d.as_str() == package) {
        return Ok(named.clone());
    }
    match declared {
        [only] => Ok(only.clone()),
        _ => Err(invalid("source.bin", format!("the package declares several executables: pick one of {}", listed()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_versions() {
        assert!(is_exact(Ecosystem::Npm, "2026.8.31") && is_exact(Ecosystem::Npm, "1.0.0-beta.1"));
        for loose in ["latest", "^1.2.3", "1.x", "1.2"] {
            assert!(!is_exact(Ecosystem::Npm, loose), "{loose}");
        }
        assert!(is_exact(Ecosystem::Pypi, "2026.10.19") && is_exact(Ecosystem::Pypi, "1.0rc1"));
        for loose in ["latest", ">=1.0", "==1.0", "~=1.2"] {
            assert!(!is_exact(Ecosystem::Pypi, loose), "{loose}");
        }
    }

    #[test]
    fn bins_are_chosen_or_listed() {
        let declared = ["a".to_string(), "b".to_string()];
        assert_eq!(choose_bin(Some("b"), "x", &declared), Ok("b".into()));
        assert_eq!(choose_bin(None, "a", &declared), Ok("a".into()));
        assert_eq!(choose_bin(None, "x", &declared[..1]), Ok("a".into()));
        let refused = choose_bin(None, "x", &declared).unwrap_err();
        assert_eq!(refused.field(), "source.bin");
        assert!(refused.to_string().contains("a, b"), "{refused}");
        assert!(choose_bin(Some("c"), "x", &declared).unwrap_err().to_string().contains("a, b"));
        assert_eq!(choose_bin(None, "x", &[]).unwrap_err().field(), "source.bin");
    }
}
