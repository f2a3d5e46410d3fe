//! A directory operators drop rules into, for those who ship files rather
//! than call the API: `<name>.wasm` beside its manifest `<name>.yaml` (the
//! upload's manifest: id, kind, grants, limits, settings). Each scan uploads
//! what is new and upgrades what changed, through the same checks as the
//! API; a pair that was refused is tried again only once either file changes.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{NewPlugin, Registry, UploadError, Uploads};

/// Who the events name for what came from the directory.
const ACTOR: &str = "plugin-dropin-dir";

#[derive(Default)]
pub struct DropIns {
    /// Each manifest's pair as last acted on: a hash of both files.
    seen: Mutex<HashMap<PathBuf, String>>,
}

impl DropIns {
    /// One pass over `dir`; what each new or changed pair came to.
    pub fn scan(&self, dir: &Path, uploads: &Uploads, registry: &Registry) -> Vec<(PathBuf, Result<(), UploadError>)> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut manifests: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        manifests.sort();
        let mut outcomes = Vec::new();
        for manifest in manifests {
            let component = manifest.with_extension("wasm");
            let (Ok(text), Ok(bytes)) = (std::fs::read(&manifest), std::fs::read(&component)) else { continue };
            let pair = hex::encode(Sha256::new().chain_update(&text).chain_update(&bytes).finalize());
            if self.seen.lock().expect("drop-in map poisoned").insert(manifest.clone(), pair.clone()) == Some(pair) {
                continue;
            }
            let outcome = serde_yaml_ng::from_slice::<NewPlugin>(&text)
                .map_err(|e| UploadError::Invalid { field: "manifest".into(), reason: e.to_string() })
                .and_then(|new| match uploads.get(&new.id) {
                    Ok(_) => uploads.upgrade(registry, new, &bytes, Some(ACTOR)).map(drop),
                    Err(_) => uploads.upload(registry, new, &bytes, Some(ACTOR)).map(drop),
                });
            match &outcome {
                Ok(()) => tracing::info!(manifest = %manifest.display(), "dropped-in plugin is live"),
                Err(e) => tracing::warn!(manifest = %manifest.display(), "dropped-in plugin refused: {e}"),
            }
            outcomes.push((manifest, outcome));
        }
        outcomes
    }
}
