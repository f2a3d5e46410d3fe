//! A record written together with its history: the same transaction writes
//! the record and appends the new revision to a list kept under the same key
//! in a second table, so no revision is lost to a concurrent write. The
//! newest `KEEP_REVISIONS` are kept: a remote catalog synced for months
//! would otherwise grow each entry's list, rewritten whole on every write,
//! without end. Each revision names its number under `revision`, and
//! numbers go on from the newest kept.

use redb::ReadableTable;
use serde::Serialize;

use super::{append_event, NewEvent, Store, StoreError, Table};

/// Revisions kept of each record.
pub const KEEP_REVISIONS: usize = 100;

/// What must already be there for a write to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A new record: there must be none yet.
    New,
    /// A change: the record must exist.
    Existing,
    Any,
}

impl Store {
    /// Writes `value` under `key` and appends `revision(number)` to the list
    /// under `key` in `history`; the new revision's number (1 for the first).
    pub fn write_with_history<T: Serialize, R: Serialize>(
        &self,
        (table, history): (Table, Table),
        key: &str,
        value: &T,
        presence: Presence,
        revision: impl FnOnce(u32) -> R,
        event: NewEvent,
    ) -> Result<u32, StoreError> {
        let tx = self.begin_write()?;
        let number = {
            let mut records = tx.open_table(table.definition())?;
            let exists = records.get(key)?.is_some();
            match (presence, exists) {
                (Presence::New, true) => return Err(StoreError::Conflict(key.into())),
                (Presence::Existing, false) => return Err(StoreError::NotFound(key.into())),
                _ => {}
            }
            records.insert(key, serde_json::to_vec(value)?.as_slice())?;
            let mut lists = tx.open_table(history.definition())?;
            let mut list: Vec<serde_json::Value> = match lists.get(key)? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => Vec::new(),
            };
            let newest = list.last().and_then(|r| r.get("revision")).and_then(serde_json::Value::as_u64);
            let number = newest.map_or(list.len() as u32, |n| n as u32) + 1;
            list.push(serde_json::to_value(revision(number))?);
            let over = list.len().saturating_sub(KEEP_REVISIONS);
            list.drain(..over);
            lists.insert(key, serde_json::to_vec(&list)?.as_slice())?;
            number
        };
        let event = append_event(&tx, event)?;
        self.commit(tx, event, &[table, history])?;
        Ok(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::entry_added;

    #[test]
    fn the_newest_revisions_are_kept_and_numbers_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let tables = (Table::Catalog, Table::CatalogHistory);
        let extra = 5;
        for n in 1..=(KEEP_REVISIONS + extra) {
            let revision = |number| serde_json::json!({"revision": number, "n": n});
            let written = store.write_with_history(tables, "a", &n, Presence::Any, revision, entry_added("catalog/a"));
            assert_eq!(written.unwrap() as usize, n);
        }
        let kept: Vec<serde_json::Value> = store.get(Table::CatalogHistory, "a").unwrap().unwrap();
        assert_eq!(kept.len(), KEEP_REVISIONS);
        assert_eq!((kept[0]["revision"].as_u64(), kept.last().unwrap()["revision"].as_u64()), (Some(6), Some(105)));
    }
}
