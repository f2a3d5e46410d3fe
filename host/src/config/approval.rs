//! `runtime.approval`: whether deployments may be held for a person, by which
//! rules, for how long, and who hears about it.

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalConfig {
    #[serde(default)]
    pub enabled: bool,
    /// `approval-rule` plugins, evaluated in order; all of them are asked.
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default = "default_timeout_hours")]
    pub timeout_hours: f64,
    /// Escalate this long before expiry (default: a quarter of the timeout).
    pub escalate_before_hours: Option<f64>,
    /// Who hears about requests nobody has decided yet.
    #[serde(default)]
    pub escalation: Vec<String>,
    #[serde(default)]
    pub notification: Notification,
    /// Everything else (`required_for`, `approvers`, …) is for the rules.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig {
            enabled: false,
            rules: Vec::new(),
            timeout_hours: default_timeout_hours(),
            escalate_before_hours: None,
            escalation: Vec::new(),
            notification: Notification::default(),
            rest: BTreeMap::new(),
        }
    }
}

fn default_timeout_hours() -> f64 {
    48.0
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Notification {
    pub webhook_url: Option<String>,
    /// Key of the `X-MCP-Runtime-Signature` HMAC; the payload is unsigned without it.
    pub webhook_secret: Option<String>,
    #[serde(default)]
    pub email_enabled: bool,
    /// The relay for email; email is sent only when this is set and `email_enabled`.
    pub smtp: Option<SmtpConfig>,
    /// Where a group's mail goes: `{security-team: security@example.com}`.
    #[serde(default)]
    pub group_emails: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

fn default_smtp_port() -> u16 {
    25
}

impl ApprovalConfig {
    /// What an approval rule plugin receives as its settings.
    pub fn rule_settings(&self) -> serde_json::Map<String, Value> {
        let mut settings: serde_json::Map<String, Value> = self.rest.clone().into_iter().collect();
        settings.insert("enabled".into(), json!(self.enabled));
        settings
    }

    pub fn timeout(&self) -> chrono::Duration {
        chrono::Duration::seconds((self.timeout_hours * 3600.0) as i64)
    }

    pub fn escalate_before(&self) -> chrono::Duration {
        let hours = self.escalate_before_hours.unwrap_or(self.timeout_hours / 4.0);
        chrono::Duration::seconds((hours * 3600.0) as i64)
    }
}
