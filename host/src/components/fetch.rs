//! A `wasm` entry's bytes: read from the operator's directory, fetched from
//! an allowed HTTP(S) host, or pulled from an allowed registry as an OCI
//! artifact; refused when larger than the limit (before it is read whole)
//! or when its digest is not the entry's.

use sha2::{Digest, Sha256};
use std::path::Path;

use super::ComponentError;
use super::ComponentsConfig;
use crate::catalog::{ComponentOrigin, ComponentSource};
use crate::egress::Allowlist;

/// Media types a WebAssembly component's layer is pushed with: the
/// wasm-pkg/`wkg` convention, and the plain one some tools write.
const WASM_LAYER_TYPES: [&str; 2] = ["application/wasm", "application/vnd.wasm.content.layer.v1+wasm"];

/// Refuses an origin the operator does not allow, whether or not its bytes
/// are kept already: what an entry may name does not depend on what ran before.
pub(super) fn check_origin(source: &ComponentSource<'_>, config: &ComponentsConfig) -> Result<(), ComponentError> {
    match &source.origin {
        ComponentOrigin::Path(_) => Ok(()),
        ComponentOrigin::Url(url) => {
            let parsed = reqwest::Url::parse(url).map_err(|e| invalid("source.url", e.to_string()))?;
            let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']);
            let port = parsed.port_or_known_default().unwrap_or(443);
            let allowlist = Allowlist::parse(&config.allowed_hosts).unwrap_or_default();
            match allowlist.allows(host, port) {
                Ok(_) => Ok(()),
                Err(refusal) => Err(invalid(
                    "source.url",
                    format!("{host}:{port} is not in runtime.components.allowed_hosts ({})", refusal.reason()),
                )),
            }
        }
        ComponentOrigin::Oci(reference) => match image_ref::is_allowed(reference, &config.allowed_registries) {
            true => Ok(()),
            false => {
                Err(invalid("source.oci", format!("{reference} is not under runtime.components.allowed_registries")))
            }
        },
    }
}

pub(super) async fn fetch(
    source: &ComponentSource<'_>,
    config: &ComponentsConfig,
    dir: &Path,
    http: &reqwest::Client,
) -> Result<Vec<u8>, ComponentError> {
    let max = config.max_bytes();
    let bytes = match &source.origin {
        ComponentOrigin::Path(path) => read_file(&dir.join(path), max).await?,
        ComponentOrigin::Url(url) => download(url, http, max).await?,
        ComponentOrigin::Oci(reference) => pull(reference, http, max).await?,
    };
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != source.sha256 {
        let reason = format!(
            "the component from {} has sha256:{actual}, the entry pins sha256:{}",
            source.origin, source.sha256
        );
        return Err(ComponentError::Invalid { field: "source.sha256".into(), reason });
    }
    Ok(bytes)
}

fn too_large(max: u64) -> ComponentError {
    let reason = format!("larger than runtime.components.max_size_mb ({} MiB)", max >> 20);
    ComponentError::Invalid { field: "source".into(), reason }
}

async fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, ComponentError> {
    let missing = |e: std::io::Error| ComponentError::Invalid {
        field: "source.path".into(),
        reason: format!("{}: {e}", path.display()),
    };
    let meta = tokio::fs::metadata(path).await.map_err(missing)?;
    if meta.len() > max {
        return Err(too_large(max));
    }
    tokio::fs::read(path).await.map_err(missing)
}

/// Checked by `check_origin` first.
async fn download(url: &str, http: &reqwest::Client, max: u64) -> Result<Vec<u8>, ComponentError> {
    let unavailable = |e: reqwest::Error| ComponentError::Unavailable(format!("{url}: {e}"));
    let mut answer = http.get(url).send().await.map_err(unavailable)?;
    if !answer.status().is_success() {
        return Err(ComponentError::Unavailable(format!("{url} answered HTTP {}", answer.status().as_u16())));
    }
    if answer.content_length().is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(unavailable)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > max {
            return Err(too_large(max));
        }
    }
    Ok(bytes)
}

/// The component layer of an OCI artifact (`registry/repository:tag` or
/// `@sha256:…`); checked by `check_origin` first.
async fn pull(reference: &str, http: &reqwest::Client, max: u64) -> Result<Vec<u8>, ComponentError> {
    let registry_name = image_ref::of(&image_ref::canonical(reference)).to_string();
    let repository = crate::oci::repository_path(reference);
    let tag = match image_ref::digest(reference) {
        Some(digest) => digest,
        None => reference
            .strip_prefix(image_ref::repository(reference))
            .and_then(|t| t.strip_prefix(':'))
            .unwrap_or("latest"),
    };
    let registry = crate::oci::Registry::new(http.clone(), &registry_name, None);
    let unavailable = |e: crate::oci::OciError| ComponentError::Unavailable(e.to_string());
    let manifest = registry.manifest(&repository, tag).await.map_err(unavailable)?;
    let manifest = manifest.ok_or_else(|| invalid("source.oci", format!("{reference}: no such artifact")))?;
    let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| invalid("source.oci", format!("{reference}: an unreadable manifest: {e}")))?;
    let layers = parsed["layers"].as_array().cloned().unwrap_or_default();
    let layer = layers.iter().find(|l| WASM_LAYER_TYPES.contains(&l["mediaType"].as_str().unwrap_or_default()));
    let Some(layer) = layer else {
        let reason = format!("{reference} has no layer of a component's media type ({})", WASM_LAYER_TYPES.join(", "));
        return Err(invalid("source.oci", reason));
    };
    if layer["size"].as_u64().is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let digest = layer["digest"].as_str().unwrap_or_default();
    registry.blob(&repository, digest).await.map_err(unavailable)
}

fn invalid(field: &str, reason: String) -> ComponentError {
    ComponentError::Invalid { field: field.into(), reason }
}
