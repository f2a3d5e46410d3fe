//! The embedded redb store. Records are JSON values in string-keyed tables;
//! every change is one write transaction that also appends its event to the
//! audit trail, so state and history never disagree.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use audit::append_event;
use serde::{de::DeserializeOwned, Serialize};

use crate::events::EventBus;
pub use crate::events::{Event, EventFilter, NewEvent};
use std::path::Path;

mod audit;
mod error;
mod history;
pub mod integrity;
mod kv;
pub mod migrations;
mod snapshot;
pub mod space;
mod table;

pub use error::StoreError;
pub use history::Presence;
pub use table::Table;

pub use migrations::Migration;

/// The store's file in the data directory.
pub const FILE_NAME: &str = "runtime.redb";

/// Events the audit trail keeps unless configured (`runtime.audit.keep_events`).
pub const DEFAULT_KEEP_EVENTS: u64 = 500_000;

/// The layout of the records this build writes; older stores are migrated on open.
pub const SCHEMA_VERSION: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PLUGIN_KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("plugin_kv");

pub struct Store {
    db: Database,
    bus: EventBus,
    /// Commits that changed each table (by `Table::ALL`'s order), counted
    /// after they are durable: a reader that keeps what it read of a table
    /// knows it is current while the count is unchanged.
    changes: [std::sync::atomic::AtomicU64; Table::ALL.len()],
    /// The free space writes leave in the store's directory.
    reserve: space::Reserve,
    /// Events the audit trail keeps; the oldest beyond go.
    keep_events: u64,
}

impl Store {
    /// Opens the store at `path`, made when there is no file; a damaged
    /// file is refused by name (`integrity`), never replaced.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let damaged = |why: String| StoreError::Damaged { path: path.display().to_string(), why };
        let opened = match std::fs::metadata(path) {
            Ok(file) if file.len() == 0 => return Err(damaged("the file is empty".into())),
            Ok(_) if integrity::in_use(path) => return Err(StoreError::InUse { path: path.display().to_string() }),
            Ok(_) => match integrity::damage_before_open(path) {
                Some(why) => return Err(damaged(why)),
                None => Database::open(path),
            },
            Err(_) => Database::create(path),
        };
        let db = opened.map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.display().to_string() },
            e => integrity::damage_of(&e).map(damaged).unwrap_or_else(|| e.into()),
        })?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
                }
                Some(_) | None => {}
            }
            for table in Table::ALL {
                tx.open_table(table.definition())?;
            }
            if let Some(found) = found.filter(|f| *f < SCHEMA_VERSION) {
                for step in migrations::MIGRATIONS.iter().filter(|m| m.to > found) {
                    migrate(&tx, step)?;
                }
                tracing::info!(from = found, to = SCHEMA_VERSION, "store migrated");
            }
            meta.insert("schema_version", SCHEMA_VERSION)?;
            tx.open_table(PLUGIN_KV)?;
            audit::open(&tx)?;
        }
        tx.commit()?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let reserve = space::Reserve::new(dir, space::DEFAULT_RESERVE_BYTES);
        let keep_events = DEFAULT_KEEP_EVENTS;
        Ok(Store { db, bus: EventBus::default(), changes: Default::default(), reserve, keep_events })
    }

    /// The same store, leaving `bytes` free in its directory (`space`).
    pub fn with_reserve(mut self, bytes: u64) -> Store {
        let dir = self.reserve.dir().to_path_buf();
        self.reserve = space::Reserve::new(&dir, bytes);
        self
    }

    /// The same store, its audit trail keeping the newest `events` (at least one batch).
    pub fn with_event_limit(mut self, events: u64) -> Store {
        self.keep_events = events.max(audit::PRUNE_EVERY);
        self
    }

    /// Whether a write would be taken now, and if not why (`GET /health`).
    pub fn writable(&self) -> Result<(), StoreError> {
        self.reserve.check()
    }

    /// Every write begins here: none starts on a disk without room for it.
    fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        self.reserve.check()?;
        Ok(self.db.begin_write()?)
    }

    /// Every event committed from now on.
    pub fn subscribe(&self) -> crate::events::Subscription {
        self.bus.subscribe()
    }

    /// Commits, counts the change of each of `changed`, then publishes what
    /// the transaction recorded: subscribers never see a change that did not happen.
    fn commit(&self, tx: redb::WriteTransaction, event: Event, changed: &[Table]) -> Result<(), StoreError> {
        self.prune_if_due(&tx, event.seq)?;
        crate::tasks::blocking(|| tx.commit())?;
        self.count_changes(changed);
        self.bus.publish(event);
        Ok(())
    }

    /// Bounds the audit trail, once every `PRUNE_EVERY` events.
    fn prune_if_due(&self, tx: &redb::WriteTransaction, seq: u64) -> Result<(), StoreError> {
        if seq.is_multiple_of(audit::PRUNE_EVERY) {
            audit::prune(tx, seq, self.keep_events)?;
        }
        Ok(())
    }

    fn count_changes(&self, tables: &[Table]) {
        for table in tables {
            self.changes[table.index()].fetch_add(1, std::sync::atomic::Ordering::Release);
        }
    }

    /// How many commits have changed `table` since the store was opened.
    /// Read it before reading the table: what was read is current as long
    /// as the count stays what it was.
    pub fn changes(&self, table: Table) -> u64 {
        self.changes[table.index()].load(std::sync::atomic::Ordering::Acquire)
    }

    /// True the first time it is asked for `flag`, false ever after: first-start work runs once.
    pub fn first_time(&self, flag: &str) -> Result<bool, StoreError> {
        let tx = self.begin_write()?;
        let first = {
            let mut meta = tx.open_table(META)?;
            let key = format!("done:{flag}");
            let first = meta.get(key.as_str())?.is_none();
            if first {
                meta.insert(key.as_str(), 1)?;
            }
            first
        };
        crate::tasks::blocking(|| tx.commit())?;
        Ok(first)
    }

    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table.definition())?;
        let value = t.get(key)?;
        Ok(value.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    pub fn list<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table.definition())?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Every record of a table with its key.
    pub fn list_keyed<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table.definition())?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), serde_json::from_slice(v.value())?));
        }
        Ok(out)
    }

    /// Inserts a record that must not exist yet.
    pub fn create<T: Serialize>(&self, table: Table, key: &str, value: &T, event: NewEvent) -> Result<(), StoreError> {
        self.write(table, key, event, |old| match old {
            Some(_) => Err(StoreError::Conflict(key.into())),
            None => Ok(Some(serde_json::to_vec(value)?)),
        })
    }

    /// Inserts two new records (and one event) in one transaction.
    pub fn create_pair<A: Serialize, B: Serialize>(
        &self,
        (ta, ka, a): (Table, &str, &A),
        (tb, kb, b): (Table, &str, &B),
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        {
            for (table, key, value) in [(ta, ka, serde_json::to_vec(a)?), (tb, kb, serde_json::to_vec(b)?)] {
                let mut t = tx.open_table(table.definition())?;
                if t.get(key)?.is_some() {
                    return Err(StoreError::Conflict(key.into()));
                }
                t.insert(key, value.as_slice())?;
            }
        }
        let event = append_event(&tx, event)?;
        self.commit(tx, event, &[ta, tb])
    }

    /// Replaces a record that must exist.
    pub fn replace<T: Serialize>(&self, table: Table, key: &str, value: &T, event: NewEvent) -> Result<(), StoreError> {
        self.write(table, key, event, |old| match old {
            None => Err(StoreError::NotFound(key.into())),
            Some(_) => Ok(Some(serde_json::to_vec(value)?)),
        })
    }

    /// Inserts or replaces a record.
    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T, event: NewEvent) -> Result<(), StoreError> {
        self.write(table, key, event, |_| Ok(Some(serde_json::to_vec(value)?)))
    }

    pub fn delete(&self, table: Table, key: &str, event: NewEvent) -> Result<(), StoreError> {
        self.write(table, key, event, |old| match old {
            None => Err(StoreError::NotFound(key.into())),
            Some(_) => Ok(None),
        })
    }

    /// Read-modify-write of one record in one transaction. `change` returns the
    /// event to record, or `None` to leave everything as it was.
    pub fn update<T, F>(&self, table: Table, key: &str, change: F) -> Result<T, StoreError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&mut T) -> Option<NewEvent>,
    {
        let tx = self.begin_write()?;
        let updated = {
            let mut t = tx.open_table(table.definition())?;
            let mut record: T = match t.get(key)? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => return Err(StoreError::NotFound(key.into())),
            };
            let Some(event) = change(&mut record) else {
                return Ok(record);
            };
            t.insert(key, serde_json::to_vec(&record)?.as_slice())?;
            (record, event)
        };
        let (record, event) = updated;
        let event = append_event(&tx, event)?;
        self.commit(tx, event, &[table])?;
        Ok(record)
    }

    fn write<F>(&self, table: Table, key: &str, event: NewEvent, decide: F) -> Result<(), StoreError>
    where
        F: FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError>,
    {
        let tx = self.begin_write()?;
        {
            let mut t = tx.open_table(table.definition())?;
            let old = t.get(key)?.map(|v| v.value().to_vec());
            match decide(old.as_deref())? {
                Some(new) => {
                    t.insert(key, new.as_slice())?;
                }
                None => {
                    t.remove(key)?;
                }
            }
        }
        let event = append_event(&tx, event)?;
        self.commit(tx, event, &[table])
    }

    /// Records an event that changes no record (e.g. a refused request).
    pub fn record(&self, event: NewEvent) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        let event = append_event(&tx, event)?;
        self.commit(tx, event, &[])
    }

    /// Many changes in one transaction: a history written at once (the
    /// bench's store at scale) costs one commit, not one per change. Each
    /// record is inserted or, as `None`, removed; the events are appended
    /// after them and published once committed.
    pub fn write_all(
        &self,
        records: Vec<(Table, String, Option<Vec<u8>>)>,
        events: Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        let mut changed = Vec::new();
        for (table, key, value) in records {
            let mut t = tx.open_table(table.definition())?;
            match value {
                Some(value) => t.insert(key.as_str(), value.as_slice()).map(drop)?,
                None => t.remove(key.as_str()).map(drop)?,
            }
            if !changed.contains(&table) {
                changed.push(table);
            }
        }
        let appended = events.into_iter().map(|e| append_event(&tx, e)).collect::<Result<Vec<_>, _>>()?;
        if let Some(last) = appended.last() {
            audit::prune(&tx, last.seq, self.keep_events)?;
        }
        crate::tasks::blocking(|| tx.commit())?;
        self.count_changes(&changed);
        for event in appended {
            self.bus.publish(event);
        }
        Ok(())
    }
}

/// Rewrites every record of one table; a record a step cannot read stops the
/// start (nothing is committed) rather than being dropped.
fn migrate(tx: &redb::WriteTransaction, step: &Migration) -> Result<(), StoreError> {
    let mut t = tx.open_table(step.table.definition())?;
    let mut rewritten = Vec::new();
    for row in t.iter()? {
        let (key, value) = row?;
        let record: serde_json::Value = serde_json::from_slice(value.value())?;
        let new = (step.rewrite)(record).map_err(|e| StoreError::Migration {
            to: step.to,
            key: key.value().into(),
            reason: e,
        })?;
        rewritten.push((key.value().to_string(), serde_json::to_vec(&new)?));
    }
    for (key, value) in rewritten {
        t.insert(key.as_str(), value.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EntrySnapshot, EventData, EventKind, NoDetail};
    use serde_json::json;

    pub(super) fn entry_added(subject: &str) -> NewEvent {
        NewEvent::new(subject.into(), EventData::CatalogCreated(EntrySnapshot(json!({}))))
    }

    #[test]
    fn changes_and_events_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            store.create(Table::Catalog, "a", &json!({"n": 1}), entry_added("catalog/a")).unwrap();
            let dup = store.create(Table::Catalog, "a", &json!({"n": 2}), entry_added("catalog/a"));
            assert!(matches!(dup, Err(StoreError::Conflict(_))));
            store.kv_set("p", "k", Some(b"v")).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get::<serde_json::Value>(Table::Catalog, "a").unwrap(), Some(json!({"n": 1})));
        assert_eq!(store.kv_get("p", "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(store.kv_get("other", "k").unwrap(), None);
        let events = store.events(&EventFilter::default()).unwrap();
        assert_eq!(events.len(), 1, "a refused write records no event");
        assert_eq!(events[0].kind(), EventKind::CatalogCreated);
    }

    #[test]
    fn each_committed_change_of_a_table_is_counted_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let before = (store.changes(Table::Catalog), store.changes(Table::Deployments));
        store.create(Table::Catalog, "a", &json!({}), entry_added("catalog/a")).unwrap();
        assert!(store.create(Table::Catalog, "a", &json!({}), entry_added("catalog/a")).is_err());
        store.record(entry_added("catalog/b")).unwrap();
        let unchanged = store.update(Table::Catalog, "a", |_: &mut serde_json::Value| None);
        assert!(unchanged.is_ok());
        assert_eq!(store.changes(Table::Catalog), before.0 + 1, "one commit changed it; refusals and events did not");
        assert_eq!(store.changes(Table::Deployments), before.1);
    }

    #[test]
    fn a_batch_writes_and_removes_records_and_appends_its_events_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        store.create(Table::Catalog, "old", &json!({}), entry_added("catalog/old")).unwrap();
        let mut published = store.subscribe();
        let bytes = serde_json::to_vec(&json!({"n": 1})).unwrap();
        let records = vec![(Table::Catalog, "new".to_string(), Some(bytes)), (Table::Catalog, "old".into(), None)];
        let events =
            vec![NewEvent::for_deployment("d1", EventData::ComponentStopped(NoDetail {})), entry_added("catalog/new")];
        store.write_all(records, events).unwrap();
        assert_eq!(store.get::<serde_json::Value>(Table::Catalog, "new").unwrap(), Some(json!({"n": 1})));
        assert_eq!(store.get::<serde_json::Value>(Table::Catalog, "old").unwrap(), None);
        let of_d1 = store.events(&EventFilter { deployment: Some("d1".into()), ..Default::default() }).unwrap();
        assert_eq!((of_d1.len(), of_d1[0].seq), (1, 2), "appended after the first, and indexed by deployment");
        assert_eq!(published.try_recv().unwrap().seq, 2, "published once committed, in order");
        assert_eq!(published.try_recv().unwrap().seq, 3);
    }

    #[test]
    fn an_older_store_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let v1 = json!({"id": "d1", "request": {"deployment_id": "d1", "env": [["K", "v"]], "resources": {},
                        "entry": {"source": {"Image": {"image": "echo:1", "registry_secret": null}}}}});
        {
            let store = Store::open(&path).unwrap();
            let tx = store.db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert("schema_version", 1).unwrap();
            let bytes = serde_json::to_vec(&v1).unwrap();
            tx.open_table(Table::Deployments.definition()).unwrap().insert("d1", bytes.as_slice()).unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let migrated: serde_json::Value = store.get(Table::Deployments, "d1").unwrap().unwrap();
        assert_eq!(migrated["request"]["entry"]["source"], json!({"type": "docker", "image": "echo:1"}));
        assert_eq!(migrated["request"]["env"], json!({"K": "v"}));
        let tx = store.db.begin_read().unwrap();
        let version = tx.open_table(META).unwrap().get("schema_version").unwrap().unwrap().value();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
