//! The catalog as a service: the one place entries are written. Every write
//! checks the entry in full (its profile must exist), names its actor and
//! records its event with a new revision, whether it comes from the API, the
//! admin UI or an import; the API and the UI only map input and errors.

use std::sync::Arc;

use super::{history, CatalogEntry, CatalogError, CatalogFilter, ServerSource};
use crate::events::{CatalogChange, Deprecation, EntrySnapshot, EventData, NoDetail};
use crate::guardrails::Profile;
use crate::packages::{BillOfMaterials, Indexes, Lock, PackageError};
use crate::store::{NewEvent, Presence, Store, StoreError, Table};

#[derive(Debug, thiserror::Error)]
pub enum CatalogServiceError {
    #[error(transparent)]
    Invalid(#[from] CatalogError),
    /// `catalog.allow_custom_entries` is off: only the seed and imports add entries.
    #[error("custom catalog entries are disabled (catalog.allow_custom_entries)")]
    CustomEntriesDisabled,
    #[error("catalog entry '{0}' not found")]
    NotFound(String),
    /// The slug is taken (create), or names nothing (replace, delete).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A package entry's package, as its index answered (or failed to).
    #[error(transparent)]
    Package(#[from] PackageError),
}

pub struct Catalog {
    store: Arc<Store>,
    allow_custom_entries: bool,
    /// Where package entries' versions are resolved.
    indexes: Indexes,
}

impl Catalog {
    pub fn new(store: Arc<Store>, allow_custom_entries: bool, indexes: Indexes) -> Catalog {
        Catalog { store, allow_custom_entries, indexes }
    }

    /// A package entry as it is written: its version resolved to an exact
    /// one that exists and was not yanked (what was asked kept in
    /// `requested_version`), its executable chosen. Other entries as they are.
    pub async fn resolve(&self, mut entry: CatalogEntry) -> Result<CatalogEntry, CatalogServiceError> {
        let Some(package) = entry.source.package() else { return Ok(entry) };
        let resolved = self.indexes.resolve(&package).await?;
        let exact = package.is_exact();
        if let ServerSource::Package { version, requested_version, bin, .. } = &mut entry.source {
            if !exact {
                *requested_version = Some(std::mem::take(version));
            }
            *version = resolved.version;
            *bin = Some(resolved.bin);
        }
        Ok(entry)
    }

    /// Whether the catalog is to be seeded: true once, at the first start.
    pub fn seeding(&self) -> Result<bool, CatalogServiceError> {
        Ok(self.store.first_time("catalog_seeded")?)
    }

    /// An entry of the sample or configured catalog, checked in full.
    pub fn seed(&self, entry: &CatalogEntry) -> Result<(), CatalogServiceError> {
        self.check(entry)?;
        let event = NewEvent::new(format!("catalog/{}", entry.slug), EventData::CatalogSeeded(NoDetail {}));
        history::write(&self.store, entry, Presence::Any, event)?;
        Ok(())
    }

    /// Every entry, deprecated ones included.
    pub fn all(&self) -> Result<Vec<CatalogEntry>, CatalogServiceError> {
        Ok(self.store.list(Table::Catalog)?)
    }

    /// The entries that match every filter given.
    pub fn list(&self, filter: &CatalogFilter) -> Result<Vec<CatalogEntry>, CatalogServiceError> {
        Ok(self.all()?.into_iter().filter(|e| e.matches(filter)).collect())
    }

    pub fn find(&self, slug: &str) -> Result<Option<CatalogEntry>, CatalogServiceError> {
        Ok(self.store.get(Table::Catalog, slug)?)
    }

    /// The entry, or `NotFound` naming it.
    pub fn get(&self, slug: &str) -> Result<CatalogEntry, CatalogServiceError> {
        self.find(slug)?.ok_or_else(|| CatalogServiceError::NotFound(slug.into()))
    }

    /// The locks a package entry's version was built from, one per base
    /// image (none before its first build, or for another source).
    pub fn bills_of_materials(&self, entry: &CatalogEntry) -> Result<Vec<BillOfMaterials>, CatalogServiceError> {
        let Some(package) = entry.source.package() else { return Ok(Vec::new()) };
        let prefix = crate::packages::lock::key_prefix(&package);
        let locks: Vec<(String, Lock)> = self.store.list_keyed(Table::PackageLocks)?;
        Ok(locks.into_iter().filter(|(key, _)| key.starts_with(&prefix)).map(|(_, lock)| lock.into()).collect())
    }

    /// The bill of materials of the lock named by `digest`, if one is kept.
    pub fn bill_of_materials(&self, digest: &str) -> Result<Option<BillOfMaterials>, CatalogServiceError> {
        let locks: Vec<Lock> = self.store.list(Table::PackageLocks)?;
        Ok(locks.into_iter().find(|lock| lock.digest == digest).map(BillOfMaterials::from))
    }

    /// Every revision of the entry, oldest first; `NotFound` when it never existed.
    pub fn revisions(&self, slug: &str) -> Result<Vec<history::Revision>, CatalogServiceError> {
        let revisions = history::revisions(&self.store, slug)?;
        if revisions.is_empty() && self.find(slug)?.is_none() {
            return Err(CatalogServiceError::NotFound(slug.into()));
        }
        Ok(revisions)
    }

    /// The entry checked as a write would check it (its profile must exist).
    pub fn check(&self, entry: &CatalogEntry) -> Result<(), CatalogServiceError> {
        // A read of the profiles' table: an entry naming a profile that does not exist is refused.
        let known_profile = |p: &str| matches!(self.store.get::<Profile>(Table::Guardrails, p), Ok(Some(_)));
        Ok(entry.validate(known_profile)?)
    }

    /// Adds an entry a person wrote (not an import: see `write_imported`);
    /// the entry as written (a package's version resolved).
    pub async fn create(&self, entry: CatalogEntry, actor: &str) -> Result<CatalogEntry, CatalogServiceError> {
        if !self.allow_custom_entries {
            return Err(CatalogServiceError::CustomEntriesDisabled);
        }
        self.check(&entry)?;
        let entry = self.resolve(entry).await?;
        self.write(&entry, Presence::New, actor)?;
        Ok(entry)
    }

    /// Replaces an entry with a new revision; the entry as written.
    pub async fn replace(&self, entry: CatalogEntry, actor: &str) -> Result<CatalogEntry, CatalogServiceError> {
        self.check(&entry)?;
        let entry = self.resolve(entry).await?;
        self.write(&entry, Presence::Existing, actor)?;
        Ok(entry)
    }

    /// Removes an entry; its deployments go on.
    pub fn delete(&self, slug: &str, actor: &str) -> Result<(), CatalogServiceError> {
        let event = NewEvent::new(format!("catalog/{slug}"), EventData::CatalogDeleted(NoDetail {}));
        Ok(self.store.delete(Table::Catalog, slug, event.by(Some(actor)))?)
    }

    /// Writes an imported entry, new or as the next revision of the stored
    /// one (imports are not custom entries: `allow_custom_entries` does not
    /// apply). The importer has `check`ed the upstream entry, skipping it when
    /// refused, and merged it with what is stored.
    pub fn write_imported(&self, entry: &CatalogEntry, added: bool, actor: &str) -> Result<(), CatalogServiceError> {
        match added {
            true => self.write(entry, Presence::New, actor),
            false => self.write(entry, Presence::Existing, actor),
        }
    }

    /// Marks an entry deprecated (hidden from lists, still deployable by slug), saying why.
    pub fn deprecate(&self, mut entry: CatalogEntry, reason: String, actor: &str) -> Result<(), CatalogServiceError> {
        entry.deprecated = true;
        let data = EventData::CatalogUpdated(CatalogChange::Deprecated(Deprecation { deprecated: true, reason }));
        let event = NewEvent::new(format!("catalog/{}", entry.slug), data).by(Some(actor));
        history::write(&self.store, &entry, Presence::Existing, event)?;
        Ok(())
    }

    fn write(&self, entry: &CatalogEntry, presence: Presence, actor: &str) -> Result<(), CatalogServiceError> {
        let written = EntrySnapshot(serde_json::json!(entry));
        let data = match presence {
            Presence::New => EventData::CatalogCreated(written),
            _ => EventData::CatalogUpdated(CatalogChange::Written(written)),
        };
        let event = NewEvent::new(format!("catalog/{}", entry.slug), data).by(Some(actor));
        history::write(&self.store, entry, presence, event)?;
        Ok(())
    }
}
