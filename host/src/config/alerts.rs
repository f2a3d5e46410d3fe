//! `runtime.alerts`: where crashes, OOM kills, failing health and
//! unavailable backends are told (see `crate::alerts`).

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    pub webhook_url: Option<String>,
    /// Key of the `X-MCP-Runtime-Signature` HMAC; the payload is unsigned without it.
    pub webhook_secret: Option<String>,
}
