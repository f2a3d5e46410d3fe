//! `runtime.health`: how often the health watch compares every deployment
//! with what its backend reports (and checks the backends' availability).

use serde::Deserialize;
use std::time::Duration;

/// Outside these bounds a value is a typo: a watch that spins, or one that
/// would leave a crash unnoticed for hours.
const MIN_WATCH_INTERVAL_MS: u64 = 50;
const MAX_WATCH_INTERVAL_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Milliseconds between two passes of the health watch (5 s by default;
    /// tests shorten it so they need not wait it out).
    #[serde(default = "default_watch_interval_ms")]
    pub watch_interval_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { watch_interval_ms: default_watch_interval_ms() }
    }
}

fn default_watch_interval_ms() -> u64 {
    5000
}

impl HealthConfig {
    pub fn watch_interval(&self) -> Duration {
        Duration::from_millis(self.watch_interval_ms)
    }

    /// Why the setting cannot be used, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if (MIN_WATCH_INTERVAL_MS..=MAX_WATCH_INTERVAL_MS).contains(&self.watch_interval_ms) {
            Ok(())
        } else {
            Err(format!("between {MIN_WATCH_INTERVAL_MS} and {MAX_WATCH_INTERVAL_MS} (milliseconds)"))
        }
    }
}
