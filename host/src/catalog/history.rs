//! Every revision of a catalog entry. A create, a `PUT`, an import or a sync
//! adds one, in the same transaction as the write, so the past is never
//! rewritten: `GET /catalog/{slug}/versions` lists them and a deploy may name
//! one (`catalog_revision`).

use serde::{Deserialize, Serialize};

use super::CatalogEntry;
use crate::store::{NewEvent, Presence, Store, StoreError, Table};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u32,
    pub at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub entry: CatalogEntry,
}

/// Writes the entry as its next revision; that revision's number.
pub fn write(store: &Store, entry: &CatalogEntry, presence: Presence, event: NewEvent) -> Result<u32, StoreError> {
    let by = event.actor.clone();
    let revision = |revision| Revision { revision, at: chrono::Utc::now(), by, entry: entry.clone() };
    store.write_with_history((Table::Catalog, Table::CatalogHistory), &entry.slug, entry, presence, revision, event)
}

/// The entry's revisions, oldest first (none for an entry older than history).
pub fn revisions(store: &Store, slug: &str) -> Result<Vec<Revision>, StoreError> {
    Ok(store.get::<Vec<Revision>>(Table::CatalogHistory, slug)?.unwrap_or_default())
}
