//! A directory operators drop rules into, for those who ship files rather
//! than call the API: `<name>.wasm` beside its manifest `<name>.yaml` (the
//! upload's manifest: id, kind, grants, limits, settings). Each scan uploads
//! what is new and upgrades what changed, through the same checks as the
//! API; a pair that was refused is tried again only once either file changes.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{NewPlugin, UploadError};

/// Who the events name for what came from the directory.
pub const DROPIN_ACTOR: &str = "plugin-dropin-dir";

#[derive(Default)]
pub struct DropIns {
    /// Each manifest's pair as last acted on: a hash of both files.
    seen: Mutex<HashMap<PathBuf, String>>,
}

/// A pair that is new or changed since the last scan, to upload or upgrade.
pub struct DroppedIn {
    pub manifest: PathBuf,
    /// The manifest as read, or why it cannot be.
    pub plugin: Result<NewPlugin, UploadError>,
    pub component: Vec<u8>,
}

impl DropIns {
    /// One pass over `dir`: the pairs new or changed since the last.
    pub fn scan(&self, dir: &Path) -> Vec<DroppedIn> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut manifests: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        manifests.sort();
        let mut changed = Vec::new();
        for manifest in manifests {
            let component = manifest.with_extension("wasm");
            let (Ok(text), Ok(bytes)) = (std::fs::read(&manifest), std::fs::read(&component)) else { continue };
            let pair = hex::encode(Sha256::new().chain_update(&text).chain_update(&bytes).finalize());
            if self.seen.lock().expect("drop-in map poisoned").insert(manifest.clone(), pair.clone()) == Some(pair) {
                continue;
            }
            let plugin = serde_yaml_ng::from_slice::<NewPlugin>(&text)
                .map_err(|e| UploadError::Invalid { field: "manifest".into(), reason: e.to_string() });
            changed.push(DroppedIn { manifest, plugin, component: bytes });
        }
        changed
    }
}
