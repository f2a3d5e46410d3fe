//! Grant `logging`: plugin log lines go to the host's tracing output, tagged
//! with the plugin id.

use super::CallState;
use crate::contract::logging::{Host, Level};

/// Longer lines are cut: a plugin must not flood the host's log.
const MAX_LINE: usize = 4096;

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        let plugin = self.ctx.id.as_str();
        let message = message.get(..MAX_LINE).unwrap_or(&message);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }
}
