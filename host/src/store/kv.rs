//! The key-value store private to each plugin (grant `key-value`).

use redb::ReadableDatabase;

use super::{Store, StoreError, PLUGIN_KV};

impl Store {
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PLUGIN_KV)?;
        let value = t.get((plugin, key))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    pub fn kv_set(&self, plugin: &str, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        {
            let mut t = tx.open_table(PLUGIN_KV)?;
            match value {
                Some(v) => {
                    t.insert((plugin, key), v)?;
                }
                None => {
                    t.remove((plugin, key))?;
                }
            }
        }
        crate::tasks::blocking(|| tx.commit())?;
        Ok(())
    }
}
