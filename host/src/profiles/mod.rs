//! Guardrail profiles as a service: the one place profiles are written.
//! Every write validates the profile in full, names its actor and records its
//! event; a profile is never deleted while a catalog entry uses it or while it
//! is the default. The API and the admin UI only map input and errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::CatalogEntry;
use crate::events::{EventData, NoDetail, ProfileSnapshot};
use crate::guardrails::{GuardrailError, Profile};
use crate::store::{NewEvent, Store, StoreError, Table};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Invalid(#[from] GuardrailError),
    #[error("guardrails profile '{0}' not found")]
    NotFound(String),
    /// Catalog entries use it, or it is the default.
    #[error("{0}")]
    InUse(String),
    /// The name is taken (create), or names nothing (replace, delete).
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Profiles {
    store: Arc<Store>,
    /// `guardrails.default_profile`: never deleted.
    default_profile: String,
}

impl Profiles {
    pub fn new(store: Arc<Store>, default_profile: String) -> Profiles {
        Profiles { store, default_profile }
    }

    /// At the first start only: the presets, and the profiles the config
    /// defines (over a preset of the same name).
    pub fn seed(&self, configured: &BTreeMap<String, Profile>) -> Result<(), ProfileError> {
        if !self.store.first_time("guardrails_seeded")? {
            return Ok(());
        }
        let mut profiles = crate::guardrails::presets();
        for (name, profile) in configured {
            profiles.insert(name.clone(), Profile { name: name.clone(), ..profile.clone() });
        }
        for (name, profile) in profiles {
            let event = NewEvent::new(format!("guardrails/{name}"), EventData::GuardrailsSeeded(NoDetail {}));
            self.store.put(Table::Guardrails, &name, &profile, event)?;
        }
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<Profile>, ProfileError> {
        Ok(self.store.list(Table::Guardrails)?)
    }

    pub fn find(&self, name: &str) -> Result<Option<Profile>, ProfileError> {
        Ok(self.store.get(Table::Guardrails, name)?)
    }

    /// The profile, or `NotFound` naming it.
    pub fn get(&self, name: &str) -> Result<Profile, ProfileError> {
        self.find(name)?.ok_or_else(|| ProfileError::NotFound(name.into()))
    }

    pub fn create(&self, profile: &Profile, actor: &str) -> Result<(), ProfileError> {
        profile.validate()?;
        let event = Self::event(&profile.name, EventData::GuardrailsCreated(snapshot(profile)), actor);
        Ok(self.store.create(Table::Guardrails, &profile.name, profile, event)?)
    }

    /// Replaces profile `name`; the profile may leave its name out, and
    /// otherwise must carry that name. The profile as stored.
    pub fn replace(&self, name: &str, mut profile: Profile, actor: &str) -> Result<Profile, ProfileError> {
        if profile.name.is_empty() {
            profile.name = name.to_string();
        }
        if profile.name != name {
            let reason = format!("must match the path ('{name}')");
            return Err(GuardrailError::Invalid { field: "name".into(), reason }.into());
        }
        profile.validate()?;
        let event = Self::event(name, EventData::GuardrailsUpdated(snapshot(&profile)), actor);
        self.store.replace(Table::Guardrails, name, &profile, event)?;
        Ok(profile)
    }

    /// Deletes a profile no catalog entry uses and that is not the default.
    pub fn delete(&self, name: &str, actor: &str) -> Result<(), ProfileError> {
        // A read of the catalog's table: a profile an entry names is kept.
        let users: Vec<String> = self
            .store
            .list::<CatalogEntry>(Table::Catalog)?
            .into_iter()
            .filter(|e| e.guardrails_profile == name)
            .map(|e| e.slug)
            .collect();
        if !users.is_empty() {
            return Err(ProfileError::InUse(format!("profile '{name}' is used by catalog entries {users:?}")));
        }
        if name == self.default_profile {
            return Err(ProfileError::InUse(format!("profile '{name}' is the default profile")));
        }
        let event = Self::event(name, EventData::GuardrailsDeleted(NoDetail {}), actor);
        Ok(self.store.delete(Table::Guardrails, name, event)?)
    }

    fn event(name: &str, data: EventData, actor: &str) -> NewEvent {
        NewEvent::new(format!("guardrails/{name}"), data).by(Some(actor))
    }
}

fn snapshot(profile: &Profile) -> ProfileSnapshot {
    ProfileSnapshot(serde_json::json!(profile))
}
