//! `runtime.health`: how often the health watch compares every deployment
//! with what its backend reports (and checks the backends' availability),
//! and how often each running deployment's usage is sampled.

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
    /// Milliseconds between two samples of every running deployment's CPU,
    /// memory and network (10 s by default): what reads of a deployment and
    /// `/metrics` show, so they never wait on an engine.
    #[serde(default = "default_usage_interval_ms")]
    pub usage_interval_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { watch_interval_ms: default_watch_interval_ms(), usage_interval_ms: default_usage_interval_ms() }
    }
}

fn default_watch_interval_ms() -> u64 {
    5000
}

fn default_usage_interval_ms() -> u64 {
    10_000
}

impl HealthConfig {
    pub fn watch_interval(&self) -> Duration {
        Duration::from_millis(self.watch_interval_ms)
    }

    pub fn usage_interval(&self) -> Duration {
        Duration::from_millis(self.usage_interval_ms)
    }

    /// The field that cannot be used and why, if one cannot.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let within = MIN_WATCH_INTERVAL_MS..=MAX_WATCH_INTERVAL_MS;
        let why = format!("between {MIN_WATCH_INTERVAL_MS} and {MAX_WATCH_INTERVAL_MS} (milliseconds)");
        if !within.contains(&self.watch_interval_ms) {
            return Err(("runtime.health.watch_interval_ms", why));
        }
        if !within.contains(&self.usage_interval_ms) {
            return Err(("runtime.health.usage_interval_ms", why));
        }
        Ok(())
    }
}
