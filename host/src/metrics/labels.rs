//! Label sets, and the fixed lists that keep client-chosen strings out of them.

use prometheus_client::encoding::EncodeLabelSet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PluginCall {
    pub plugin: String,
    pub function: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PluginTimed {
    pub plugin: String,
    pub function: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct McpRequest {
    pub deployment: String,
    pub method: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct McpTimed {
    pub deployment: String,
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PolicyDecision {
    pub field: &'static str,
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DeploymentCheck {
    pub deployment: String,
    pub kind: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Deployment {
    pub deployment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Phase {
    pub phase: &'static str,
}

/// MCP methods counted by name; any other is `other`.
const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
];

/// Every value `mcp_method` gives.
pub(super) fn mcp_methods() -> impl Iterator<Item = &'static str> {
    MCP_METHODS.iter().copied().chain(["response", "other"])
}

/// The label for a request's JSON-RPC method (`None`: not a request, e.g. a
/// client's answer to the server).
pub fn mcp_method(method: Option<&str>) -> &'static str {
    match method {
        None => "response",
        Some(m) => MCP_METHODS.iter().find(|known| **known == m).copied().unwrap_or("other"),
    }
}

/// Guardrail fields counted by their first segment (`network.allowed_hosts`
/// counts as `network`); a field a policy made up is `other`.
const POLICY_FIELDS: &[&str] = &[
    "network",
    "filesystem",
    "capabilities",
    "resources",
    "seccomp",
    "apparmor",
    "image",
    "registry",
    "source",
    "transport",
    "env",
    "backend",
    "profile",
    "volumes",
];

pub fn policy_field(field: &str) -> &'static str {
    let head = field.split(['.', '[']).next().unwrap_or_default();
    POLICY_FIELDS.iter().find(|known| **known == head).copied().unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Egress {
    pub deployment: String,
    /// The allowlist entry that let the connection through; empty when refused.
    pub allowed_by: String,
    pub outcome: &'static str,
}
