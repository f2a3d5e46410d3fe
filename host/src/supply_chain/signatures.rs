//! Whether an image carries a valid cosign signature by a key the operator
//! trusts for it. A key covers registries or repository prefixes, or
//! catalog entries; an image no key covers is `not_configured` and nothing
//! is asked of it. The signatures are read from the image's registry (the
//! manifest tagged `sha256-<hex>.sig` beside it) with the host's login.

use serde::{Deserialize, Serialize};

use super::cosign::{self, PrivateKey, PublicKey};
use super::signature::{SignatureCheck, SignatureMode, SignatureOutcome};
use crate::oci::{Login, OciError, Registry};

/// A public key and what it covers (`runtime.supply_chain.trusted_keys`).
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub key: PublicKey,
    /// Registries or repository prefixes, matched on whole path segments.
    pub images: Vec<String>,
    /// Catalog entries (slugs).
    pub entries: Vec<String>,
}

impl TrustedKey {
    fn covers(&self, image: &str, slug: &str) -> bool {
        let repository = image_ref::canonical(image_ref::repository(image));
        self.entries.iter().any(|e| e == slug)
            || image_ref::is_allowed(image, &self.images)
            || self.images.iter().any(|prefix| image_ref::canonical(prefix.trim_end_matches('/')) == repository)
    }
}

/// The key the host signs what it builds with.
pub struct SigningKey {
    pub name: String,
    pub key: PrivateKey,
}

/// One image to check: the reference asked for, and the content it was pinned to.
pub struct ImageToCheck<'a> {
    pub image: &'a str,
    /// The registry's manifest digest; none when only a local copy is known.
    pub digest: Option<&'a str>,
    pub slug: &'a str,
    pub login: Option<Login>,
}

pub struct Signatures {
    keys: Vec<TrustedKey>,
    signing: Option<SigningKey>,
    http: reqwest::Client,
}

impl Signatures {
    pub fn new(keys: Vec<TrustedKey>, signing: Option<SigningKey>, http: reqwest::Client) -> Signatures {
        Signatures { keys, signing, http }
    }

    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing.as_ref()
    }

    /// The trusted keys that cover `image` of the entry `slug`.
    pub fn covering(&self, image: &str, slug: &str) -> Vec<&TrustedKey> {
        self.keys.iter().filter(|k| k.covers(image, slug)).collect()
    }

    /// What `mode` asks of the image, and what came of it.
    pub async fn check(&self, image: &ImageToCheck<'_>, mode: SignatureMode) -> SignatureCheck {
        let outcome = match mode {
            SignatureMode::Off => SignatureOutcome::NotChecked { why: "the profile does not check signatures".into() },
            _ => self.outcome(image).await,
        };
        SignatureCheck { mode, outcome }
    }

    async fn outcome(&self, image: &ImageToCheck<'_>) -> SignatureOutcome {
        let keys = self.covering(image.image, image.slug);
        if keys.is_empty() {
            return SignatureOutcome::NotConfigured;
        }
        let Some(digest) = image.digest else {
            let why = "its registry digest is not known (signatures are stored by it)".into();
            return SignatureOutcome::NotChecked { why };
        };
        let registry = Registry::new(self.http.clone(), image_ref::of(image.image), image.login.clone());
        let repository = crate::oci::repository_path(image.image);
        let manifest = match registry.manifest(&repository, &cosign::signature_tag(digest)).await {
            Ok(Some(manifest)) => manifest,
            Ok(None) => return SignatureOutcome::Missing,
            Err(e) => return SignatureOutcome::NotChecked { why: format!("its signatures cannot be read: {e}") },
        };
        let layers = match serde_json::from_slice::<SignatureManifest>(&manifest.bytes) {
            Ok(parsed) => parsed.layers,
            Err(e) => return SignatureOutcome::Invalid { why: format!("the signature manifest does not parse: {e}") },
        };
        let mut why = Vec::new();
        for layer in layers.iter().filter(|l| l.media_type == cosign::PAYLOAD_MEDIA_TYPE) {
            let Some(signature) = layer.annotations.get(cosign::SIGNATURE_ANNOTATION) else {
                why.push(format!("layer {} carries no signature", layer.digest));
                continue;
            };
            let payload = match registry.blob(&repository, &layer.digest).await {
                Ok(payload) => payload,
                Err(e) => {
                    why.push(e.to_string());
                    continue;
                }
            };
            match verify_layer(&keys, &payload, signature, digest) {
                Ok(key) => return SignatureOutcome::Valid { key: key.into() },
                Err(reason) => why.push(reason),
            }
        }
        match why.is_empty() {
            true => SignatureOutcome::Missing,
            false => SignatureOutcome::Invalid { why: why.join("; ") },
        }
    }
}

/// The name of the key whose signature over `payload` is valid, when the
/// payload signs `digest`; else why not.
pub fn verify_layer<'k>(
    keys: &[&'k TrustedKey],
    payload: &[u8],
    signature: &str,
    digest: &str,
) -> Result<&'k str, String> {
    let Some(key) = keys.iter().find(|k| k.key.verify(payload, signature).is_ok()) else {
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        return Err(format!("signed by none of the trusted keys ({})", names.join(", ")));
    };
    let signed = cosign::signed_digest(payload)?;
    if signed != digest {
        return Err(format!("key {} signed {signed}, not this image's {digest}", key.name));
    }
    Ok(&key.name)
}

/// Pushes `signature` over `payload` as a signature of `digest` in
/// `repository` (a path in `registry`), as `cosign sign` does: a layer of
/// the manifest tagged `sha256-<hex>.sig`, added to the signatures there.
pub async fn attach(
    registry: &Registry,
    repository: &str,
    digest: &str,
    payload: &[u8],
    signature: &str,
) -> Result<(), OciError> {
    let tag = cosign::signature_tag(digest);
    let mut layers = match registry.manifest(repository, &tag).await? {
        Some(existing) => {
            serde_json::from_slice::<SignatureManifest>(&existing.bytes).map(|m| m.layers).unwrap_or_default()
        }
        None => Vec::new(),
    };
    let payload_digest = registry.push_blob(repository, payload).await?;
    layers.retain(|l| l.digest != payload_digest);
    layers.push(Layer {
        media_type: cosign::PAYLOAD_MEDIA_TYPE.into(),
        digest: payload_digest,
        size: payload.len() as u64,
        annotations: [(cosign::SIGNATURE_ANNOTATION.to_string(), signature.to_string())].into(),
    });
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let config_digest = registry.push_blob(repository, config.as_bytes()).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::oci::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    });
    registry.push_manifest(repository, &tag, manifest.to_string().as_bytes(), crate::oci::OCI_MANIFEST).await?;
    Ok(())
}

#[derive(Deserialize)]
struct SignatureManifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, images: &[&str], entries: &[&str]) -> (TrustedKey, PrivateKey) {
        let private = PrivateKey::generate();
        let trusted = TrustedKey {
            name: name.into(),
            key: private.public(),
            images: images.iter().map(|s| s.to_string()).collect(),
            entries: entries.iter().map(|s| s.to_string()).collect(),
        };
        (trusted, private)
    }

    #[test]
    fn a_key_covers_its_registries_repositories_and_entries_only() {
        let (k, _) = key("acme", &["ghcr.io/acme", "127.0.0.1:5000/mcp/fixture"], &["time"]);
        assert!(k.covers("ghcr.io/acme/app:1", "x"));
        assert!(!k.covers("ghcr.io/acmecorp/app:1", "x"), "whole path segments");
        assert!(k.covers("127.0.0.1:5000/mcp/fixture:v1", "x"), "the repository itself");
        assert!(!k.covers("127.0.0.1:5000/mcp/other:v1", "x"));
        assert!(k.covers("docker.io/library/redis:7", "time"), "by entry");
        let (hub, _) = key("hub", &["docker.io/library"], &[]);
        assert!(hub.covers("redis:7", "x"), "references are read as Docker reads them");
    }

    #[test]
    fn a_signature_is_valid_only_by_a_trusted_key_and_for_this_digest() {
        let (acme, private) = key("acme", &["ghcr.io/acme"], &[]);
        let (other, _) = key("other", &["ghcr.io/acme"], &[]);
        let payload = cosign::payload("ghcr.io/acme/app", "sha256:aa");
        let signature = private.sign(&payload);
        assert_eq!(verify_layer(&[&other, &acme], &payload, &signature, "sha256:aa"), Ok("acme"));
        assert_eq!(
            verify_layer(&[&other], &payload, &signature, "sha256:aa"),
            Err("signed by none of the trusted keys (other)".into())
        );
        assert_eq!(
            verify_layer(&[&acme], &payload, &signature, "sha256:bb"),
            Err("key acme signed sha256:aa, not this image's sha256:bb".into())
        );
    }
}
