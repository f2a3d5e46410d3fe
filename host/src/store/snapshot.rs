//! A consistent copy of the whole store, made from one read transaction
//! while the host goes on writing (`GET /backup`). The copy is a store file
//! of its own: a restore opens it like any other.

use redb::{
    Database, MultimapTableHandle, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    WriteTransaction,
};
use std::path::Path;

use super::{audit, Store, StoreError, Table, META, PLUGIN_KV};

impl Store {
    /// Writes every table, as one read transaction sees it, to a new store
    /// file at `path`; refuses when the store holds a table it does not
    /// know how to copy, rather than leave it out.
    pub fn snapshot_to(&self, path: &Path) -> Result<(), StoreError> {
        let from = self.db.begin_read()?;
        let copy = Database::create(path)?;
        let to = copy.begin_write()?;
        let mut copied = vec![copy_table(&from, &to, META)?, copy_table(&from, &to, PLUGIN_KV)?];
        for table in Table::ALL {
            copied.push(copy_table(&from, &to, table.definition())?);
        }
        copied.push(copy_table(&from, &to, audit::EVENTS)?);
        copied.push(copy_table(&from, &to, audit::DEPLOYMENT_EVENTS)?);
        copied.push(copy_table(&from, &to, audit::KIND_EVENTS)?);
        let tables = from.list_tables()?.map(|t| t.name().to_string());
        let multimaps = from.list_multimap_tables()?.map(|t| t.name().to_string());
        if let Some(missed) = tables.chain(multimaps).find(|name| !copied.contains(name)) {
            return Err(StoreError::Db(format!("the snapshot does not know how to copy table '{missed}'")));
        }
        crate::tasks::blocking(|| to.commit())?;
        Ok(())
    }
}

/// Copies one table's rows as they are; its name.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    definition: TableDefinition<K, V>,
) -> Result<String, StoreError> {
    let source = from.open_table(definition)?;
    let mut target = to.open_table(definition)?;
    for row in source.iter()? {
        let (key, value) = row?;
        target.insert(key.value(), value.value())?;
    }
    Ok(definition.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventData, NewEvent};

    #[test]
    fn a_snapshot_holds_every_record_and_event_and_opens_as_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        let event = || NewEvent::new("catalog/a".into(), EventData::CatalogDeleted(Default::default()));
        store.create(Table::Catalog, "a", &serde_json::json!({"slug": "a"}), event()).unwrap();
        store.kv_set("rule", "k", Some(b"v")).unwrap();
        store.snapshot_to(&dir.path().join("copy.redb")).unwrap();
        // Written after the snapshot: not in it.
        store.create(Table::Catalog, "b", &serde_json::json!({"slug": "b"}), event()).unwrap();

        let copy = Store::open(&dir.path().join("copy.redb")).unwrap();
        let slugs: Vec<serde_json::Value> = copy.list(Table::Catalog).unwrap();
        assert_eq!(slugs, vec![serde_json::json!({"slug": "a"})]);
        assert_eq!(copy.kv_get("rule", "k").unwrap().as_deref(), Some(&b"v"[..]));
        let events = copy.events(&Default::default()).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
    }
}
