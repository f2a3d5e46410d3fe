//! How a catalog entry's server is watched and brought back: its health
//! check and its restart policy.

use serde::{Deserialize, Serialize};

use super::{invalid, CatalogError, Transport};

/// How the host checks that a connected server still serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default, rename = "type")]
    pub probe: Probe,
    /// `http`: the path asked with GET; any answer below 400 is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `tcp` and `http`: the port inside the container; the entry's `port` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
    /// Failed checks in a row that make the server `unhealthy`.
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = HealthProbe)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// An MCP `ping` in a session of the host's own.
    #[default]
    McpPing,
    Tcp,
    Http,
}

impl Probe {
    pub fn name(self) -> &'static str {
        match self {
            Probe::McpPing => "mcp-ping",
            Probe::Tcp => "tcp",
            Probe::Http => "http",
        }
    }
}

fn default_interval() -> u32 {
    10
}
fn default_timeout() -> u32 {
    3
}
fn default_threshold() -> u32 {
    3
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            probe: Probe::McpPing,
            path: None,
            port: None,
            interval_seconds: default_interval(),
            timeout_seconds: default_timeout(),
            failure_threshold: default_threshold(),
        }
    }
}

impl HealthCheck {
    pub fn is_default(&self) -> bool {
        *self == HealthCheck::default()
    }

    pub(super) fn validate(&self, transport: Transport) -> Result<(), CatalogError> {
        let field = |name: &str| format!("health_check.{name}");
        if !(1..=3600).contains(&self.interval_seconds) {
            return Err(invalid(&field("interval_seconds"), "1-3600"));
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > self.interval_seconds {
            return Err(invalid(&field("timeout_seconds"), "at least 1, at most interval_seconds"));
        }
        if !(1..=100).contains(&self.failure_threshold) {
            return Err(invalid(&field("failure_threshold"), "1-100"));
        }
        if self.probe != Probe::McpPing && transport == Transport::Stdio {
            return Err(invalid(&field("type"), "a stdio server has no port: only mcp-ping checks it"));
        }
        if self.path.is_some() && self.probe != Probe::Http {
            return Err(invalid(&field("path"), "only an http check asks a path"));
        }
        if self.path.as_deref().is_some_and(|p| !p.starts_with('/') || p.contains(char::is_whitespace)) {
            return Err(invalid(&field("path"), "a path starting with '/', without spaces"));
        }
        if self.port == Some(0) || (self.port.is_some() && self.probe == Probe::McpPing) {
            return Err(invalid(&field("port"), "1-65535, for a tcp or http check"));
        }
        Ok(())
    }
}

/// What happens when a server's process ends or its health check keeps failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restarted whenever it ends, a clean exit included.
    Always,
    /// Restarted when it fails: a non-zero exit, an OOM kill, an unhealthy server.
    #[default]
    OnFailure,
    /// Left in `error`.
    Never,
}

impl RestartPolicy {
    pub fn is_default(&self) -> bool {
        *self == RestartPolicy::OnFailure
    }
}

pub(super) const DEFAULT_MAX_RESTARTS: u32 = 3;
pub(super) const MOST_RESTARTS: u32 = 100;

pub(super) fn default_max_restarts() -> u32 {
    DEFAULT_MAX_RESTARTS
}

pub(super) fn is_default_max_restarts(n: &u32) -> bool {
    *n == DEFAULT_MAX_RESTARTS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(check: serde_json::Value, transport: Transport) -> Option<String> {
        let check: HealthCheck = serde_json::from_value(check).unwrap();
        check.validate(transport).err().map(|CatalogError::Invalid { field, .. }| field)
    }

    #[test]
    fn bad_checks_are_refused_naming_the_field() {
        let http = Transport::StreamableHttp;
        assert_eq!(refused(serde_json::json!({}), http), None, "the defaults hold");
        assert_eq!(refused(serde_json::json!({"type": "http", "path": "/healthz", "port": 9000}), http), None);
        for (check, field) in [
            (serde_json::json!({"interval_seconds": 0}), "health_check.interval_seconds"),
            (serde_json::json!({"interval_seconds": 2, "timeout_seconds": 5}), "health_check.timeout_seconds"),
            (serde_json::json!({"failure_threshold": 0}), "health_check.failure_threshold"),
            (serde_json::json!({"type": "tcp", "path": "/x"}), "health_check.path"),
            (serde_json::json!({"type": "http", "path": "no-slash"}), "health_check.path"),
            (serde_json::json!({"port": 8080}), "health_check.port"),
        ] {
            assert_eq!(refused(check.clone(), http).as_deref(), Some(field), "{check}");
        }
        assert_eq!(refused(serde_json::json!({"type": "tcp"}), Transport::Stdio).as_deref(), Some("health_check.type"));
    }
}
