//! `runtime.supply_chain`: the OSV database that judges what deployments
//! install, the keys image signatures are verified against, and the key
//! the host signs the images it builds with.

use serde::Deserialize;
use std::path::PathBuf;

use super::{invalid, ConfigError};
use crate::supply_chain::cosign::{PrivateKey, PublicKey};
use crate::supply_chain::signatures::{Signatures, SigningKey, TrustedKey};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyChainConfig {
    /// A directory of OSV records (any layout beneath it) that what a
    /// deployment installs is matched against; none: nothing is matched.
    #[serde(default)]
    pub osv_dir: Option<PathBuf>,
    /// Public keys image signatures are verified against, each for the
    /// images it covers; an image no key covers is `not_configured`.
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKeyConfig>,
    /// The key images the host builds are signed with; none: not signed.
    #[serde(default)]
    pub signing_key: Option<SigningKeyConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeyConfig {
    /// How outcomes name the key (`valid (key acme-release)`).
    pub name: String,
    /// The ECDSA P-256 public key in PEM (`cosign.pub`), or `key_file`.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Registries or repository prefixes whose images the key covers
    /// (`ghcr.io/acme`, `127.0.0.1:5000/mcp/fixture`), on whole path segments.
    #[serde(default)]
    pub images: Vec<String>,
    /// Catalog entries (slugs) whose images the key covers, wherever they live.
    #[serde(default)]
    pub entries: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    pub name: String,
    /// An unencrypted ECDSA P-256 private key in PKCS#8 PEM
    /// (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
    pub key_file: PathBuf,
}

impl TrustedKeyConfig {
    /// The key's PEM, from `key` or `key_file`.
    pub fn pem(&self) -> Result<String, String> {
        match (&self.key, &self.key_file) {
            (Some(pem), None) => Ok(pem.clone()),
            (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display())),
            _ => Err("give exactly one of key (PEM) and key_file".into()),
        }
    }
}

impl SigningKeyConfig {
    pub fn load(&self) -> Result<PrivateKey, String> {
        let pem = std::fs::read_to_string(&self.key_file).map_err(|e| format!("{}: {e}", self.key_file.display()))?;
        PrivateKey::from_pem(&pem)
    }
}

impl SupplyChainConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(dir) = self.osv_dir.as_ref().filter(|d| !d.is_dir()) {
            return Err(invalid("runtime.supply_chain.osv_dir", format!("{} is not a directory", dir.display())));
        }
        for (i, key) in self.trusted_keys.iter().enumerate() {
            let at = |field: &str| format!("runtime.supply_chain.trusted_keys[{i}].{field}");
            if key.name.trim().is_empty() {
                return Err(invalid(&at("name"), "must not be empty"));
            }
            if self.trusted_keys[..i].iter().any(|k| k.name == key.name) {
                return Err(invalid(&at("name"), format!("'{}' names two keys", key.name)));
            }
            let pem = key.pem().map_err(|why| invalid(&at("key"), why))?;
            PublicKey::from_pem(&pem).map_err(|why| invalid(&at("key"), why))?;
            if key.images.is_empty() && key.entries.is_empty() {
                return Err(invalid(&at("images"), "name the images (or entries) the key covers"));
            }
        }
        if let Some(signing) = &self.signing_key {
            signing.load().map_err(|why| invalid("runtime.supply_chain.signing_key.key_file", why))?;
        }
        Ok(())
    }
}

impl SupplyChainConfig {
    /// The verifier of image signatures this configuration describes.
    pub fn signatures(&self, http: reqwest::Client) -> Result<Signatures, ConfigError> {
        self.validate()?;
        let mut keys = Vec::new();
        for (i, key) in self.trusted_keys.iter().enumerate() {
            let at = format!("runtime.supply_chain.trusted_keys[{i}].key");
            let public = key.pem().and_then(|pem| PublicKey::from_pem(&pem)).map_err(|why| invalid(&at, why))?;
            keys.push(TrustedKey {
                name: key.name.clone(),
                key: public,
                images: key.images.clone(),
                entries: key.entries.clone(),
            });
        }
        let signing = match &self.signing_key {
            Some(config) => Some(SigningKey {
                name: config.name.clone(),
                key: config.load().map_err(|why| invalid("runtime.supply_chain.signing_key.key_file", why))?,
            }),
            None => None,
        };
        Ok(Signatures::new(keys, signing, http))
    }
}
