//! Always granted: the plugin's own settings block.

use super::CallState;
use crate::contract::config::Host;

impl Host for CallState {
    async fn settings(&mut self) -> String {
        self.ctx.settings.clone()
    }
}
