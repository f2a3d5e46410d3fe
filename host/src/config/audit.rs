//! `runtime.audit`: how much of the audit trail is kept.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Events kept: beyond, the oldest go (a few hundred at a time), so weeks of uptime
    /// leave a store of bounded size.
    #[serde(default = "default_keep_events")]
    pub keep_events: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { keep_events: default_keep_events() }
    }
}

fn default_keep_events() -> u64 {
    crate::store::DEFAULT_KEEP_EVENTS
}
