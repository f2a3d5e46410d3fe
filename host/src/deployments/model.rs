//! Deployments as the host stores them and the API shows them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::contract::types as wit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Held until an approver decides.
    AwaitingApproval,
    /// An approver said no, or nobody decided in time.
    Rejected,
    Pending,
    Pulling,
    Building,
    Starting,
    Running,
    Connected,
    Stopped,
    Error,
}

/// `POST /runtimes/deploy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    pub slug: String,
    #[serde(default)]
    pub backend: Option<String>,
    /// Overrides the catalog entry's guardrails profile.
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: ResourceRequest,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequest {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub pids: Option<u32>,
    pub min_scale: Option<u32>,
    pub max_scale: Option<u32>,
    pub visibility: Option<Visibility>,
}

/// Who may reach a deployed server (Code Engine's app visibility), as written in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    // The aliases read records stored before the shape was designed.
    #[serde(alias = "Public")]
    Public,
    #[serde(alias = "Private")]
    Private,
    #[serde(alias = "Project")]
    Project,
}

/// Requested resources in host units, as the API shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_millis: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub pids: Option<u32>,
    pub min_scale: Option<u32>,
    pub max_scale: Option<u32>,
    pub visibility: Option<Visibility>,
}

/// A deployment as stored and as `GET /runtimes/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub slug: String,
    pub backend: String,
    pub profile: String,
    pub status: State,
    #[serde(default)]
    pub status_message: Option<String>,
    /// What the owner asked for last: the health watch restores it.
    pub desired_running: bool,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub tools: Vec<String>,
    pub guardrails_applied: wit::EffectiveGuardrails,
    pub guardrails_warnings: Vec<wit::Warning>,
    pub requested_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The request as the backend saw it (catalog entry at deploy time included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<wit::DeployRequest>,
    /// The backend's opaque reference; private to the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

impl Deployment {
    /// Where MCP traffic goes while the server is up.
    pub fn serving_endpoint(&self) -> Option<&str> {
        match self.status {
            State::Running | State::Connected => self.endpoint.as_deref(),
            _ => None,
        }
    }

    /// The API's view: the request in the catalog's shapes, environment
    /// values withheld (they may be secrets; only their names are shown), the
    /// backend's handle private to the host.
    pub fn public_view(&self) -> serde_json::Value {
        let request = self.request.as_ref().map(|r| {
            serde_json::json!({
                "source": crate::catalog::Source::from(&r.entry.source),
                "env": r.env.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                "resources": Resources::from(&r.resources),
                "port": r.entry.port,
                "mcp_path": r.entry.mcp_path,
            })
        });
        serde_json::json!({
            "id": self.id,
            "slug": self.slug,
            "backend": self.backend,
            "profile": self.profile,
            "status": self.status,
            "status_message": self.status_message,
            "desired_running": self.desired_running,
            "endpoint": self.endpoint,
            "image": self.image,
            "restart_count": self.restart_count,
            "tools": self.tools,
            "guardrails_applied": self.guardrails_applied,
            "guardrails_warnings": self.guardrails_warnings,
            "requested_by": self.requested_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "request": request,
        })
    }
}

/// The outcome of checking a request: everything needed to deploy it.
pub struct Checked {
    pub request: wit::DeployRequest,
    pub guardrails: wit::EffectiveGuardrails,
    pub warnings: Vec<wit::Warning>,
}
