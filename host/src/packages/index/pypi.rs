//! A PyPI index's view of a project through the simple API (PEP 503 HTML,
//! or PEP 691 JSON where the index offers it): its files, their versions
//! and whether each was yanked; a console script read from a wheel's
//! `entry_points.txt`.

use std::io::Read;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use super::{choose_bin, Indexes, Resolved};
use crate::packages::names::normalize_python;
use crate::packages::{invalid, PackageError, PackageRequest};

/// One file of a project as the index lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexFile {
    pub filename: String,
    /// Absolute.
    pub url: String,
    pub sha256: Option<String>,
    pub yanked: bool,
}

impl IndexFile {
    pub fn is_wheel(&self) -> bool {
        self.filename.ends_with(".whl")
    }

    /// The version its name carries (a wheel's second part; an sdist's last).
    pub fn version(&self) -> Option<Version> {
        let text = if let Some(stem) = self.filename.strip_suffix(".whl") {
            stem.split('-').nth(1)?
        } else {
            let stem = [".tar.gz", ".zip", ".tar.bz2"].iter().find_map(|s| self.filename.strip_suffix(s))?;
            stem.rsplit_once('-')?.1
        };
        Version::from_str(text).ok()
    }
}

pub async fn resolve(indexes: &Indexes, index: &str, request: &PackageRequest<'_>) -> Result<Resolved, PackageError> {
    let files = project_files(indexes, index, request.name).await?;
    let version = pick(&files, request)?;
    let of_version: Vec<&IndexFile> =
        files.iter().filter(|f| !f.yanked && f.version().as_ref() == Some(&version)).collect();
    let wheel = of_version
        .iter()
        .copied()
        .find(|f| f.filename.ends_with("-none-any.whl"))
        .or_else(|| of_version.iter().copied().find(|f| f.is_wheel()));
    let Some(wheel) = wheel else {
        if !request.allow_install_scripts {
            let reason = format!("{version} of '{}' has no wheel, only sources to build: building runs the package's code (allow_install_scripts)", request.name);
            return Err(invalid("source.allow_install_scripts", reason));
        }
        let bin = request.bin.ok_or_else(|| {
            invalid(
                "source.bin",
                format!(
                    "{version} of '{}' has no wheel to read its console scripts from: name the one to run",
                    request.name
                ),
            )
        })?;
        return Ok(Resolved { version: version.to_string(), bin: bin.to_string() });
    };
    let declared = console_scripts(indexes, wheel).await?;
    let bin = choose_bin(request.bin, request.name, &declared)
        .or_else(|e| choose_bin(request.bin, &normalize_python(request.name), &declared).map_err(|_| e))?;
    Ok(Resolved { version: version.to_string(), bin })
}

/// Every file the index lists for the project.
pub async fn project_files(indexes: &Indexes, index: &str, name: &str) -> Result<Vec<IndexFile>, PackageError> {
    let url = format!("{index}{}/", normalize_python(name));
    let accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.2";
    let Some((content_type, body)) = indexes.fetch(&url, accept).await? else {
        return Err(invalid("source.name", format!("{index} has no project '{name}'")));
    };
    let base = reqwest::Url::parse(&url).map_err(|e| invalid("source.name", e.to_string()))?;
    let body = String::from_utf8_lossy(&body);
    Ok(match content_type.contains("json") {
        true => parse_json(&base, &body),
        false => parse_html(&base, &body),
    })
}

/// The exact version asked for (refused when missing or yanked), or the
/// highest of a range or of `latest`, pre-releases only when named.
fn pick(files: &[IndexFile], request: &PackageRequest<'_>) -> Result<Version, PackageError> {
    let asked = request.version.trim();
    let name = request.name;
    let mut offered: Vec<(Version, bool)> = files.iter().filter_map(|f| Some((f.version()?, f.yanked))).collect();
    offered.sort();
    let live = |v: &Version| offered.iter().any(|(o, yanked)| o == v && !yanked);
    let newest = offered.iter().rev().find(|(v, yanked)| !yanked && !v.any_prerelease()).map(|(v, _)| v.clone());
    let newest_note = || newest.as_ref().map(|v| format!(" (latest is {v})")).unwrap_or_default();
    if super::is_exact(crate::packages::Ecosystem::Pypi, asked) {
        let version = Version::from_str(asked).map_err(|e| invalid("source.version", e.to_string()))?;
        return match offered.iter().any(|(v, _)| *v == version) {
            false => Err(invalid("source.version", format!("'{name}' has no version {asked}{}", newest_note()))),
            true if !live(&version) => {
                Err(invalid("source.version", format!("{asked} of '{name}' was yanked{}", newest_note())))
            }
            true => Ok(version),
        };
    }
    if asked == "latest" {
        return newest.ok_or_else(|| invalid("source.version", format!("'{name}' has no release that was not yanked")));
    }
    let range = VersionSpecifiers::from_str(asked).map_err(|_| {
        invalid("source.version", format!("'{asked}' is not a version, a range (>=1.2,<2) or `latest`"))
    })?;
    let wants_pre = range.iter().any(|s| s.version().any_prerelease());
    offered
        .iter()
        .rev()
        .find(|(v, yanked)| !yanked && range.contains(v) && (wants_pre || !v.any_prerelease()))
        .map(|(v, _)| v.clone())
        .ok_or_else(|| invalid("source.version", format!("no version of '{name}' matches {asked}{}", newest_note())))
}

/// The console scripts a wheel declares (`[console_scripts]` of its entry points).
async fn console_scripts(indexes: &Indexes, wheel: &IndexFile) -> Result<Vec<String>, PackageError> {
    let Some((_, bytes)) = indexes.fetch(&wheel.url, "*/*").await? else {
        return Err(invalid("source.version", format!("the index lists {} but does not serve it", wheel.filename)));
    };
    let unreadable = |e: String| invalid("source.version", format!("{} is not a readable wheel: {e}", wheel.filename));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    let entry_points = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).and_then(|n| n.ok()).map(|n| (i, n.to_string())))
        .find(|(_, n)| n.ends_with(".dist-info/entry_points.txt") && n.matches('/').count() == 1);
    let Some((i, _)) = entry_points else { return Ok(Vec::new()) };
    let mut text = String::new();
    let file = archive.by_index(i).map_err(|e| unreadable(e.to_string()))?;
    file.take(1 << 20).read_to_string(&mut text).map_err(|e| unreadable(e.to_string()))?;
    Ok(console_scripts_in(&text))
}

fn console_scripts_in(entry_points: &str) -> Vec<String> {
    let mut section = "";
    let mut scripts = Vec::new();
    for line in entry_points.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim();
        } else if section == "console_scripts" {
            if let Some((name, _)) = line.split_once('=') {
                scripts.push(name.trim().to_string());
            }
        }
    }
    scripts
}

/// PEP 691: `{"files": [{"filename", "url", "hashes": {"sha256"}, "yanked"}]}`.
fn parse_json(base: &reqwest::Url, body: &str) -> Vec<IndexFile> {
    let Ok(page) = serde_json::from_str::<serde_json::Value>(body) else { return Vec::new() };
    let files = page.get("files").and_then(|f| f.as_array()).cloned().unwrap_or_default();
    files
        .iter()
        .filter_map(|f| {
            let url = base.join(f.get("url")?.as_str()?).ok()?;
            Some(IndexFile {
                filename: f.get("filename")?.as_str()?.to_string(),
                url: url.to_string(),
                sha256: f.pointer("/hashes/sha256").and_then(|h| h.as_str()).map(str::to_string),
                yanked: f.get("yanked").is_some_and(|y| y.as_bool() != Some(false) && !y.is_null()),
            })
        })
        .collect()
}

/// PEP 503: one `<a href="…#sha256=…" data-yanked>filename</a>` per file.
fn parse_html(base: &reqwest::Url, body: &str) -> Vec<IndexFile> {
    let mut files = Vec::new();
    for anchor in body.split("<a ").skip(1) {
        let Some((attributes, rest)) = anchor.split_once('>') else { continue };
        let Some(text) = rest.split("</a>").next() else { continue };
        let Some(href) = attribute(attributes, "href") else { continue };
        let Ok(url) = base.join(&unescape(&href)) else { continue };
        let sha256 = url.fragment().and_then(|f| f.strip_prefix("sha256=")).map(str::to_string);
        let mut url = url.clone();
        url.set_fragment(None);
        files.push(IndexFile {
            filename: unescape(text.trim()),
            url: url.to_string(),
            sha256,
            yanked: attributes.contains("data-yanked"),
        });
    }
    files
}

fn attribute(attributes: &str, name: &str) -> Option<String> {
    let start = attributes.find(&format!("{name}="))? + name.len() + 1;
    let rest = &attributes[start..];
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = rest[1..].split(quote).next()?;
    Some(value.to_string())
}

fn unescape(text: &str) -> String {
    text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::Ecosystem;

    fn base() -> reqwest::Url {
        reqwest::Url::parse("http://127.0.0.1:8080/simple/mcp-server-time/").unwrap()
    }

    fn files() -> Vec<IndexFile> {
        let html = r#"<html><body><h1>Links</h1>
            <a href="../../packages/mcp_server_time-1.0.0-py3-none-any.whl#sha256=aa">mcp_server_time-1.0.0-py3-none-any.whl</a><br>
            <a href="../../packages/mcp_server_time-1.1.0.tar.gz#sha256=bb" data-yanked="broken">mcp_server_time-1.1.0.tar.gz</a>
            <a href='../../packages/mcp_server_time-1.2.0rc1-py3-none-any.whl'>mcp_server_time-1.2.0rc1-py3-none-any.whl</a>
            <a href="https://files.example/mcp_server_time-0.9.tar.gz">mcp_server_time-0.9.tar.gz</a></body></html>"#;
        parse_html(&base(), html)
    }

    fn asking(version: &str) -> PackageRequest<'_> {
        let extras: &[String] = &[];
        PackageRequest {
            ecosystem: Ecosystem::Pypi,
            name: "mcp-server-time",
            version,
            bin: None,
            extras,
            allow_install_scripts: false,
        }
    }

    #[test]
    fn simple_pages_read() {
        let files = files();
        assert_eq!(files.len(), 4);
        assert_eq!(files[0].url, "http://127.0.0.1:8080/packages/mcp_server_time-1.0.0-py3-none-any.whl");
        assert_eq!(files[0].sha256.as_deref(), Some("aa"));
        assert!(files[1].yanked && !files[0].yanked);
        assert_eq!(files[1].version(), Some(Version::from_str("1.1.0").unwrap()));
        assert_eq!(files[3].url, "https://files.example/mcp_server_time-0.9.tar.gz");
        let json = r#"{"files": [{"filename": "x-1.0-py3-none-any.whl", "url": "x-1.0-py3-none-any.whl", "hashes": {"sha256": "cc"}, "yanked": "reason"}]}"#;
        let parsed = parse_json(&base(), json);
        assert_eq!(parsed[0].url, "http://127.0.0.1:8080/simple/mcp-server-time/x-1.0-py3-none-any.whl");
        assert!(parsed[0].yanked);
    }

    #[test]
    fn versions_resolve_yanked_ones_refused() {
        let files = files();
        let picked = |v: &str| pick(&files, &asking(v)).map(|v| v.to_string());
        assert_eq!(picked("1.0.0").unwrap(), "1.0.0");
        assert_eq!(picked("1.0").unwrap(), "1.0", "PEP 440 equality: 1.0 is 1.0.0");
        assert!(picked("1.1.0").unwrap_err().to_string().contains("yanked"));
        assert_eq!(picked("latest").unwrap(), "1.0.0", "neither yanked nor a pre-release");
        assert_eq!(picked(">=0.9,<2").unwrap(), "1.0.0");
        assert_eq!(picked(">=1.2.0rc1").unwrap(), "1.2.0rc1");
        assert_eq!(pick(&files, &asking("3.0")).unwrap_err().field(), "source.version");
        assert_eq!(pick(&files, &asking("~~")).unwrap_err().field(), "source.version");
    }

    #[test]
    fn console_scripts_are_read() {
        let text =
            "[console_scripts]\nmcp-server-time = mcp_server_time:main\n other = x:y \n[gui_scripts]\ngui = a:b\n";
        assert_eq!(console_scripts_in(text), ["mcp-server-time", "other"]);
    }
}
