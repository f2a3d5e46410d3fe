//! The package mirrors the package-server tests install from (Verdaccio and
//! pypiserver on loopback, no uplink): they serve the pinned servers with
//! the hashes a lock pins them by, and nothing they were not given.

use base64::Engine;
use sha2::{Digest, Sha256, Sha512};

use crate::support::package_mirrors::{PackageMirrors, NPM_SERVER, PYPI_SERVER};

async fn bytes(url: &str) -> (reqwest::StatusCode, Vec<u8>) {
    let answer = reqwest::get(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    (answer.status(), answer.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_npm_mirror_serves_the_pinned_server_by_its_integrity_and_nothing_else() {
    let mirrors = PackageMirrors::start().await;
    let (name, version) = NPM_SERVER;
    let (status, body) = bytes(&format!("{}/{}", mirrors.npm, name.replace('/', "%2f"))).await;
    assert!(status.is_success(), "{status}");
    let metadata: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let dist = &metadata["versions"][version]["dist"];
    let tarball = dist["tarball"].as_str().unwrap();
    assert!(tarball.starts_with(&mirrors.npm), "the mirror serves its own tarballs: {tarball}");
    let (status, tgz) = bytes(tarball).await;
    assert!(status.is_success(), "{status}");
    let integrity = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tgz)));
    assert_eq!(dist["integrity"], integrity.as_str(), "the tarball is the one the registry's integrity names");
    // A dependency of the tree is there too; a package nobody pinned is not.
    assert!(bytes(&format!("{}/zod", mirrors.npm)).await.0.is_success());
    assert_eq!(bytes(&format!("{}/left-pad", mirrors.npm)).await.0, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pypi_mirror_serves_the_pinned_server_by_its_sha256_and_nothing_else() {
    let mirrors = PackageMirrors::start().await;
    let (name, version) = PYPI_SERVER;
    let (status, page) = bytes(&format!("{}{name}/", mirrors.pypi)).await;
    assert!(status.is_success(), "{status}");
    let page = String::from_utf8(page).unwrap();
    let wheel = format!("{}-{version}-", name.replace('-', "_"));
    let href = page
        .split("href=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .find(|link| link.contains(&wheel))
        .unwrap_or_else(|| panic!("no {wheel} wheel in {page}"));
    let (link, hash) = href.split_once("#sha256=").expect("the link names its sha256");
    let url = reqwest::Url::parse(&mirrors.pypi).unwrap().join(link).unwrap();
    let (status, file) = bytes(url.as_str()).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(hex::encode(Sha256::digest(&file)), hash);
    assert!(bytes(&format!("{}mcp/", mirrors.pypi)).await.0.is_success(), "its dependencies too");
    assert_eq!(bytes(&format!("{}requests-oauthlib/", mirrors.pypi)).await.0, reqwest::StatusCode::NOT_FOUND);
}
