//! Grant `key-value`: a store private to each plugin, in the host's redb.
//! Keys are scoped by plugin id, so one plugin never sees another's values.

use super::CallState;
use crate::contract::key_value::Host;

const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 1 << 20;

impl Host for CallState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.ctx.store.kv_get(&self.ctx.id, &key).ok().flatten()
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        if key.len() > MAX_KEY || value.len() > MAX_VALUE {
            return Err(format!("keys are at most {MAX_KEY} bytes and values at most {MAX_VALUE} bytes"));
        }
        self.ctx.store.kv_set(&self.ctx.id, &key, Some(&value)).map_err(|e| e.to_string())
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        self.ctx.store.kv_set(&self.ctx.id, &key, None).map_err(|e| e.to_string())
    }
}
