//! A deployment's or a remote entry's registration with the gateway, as
//! stored (table `gateway`) and as `GET /runtimes/{id}` shows it under
//! `gateway` (`GET /catalog/{slug}/registration` for a remote entry).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not registered yet, or a change not applied yet: being retried.
    Pending,
    /// Registered and active: the gateway serves the deployment's tools.
    Registered,
    /// Registered and deactivated: the deployment is stopped or unhealthy.
    Inactive,
    /// Refused in a way retrying will not fix (a credential, a setting).
    Failed,
}

impl Status {
    /// As stored and as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Registered => "registered",
            Status::Inactive => "inactive",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub status: Status,
    /// The unique name it is registered under: slug and short id.
    pub name: String,
    pub gateway_id: Option<String>,
    pub server_id: Option<String>,
    /// The URL the gateway was given for the deployment.
    #[serde(default)]
    pub url: Option<String>,
    /// How the gateway was told to speak to it, for a remote server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<crate::catalog::Transport>,
    /// Whether the gateway record is active.
    pub active: bool,
    /// The deployment's tools as the gateway last learned them.
    pub tools: Vec<String>,
    pub error: Option<String>,
    /// Failed attempts in a row.
    pub attempts: u32,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_sync: Option<DateTime<Utc>>,
    /// When the gateway was given its current token for the deployment.
    pub token_minted_at: Option<DateTime<Utc>>,
}

impl Registration {
    pub fn new(name: String) -> Registration {
        Registration {
            status: Status::Pending,
            name,
            gateway_id: None,
            server_id: None,
            url: None,
            transport: None,
            active: false,
            tools: Vec::new(),
            error: None,
            attempts: 0,
            next_attempt: None,
            last_sync: None,
            token_minted_at: None,
        }
    }

    /// The gateway lost the record (a fresh database): start over.
    pub fn forget_gateway_ids(&mut self) {
        self.gateway_id = None;
        self.server_id = None;
        self.url = None;
        self.transport = None;
        self.active = false;
        self.token_minted_at = None;
    }

    /// What the API shows.
    pub fn public_view(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "name": self.name,
            "gateway_id": self.gateway_id,
            "server_id": self.server_id,
            "url": self.url,
            "error": self.error,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
            "last_sync": self.last_sync,
        })
    }
}
