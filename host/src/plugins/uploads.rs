//! Plugins uploaded through the API, at runtime: each version's component
//! kept by its hash under `<data_dir>/uploaded-plugins/`, its record (every
//! version's manifest, which one is active) in redb, so all of it survives
//! a restart. Loading checks the component as at start (the world its kind
//! names, no import beyond its grants) before anything is stored; the
//! registry then swaps the new version in for new calls.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

use super::{Grant, Plugin, PluginError, PluginHost, PluginKind, PluginLimits, PluginManifest, Registry};
use crate::events::{EventData, NoDetail, PluginOrder, PluginRollback, PluginUpgrade, PluginUpload};
use crate::store::{NewEvent, Store, StoreError, Table};

/// A plugin as uploaded: the manifest without a path (the host keeps the file).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlugin {
    pub id: String,
    pub kind: PluginKind,
    /// When given, the component must hash to it.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub limits: PluginLimits,
    #[serde(default = "empty_object")]
    pub settings: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub version: u32,
    pub sha256: String,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
    pub uploaded_by: Option<String>,
    pub manifest: PluginManifest,
}

impl Version {
    fn new(version: u32, plugin: &Plugin, manifest: PluginManifest, actor: Option<&str>) -> Version {
        Version {
            version,
            sha256: plugin.hash.clone(),
            uploaded_at: chrono::Utc::now(),
            uploaded_by: actor.map(String::from),
            manifest,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Uploaded {
    pub id: String,
    pub active: u32,
    pub versions: Vec<Version>,
}

/// A checked, loaded component that is not live yet (`Uploads::stage`).
pub struct Staged {
    manifest: PluginManifest,
    plugin: Plugin,
    /// The same component was kept already (by another plugin or version).
    kept_before: bool,
}

impl Staged {
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Drops a component that will not be used, and its file unless kept before.
    pub fn discard(self) {
        if !self.kept_before {
            let _ = std::fs::remove_file(&self.manifest.path);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("keeping the component: {0}")]
    Io(#[from] std::io::Error),
}

fn invalid(field: &str, reason: impl Into<String>) -> UploadError {
    UploadError::Invalid { field: field.into(), reason: reason.into() }
}

/// Why a component was refused, named as the field it came in.
fn refused(e: PluginError) -> UploadError {
    invalid("component", e.to_string())
}

/// An order of rules the API sets.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    PolicyChain,
    ApprovalRules,
}

impl Order {
    pub fn field(self) -> &'static str {
        match self {
            Order::PolicyChain => "policy_chain",
            Order::ApprovalRules => "approval_rules",
        }
    }
}

pub struct Uploads {
    host: PluginHost,
    dir: PathBuf,
    store: Arc<Store>,
    /// Plugins of the host config: not replaced or deleted through the API.
    configured: Vec<String>,
}

impl Uploads {
    pub fn new(host: PluginHost, data_dir: &std::path::Path, store: Arc<Store>, configured: Vec<String>) -> Uploads {
        Uploads { host, dir: data_dir.join("uploaded-plugins"), store, configured }
    }

    pub fn list(&self) -> Result<Vec<Uploaded>, UploadError> {
        Ok(self.store.list(Table::Plugins)?)
    }

    pub fn get(&self, id: &str) -> Result<Uploaded, UploadError> {
        self.store.get(Table::Plugins, id)?.ok_or_else(|| UploadError::NotFound(format!("no uploaded plugin '{id}'")))
    }

    /// Checks, keeps and loads a component, not yet live or recorded: the
    /// caller may still ask the loaded plugin something before committing.
    pub fn stage(&self, new: NewPlugin, component: &[u8]) -> Result<Staged, UploadError> {
        let hash = hex::encode(Sha256::digest(component));
        if new.sha256.as_ref().is_some_and(|pin| !pin.eq_ignore_ascii_case(&hash)) {
            return Err(invalid("manifest.sha256", format!("the component's sha256 is {hash}")));
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{hash}.wasm"));
        let kept_before = path.exists();
        if !kept_before {
            let partial = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
            std::fs::write(&partial, component)?;
            std::fs::rename(&partial, &path)?;
        }
        let manifest = PluginManifest {
            id: new.id,
            kind: new.kind,
            path: path.clone(),
            sha256: Some(hash),
            grants: new.grants,
            allowed_hosts: new.allowed_hosts,
            limits: new.limits,
            settings: new.settings,
        };
        let loaded = manifest
            .validate()
            .map_err(|reason| invalid("manifest", reason))
            .and_then(|()| crate::tasks::blocking(|| self.host.load(&manifest, &self.dir)).map_err(refused));
        let staged = |plugin| Staged { manifest, plugin, kept_before };
        loaded.map(staged).inspect_err(|_| {
            // Nothing of a refused component stays.
            if !kept_before {
                let _ = std::fs::remove_file(&path);
            }
        })
    }

    /// A new plugin, version 1, live for new calls.
    pub fn upload(&self, registry: &Registry, staged: Staged, actor: Option<&str>) -> Result<Uploaded, UploadError> {
        let id = staged.manifest.id.clone();
        if self.configured.contains(&id) || registry.get(&id).is_some() {
            staged.discard();
            return Err(UploadError::Conflict(format!(
                "plugin '{id}' exists: PUT /plugins/{id} uploads a new version"
            )));
        }
        let Staged { manifest, plugin, .. } = staged;
        let record = Uploaded { id: id.clone(), active: 1, versions: vec![Version::new(1, &plugin, manifest, actor)] };
        let data = PluginUpload { version: 1, sha256: plugin.hash.clone(), kind: plugin.world().into() };
        let event = NewEvent::new(format!("plugin/{id}"), EventData::PluginUploaded(data)).by(actor);
        self.store.put(Table::Plugins, &id, &record, event)?;
        registry.swap_in(plugin);
        Ok(record)
    }

    /// A new version of an uploaded plugin, of the same kind; calls running
    /// finish on the version they started with.
    pub fn upgrade(&self, registry: &Registry, staged: Staged, actor: Option<&str>) -> Result<Uploaded, UploadError> {
        let mut record = match self.owned(&staged.manifest.id) {
            Ok(record) => record,
            Err(e) => {
                staged.discard();
                return Err(e);
            }
        };
        let kind = record.versions.last().map(|v| v.manifest.kind);
        if kind.is_some_and(|k| k != staged.manifest.kind) {
            staged.discard();
            return Err(invalid("manifest.kind", "a new version keeps the plugin's kind"));
        }
        let Staged { manifest, plugin, .. } = staged;
        let number = record.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        record.versions.push(Version::new(number, &plugin, manifest, actor));
        record.active = number;
        let data = EventData::PluginUpgraded(PluginUpgrade { version: number, sha256: plugin.hash.clone() });
        let event = NewEvent::new(format!("plugin/{}", record.id), data).by(actor);
        self.store.put(Table::Plugins, &record.id, &record, event)?;
        registry.swap_in(plugin);
        Ok(record)
    }

    /// Makes an earlier version active again: `to`, or the one before the active one.
    pub fn rollback(
        &self,
        registry: &Registry,
        id: &str,
        to: Option<u32>,
        actor: Option<&str>,
    ) -> Result<Uploaded, UploadError> {
        let mut record = self.owned(id)?;
        let target =
            match to {
                Some(n) => n,
                None => {
                    record.versions.iter().map(|v| v.version).filter(|v| *v < record.active).max().ok_or_else(|| {
                        UploadError::Conflict(format!("'{id}' has no version before {}", record.active))
                    })?
                }
            };
        let version = record
            .versions
            .iter()
            .find(|v| v.version == target)
            .ok_or_else(|| invalid("version", format!("'{id}' has no version {target}")))?;
        let plugin = crate::tasks::blocking(|| self.host.load(&version.manifest, &self.dir)).map_err(refused)?;
        let data = EventData::PluginRolledBack(PluginRollback { from: record.active, to: target });
        record.active = target;
        let event = NewEvent::new(format!("plugin/{id}"), data).by(actor);
        self.store.put(Table::Plugins, id, &record, event)?;
        registry.swap_in(plugin);
        Ok(record)
    }

    /// Removes an uploaded plugin nothing uses.
    pub fn delete(&self, registry: &Registry, id: &str, actor: Option<&str>) -> Result<(), UploadError> {
        let record = self.owned(id)?;
        if let Some(user) = registry.used_by(id) {
            return Err(UploadError::Conflict(format!("plugin '{id}' is in {user}: take it out first")));
        }
        let event = NewEvent::new(format!("plugin/{id}"), EventData::PluginDeleted(NoDetail {})).by(actor);
        self.store.delete(Table::Plugins, id, event)?;
        registry.remove(id);
        // Components no other plugin keeps go too.
        let still_kept: Vec<String> =
            self.list()?.iter().flat_map(|u| u.versions.iter().map(|v| v.sha256.clone())).collect();
        for version in record.versions.iter().filter(|v| !still_kept.contains(&v.sha256)) {
            let _ = std::fs::remove_file(&version.manifest.path);
        }
        Ok(())
    }

    /// An uploaded plugin's record; a configured one is refused.
    fn owned(&self, id: &str) -> Result<Uploaded, UploadError> {
        if self.configured.iter().any(|c| c == id) {
            return Err(UploadError::Conflict(format!("plugin '{id}' is configured in the host config")));
        }
        self.get(id)
    }

    /// Sets the order rules of one kind run in, kept across restarts.
    pub fn set_order(
        &self,
        registry: &Registry,
        order: Order,
        ids: Vec<String>,
        actor: Option<&str>,
    ) -> Result<(), UploadError> {
        let field = order.field();
        let set = match order {
            Order::PolicyChain => registry.set_policy_chain(ids.clone(), field),
            Order::ApprovalRules => registry.set_approval_rules(ids.clone(), field),
        };
        set.map_err(|e| invalid(&e.field, e.reason))?;
        let data = EventData::PluginOrderSet(PluginOrder { order: field.into(), plugins: ids.clone() });
        let event = NewEvent::new(format!("plugins/{field}"), data).by(actor);
        Ok(self.store.put(Table::PluginOrder, field, &ids, event)?)
    }

    /// At start: every uploaded plugin's active version live again, then the
    /// orders set through the API over the config's.
    pub fn restore(&self, registry: &Registry) {
        self.restore_plugins(registry);
        for order in [Order::PolicyChain, Order::ApprovalRules] {
            let Ok(Some(ids)) = self.store.get::<Vec<String>>(Table::PluginOrder, order.field()) else { continue };
            let set = match order {
                Order::PolicyChain => registry.set_policy_chain(ids, order.field()),
                Order::ApprovalRules => registry.set_approval_rules(ids, order.field()),
            };
            if let Err(e) = set {
                tracing::error!("the stored {} is not used: {e}", order.field());
            }
        }
    }

    fn restore_plugins(&self, registry: &Registry) {
        for record in self.list().unwrap_or_default() {
            let Some(version) = record.versions.iter().find(|v| v.version == record.active) else { continue };
            match self.host.load(&version.manifest, &self.dir) {
                Ok(plugin) => {
                    registry.swap_in(plugin);
                }
                Err(e) => tracing::error!(plugin = %record.id, "uploaded plugin not restored: {e}"),
            }
        }
    }
}
