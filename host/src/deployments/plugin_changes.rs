//! Plugins changed at runtime, through the API or the drop-in directory, and
//! what follows from it for backends: an uploaded backend plugin is offered
//! as the backend of its own id, asked its capabilities again after every
//! upgrade or rollback, and not deleted while a deployment runs on it.

use std::sync::Arc;

use super::Runtime;
use crate::deployment::Deployment;
use crate::plugins::{
    DroppedIn, NewPlugin, Order, Plugin, PluginKind, Registry, Staged, UploadError, Uploaded, Uploads, DROPIN_ACTOR,
};
use crate::store::Table;

impl Runtime {
    /// A new plugin, live for new calls; a backend plugin becomes a backend.
    pub async fn upload_plugin(
        &self,
        new: NewPlugin,
        component: &[u8],
        actor: Option<&str>,
    ) -> Result<Uploaded, UploadError> {
        if new.kind == PluginKind::RuntimeBackend && self.backends.plugin_id(&new.id).is_some() {
            return Err(UploadError::Conflict(format!("a backend named '{}' exists", new.id)));
        }
        self.put_plugin(new, component, actor, Uploads::upload).await
    }

    /// A new version of an uploaded plugin; calls running finish on theirs.
    pub async fn upgrade_plugin(
        &self,
        new: NewPlugin,
        component: &[u8],
        actor: Option<&str>,
    ) -> Result<Uploaded, UploadError> {
        self.put_plugin(new, component, actor, Uploads::upgrade).await
    }

    /// Stages the component, commits it as `commit` says, and rebinds its backend.
    async fn put_plugin(
        &self,
        new: NewPlugin,
        component: &[u8],
        actor: Option<&str>,
        commit: fn(&Uploads, &Registry, Staged, Option<&str>) -> Result<Uploaded, UploadError>,
    ) -> Result<Uploaded, UploadError> {
        let id = new.id.clone();
        let staged = self.stage_plugin(new, component).await?;
        let record = commit(&self.uploads, &self.plugins, staged, actor)?;
        self.rebind(&id).await;
        Ok(record)
    }

    pub async fn rollback_plugin(
        &self,
        id: &str,
        to: Option<u32>,
        actor: Option<&str>,
    ) -> Result<Uploaded, UploadError> {
        let record = self.uploads.rollback(&self.plugins, id, to, actor)?;
        self.rebind(id).await;
        Ok(record)
    }

    /// Removes an uploaded plugin that no chain and no deployment uses.
    pub async fn delete_plugin(&self, id: &str, actor: Option<&str>) -> Result<(), UploadError> {
        let backend = self.uploads.get(id).ok().and_then(|_| self.backends.bound_to(id));
        if let Some(backend) = &backend {
            let deployments: Vec<Deployment> = self.store.list(Table::Deployments)?;
            let using = deployments.iter().filter(|d| &d.backend == backend).count();
            if using > 0 {
                return Err(UploadError::Conflict(format!(
                    "backend '{backend}' has {using} deployment(s): delete them first"
                )));
            }
        }
        self.uploads.delete(&self.plugins, id, actor)?;
        if let Some(backend) = backend {
            self.backends.unbind(&backend);
            if let Err(e) = self.register_backends().await {
                tracing::warn!(%backend, "recording the backend's removal: {e}");
            }
        }
        Ok(())
    }

    /// Uploads or upgrades what the drop-in directory holds, as the API would.
    pub async fn put_dropped_in(&self, dropped: DroppedIn) {
        let outcome = match dropped.plugin {
            Err(e) => Err(e),
            Ok(new) if self.uploads.get(&new.id).is_ok() => {
                self.upgrade_plugin(new, &dropped.component, Some(DROPIN_ACTOR)).await
            }
            Ok(new) => self.upload_plugin(new, &dropped.component, Some(DROPIN_ACTOR)).await,
        };
        match outcome {
            Ok(_) => tracing::info!(manifest = %dropped.manifest.display(), "dropped-in plugin is live"),
            Err(e) => tracing::warn!(manifest = %dropped.manifest.display(), "dropped-in plugin refused: {e}"),
        }
    }

    /// Every uploaded backend plugin offered again, at start.
    pub(super) async fn bind_uploaded_backends(&self) {
        for record in self.uploads.list().unwrap_or_default() {
            self.rebind(&record.id).await;
        }
    }

    /// Checks and loads a component; a backend must also say what it can
    /// enforce, or it could not judge a single deploy.
    async fn stage_plugin(&self, new: NewPlugin, component: &[u8]) -> Result<Staged, UploadError> {
        let staged = self.uploads.stage(new, component)?;
        if staged.plugin().manifest.kind == PluginKind::RuntimeBackend {
            if let Err(e) = staged.plugin().capabilities().await {
                staged.discard();
                let reason = format!("asked for its capabilities: {e}");
                return Err(UploadError::Invalid { field: "component".into(), reason });
            }
        }
        Ok(staged)
    }

    /// Offers an uploaded backend plugin's live version as the backend of its id.
    async fn rebind(&self, id: &str) {
        let Some(plugin) = self.plugins.get(id) else { return };
        if plugin.manifest.kind != PluginKind::RuntimeBackend {
            return;
        }
        if let Err(e) = self.backends.bind(id, id).await {
            tracing::error!(backend = %id, "uploaded backend not offered: {e}");
            self.backends.unbind(id);
        }
        if let Err(e) = self.register_backends().await {
            tracing::warn!(backend = %id, "recording the backend: {e}");
        }
    }

    /// Every plugin loaded now, by id.
    pub fn loaded_plugins(&self) -> std::collections::BTreeMap<String, Arc<Plugin>> {
        self.plugins.all()
    }

    pub fn plugin(&self, id: &str) -> Option<Arc<Plugin>> {
        self.plugins.get(id)
    }

    /// The plugins uploaded through the API, with their versions.
    pub fn uploaded_plugins(&self) -> Result<Vec<Uploaded>, UploadError> {
        self.uploads.list()
    }

    pub fn uploaded_plugin(&self, id: &str) -> Result<Uploaded, UploadError> {
        self.uploads.get(id)
    }

    /// The guardrail policies after the default evaluator, in the order they run.
    pub fn policy_chain_ids(&self) -> Vec<String> {
        self.plugins.policy_chain_ids()
    }

    pub fn approval_rule_ids(&self) -> Vec<String> {
        self.plugins.approval_rule_ids()
    }

    /// Orders the policy chain or the approval rules; kept across restarts.
    pub fn set_plugin_order(&self, order: Order, ids: Vec<String>, actor: Option<&str>) -> Result<(), UploadError> {
        self.uploads.set_order(&self.plugins, order, ids, actor)
    }
}
