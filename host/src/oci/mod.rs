//! The OCI distribution API, as much of it as the host needs to read and
//! write artifacts beside images: manifests and blobs by repository, pulled
//! and pushed with the host's registry login (Basic, or the Bearer token a
//! registry's challenge points to). Registries on loopback are spoken to
//! over plain HTTP, as Docker does; any other over HTTPS.

mod auth;

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use auth::Challenge;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The manifest kinds an image reference may name, for `Accept`.
const MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                         application/vnd.docker.distribution.manifest.v2+json, \
                         application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("registry {registry}: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("registry {registry} refused the host's login for {repository}")]
    Denied { registry: String, repository: String },
    #[error("registry {registry}: {reason}")]
    Failed { registry: String, reason: String },
}

/// A registry login (`runtime.sources.registries`).
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// A manifest as the registry serves it.
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// `sha256:` of its bytes.
    pub digest: String,
}

/// One registry, spoken to with one login.
pub struct Registry {
    http: reqwest::Client,
    /// As references name it (`ghcr.io`, `127.0.0.1:5000`).
    name: String,
    base: String,
    login: Option<Login>,
    token: tokio::sync::Mutex<Option<String>>,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Registry {
    /// The registry of `name` as image references name it.
    pub fn new(http: reqwest::Client, name: &str, login: Option<Login>) -> Registry {
        let host = if name == "docker.io" { "registry-1.docker.io" } else { name };
        let loopback = host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
        let scheme = if loopback { "http" } else { "https" };
        Registry {
            http,
            name: name.into(),
            base: format!("{scheme}://{host}/v2"),
            login,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// The manifest `reference` (a tag or a digest) names; `None` when there is none.
    pub async fn manifest(&self, repository: &str, reference: &str) -> Result<Option<Manifest>, OciError> {
        let url = format!("{}/{repository}/manifests/{reference}", self.base);
        let answer = self.send(Method::GET, &url, repository, false, |r| r.header("accept", MANIFESTS)).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let answer = self.ok(answer).await?;
        let media_type = content_type(&answer);
        let bytes = answer.bytes().await.map_err(|e| self.unreachable(e))?.to_vec();
        Ok(Some(Manifest { digest: digest_of(&bytes), bytes, media_type }))
    }

    /// A blob, checked against its digest.
    pub async fn blob(&self, repository: &str, digest: &str) -> Result<Vec<u8>, OciError> {
        let url = format!("{}/{repository}/blobs/{digest}", self.base);
        let answer = self.ok(self.send(Method::GET, &url, repository, false, |r| r).await?).await?;
        let bytes = answer.bytes().await.map_err(|e| self.unreachable(e))?.to_vec();
        if digest_of(&bytes) != digest {
            return Err(self.failed(format!("blob {digest} of {repository} does not match its digest")));
        }
        Ok(bytes)
    }

    /// Uploads a blob (in one request), unless the registry has it; its digest.
    pub async fn push_blob(&self, repository: &str, bytes: &[u8]) -> Result<String, OciError> {
        let digest = digest_of(bytes);
        let head = format!("{}/{repository}/blobs/{digest}", self.base);
        if self.send(Method::HEAD, &head, repository, true, |r| r).await?.status().is_success() {
            return Ok(digest);
        }
        let start = format!("{}/{repository}/blobs/uploads/", self.base);
        let started = self.ok(self.send(Method::POST, &start, repository, true, |r| r).await?).await?;
        let location = started
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| self.failed("an upload without a location".into()))?;
        let mut url = self.absolute(location);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let body = bytes.to_vec();
        let put = |r: reqwest::RequestBuilder| r.header("content-type", "application/octet-stream").body(body.clone());
        self.ok(self.send(Method::PUT, &url, repository, true, put).await?).await?;
        Ok(digest)
    }

    /// Puts a manifest under `reference` (a tag); its digest.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, OciError> {
        let url = format!("{}/{repository}/manifests/{reference}", self.base);
        let body = bytes.to_vec();
        let put = |r: reqwest::RequestBuilder| r.header("content-type", media_type).body(body.clone());
        self.ok(self.send(Method::PUT, &url, repository, true, put).await?).await?;
        Ok(digest_of(bytes))
    }

    /// Sends a request with what the registry accepts: none, the token it
    /// handed out, or (after its challenge) Basic or a new Bearer token.
    async fn send(
        &self,
        method: Method,
        url: &str,
        repository: &str,
        push: bool,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OciError> {
        let token = self.token.lock().await.clone();
        let request = |authorization: Option<&str>| {
            let r = build(self.http.request(method.clone(), url));
            match authorization {
                Some(value) => r.header("authorization", value),
                None => r,
            }
        };
        let answer = request(token.as_deref()).send().await.map_err(|e| self.unreachable(e))?;
        if answer.status() != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let challenge = Challenge::of(&answer);
        let authorization = match challenge {
            Some(Challenge::Bearer { realm, service }) => {
                let scope = format!("repository:{repository}:{}", if push { "pull,push" } else { "pull" });
                let token = auth::bearer(&self.http, &realm, service.as_deref(), &scope, self.login.as_ref())
                    .await
                    .map_err(|reason| self.failed(reason))?;
                format!("Bearer {token}")
            }
            _ => match &self.login {
                Some(login) => auth::basic(login),
                None => return Err(self.denied(repository)),
            },
        };
        *self.token.lock().await = Some(authorization.clone());
        let answer = request(Some(&authorization)).send().await.map_err(|e| self.unreachable(e))?;
        if answer.status() == StatusCode::UNAUTHORIZED || answer.status() == StatusCode::FORBIDDEN {
            return Err(self.denied(repository));
        }
        Ok(answer)
    }

    async fn ok(&self, answer: reqwest::Response) -> Result<reqwest::Response, OciError> {
        if answer.status().is_success() {
            return Ok(answer);
        }
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        Err(self.failed(format!("answered {status}: {}", body.chars().take(300).collect::<String>())))
    }

    /// A `Location` the registry answered, as a URL (it may be relative).
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            return location.into();
        }
        let origin = self.base.trim_end_matches("/v2");
        format!("{origin}{location}")
    }

    fn unreachable(&self, e: reqwest::Error) -> OciError {
        OciError::Unreachable { registry: self.name.clone(), reason: e.to_string() }
    }

    fn failed(&self, reason: String) -> OciError {
        OciError::Failed { registry: self.name.clone(), reason }
    }

    fn denied(&self, repository: &str) -> OciError {
        OciError::Denied { registry: self.name.clone(), repository: repository.into() }
    }
}

fn content_type(answer: &reqwest::Response) -> String {
    let header = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    header.split(';').next().unwrap_or_default().trim().to_string()
}

/// The repository path of a reference within its registry (`ghcr.io/org/x:1` → `org/x`;
/// `redis` → `library/redis`).
pub fn repository_path(image: &str) -> String {
    let canonical = image_ref::canonical(image_ref::repository(image));
    let registry = image_ref::of(&canonical);
    canonical.strip_prefix(registry).unwrap_or(&canonical).trim_start_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_references_repository_is_its_path_within_its_registry() {
        assert_eq!(repository_path("ghcr.io/org/x:1"), "org/x");
        assert_eq!(repository_path("127.0.0.1:5000/mcp/fixture@sha256:aa"), "mcp/fixture");
        assert_eq!(repository_path("redis:7"), "library/redis");
        assert_eq!(repository_path("mcp/filesystem"), "mcp/filesystem");
        assert_eq!(digest_of(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
