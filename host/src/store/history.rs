//! A record written together with its history: the same transaction writes
//! the record and appends the new revision to a list kept under the same key
//! in a second table, so no revision is lost to a concurrent write.

use redb::ReadableTable;
use serde::Serialize;

use super::{append_event, NewEvent, Store, StoreError, Table};

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
            let number = list.len() as u32 + 1;
            list.push(serde_json::to_value(revision(number))?);
            lists.insert(key, serde_json::to_vec(&list)?.as_slice())?;
            number
        };
        let event = append_event(&tx, event)?;
        self.commit(tx, event, &[table, history])?;
        Ok(number)
    }
}
