//! Always granted: the plugin's own settings block and the id it was given.

use super::CallState;
use crate::contract::config::Host;

impl Host for CallState {
    async fn settings(&mut self) -> String {
        self.ctx.settings.clone()
    }

    async fn plugin_id(&mut self) -> String {
        self.ctx.id.clone()
    }
}
