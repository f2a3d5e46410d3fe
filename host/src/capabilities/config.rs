//! Always granted: the plugin's own settings block.

use crate::plugins::bindings::config::Host;
use crate::plugins::PluginState;

impl Host for PluginState {
    async fn settings(&mut self) -> String {
        self.ctx.settings.clone()
    }
}
