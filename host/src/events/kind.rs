//! Every kind of event the host records, in one place.

use serde::{Deserialize, Serialize};

macro_rules! event_kinds {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// What happened. Written as `family.verb` (`deployment.state`), the
        /// form `GET /events?type=` filters on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventKind {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }
        }
    };
}

/// The names, as the API writes them (a derived schema would not see the
/// renames the macro writes).
impl utoipa::PartialSchema for EventKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventKind::ALL.iter().map(|k| k.as_str())))
            .description(Some("What happened, as `family.verb`."))
            .into()
    }
}

impl utoipa::ToSchema for EventKind {
    fn name() -> std::borrow::Cow<'static, str> {
        "EventKind".into()
    }
}

event_kinds! {
    CatalogSeeded = "catalog.seeded": "The sample or configured catalog was loaded at first start.",
    CatalogCreated = "catalog.created": "A catalog entry was added.",
    CatalogUpdated = "catalog.updated": "A catalog entry was replaced.",
    CatalogDeleted = "catalog.deleted": "A catalog entry was removed.",
    CatalogSynced = "catalog.synced": "A remote catalog was imported again: its counts, or why it failed.",
    GuardrailsSeeded = "guardrails.seeded": "A preset or configured profile was loaded at first start.",
    GuardrailsCreated = "guardrails.created": "A guardrail profile was added.",
    GuardrailsUpdated = "guardrails.updated": "A guardrail profile was replaced.",
    GuardrailsDeleted = "guardrails.deleted": "A guardrail profile was removed.",
    BackendRegistered = "backend.registered": "A backend's record (availability, capabilities) changed.",
    BackendUnavailable = "backend.unavailable": "A backend stopped answering its checks.",
    BackendRecovered = "backend.recovered": "An unavailable backend answers again.",
    BackendRemoved = "backend.removed": "An uploaded backend was deleted with its plugin.",
    EgressRefused = "egress.refused": "A deployment's connection was refused by its egress proxy: the host, the port and why.",
    PluginUploaded = "plugin.uploaded": "A plugin was uploaded and is live for new calls.",
    PluginUpgraded = "plugin.upgraded": "A new version of an uploaded plugin took over new calls.",
    PluginRolledBack = "plugin.rolled_back": "An earlier version of an uploaded plugin took over new calls.",
    PluginDeleted = "plugin.deleted": "An uploaded plugin nothing used was removed.",
    PluginOrderSet = "plugin.order_set": "The policy chain or the approval rules were given a new order.",
    DeploymentRequested = "deployment.requested": "A checked request was accepted.",
    DeploymentState = "deployment.state": "A deployment moved from one state to another.",
    DeploymentBuilt = "deployment.built": "An image was built from a repository, or found built already: the commit, the cache outcome, the image and the builder.",
    DeploymentCreated = "deployment.created": "The backend created the deployment's objects.",
    DeploymentStop = "deployment.stop": "An owner asked for a stop.",
    DeploymentStart = "deployment.start": "An owner asked for a start.",
    DeploymentOomKilled = "deployment.oom_killed": "The engine killed the server for running out of memory.",
    DeploymentCrashed = "deployment.crashed": "The server's process ended while it should run: the exit code, whether it was an OOM kill, the restarts so far.",
    DeploymentRestarted = "deployment.restarted": "The host restarted the server: it was unhealthy, or exited cleanly under `restart_policy: always`.",
    DeploymentRestartLimit = "deployment.restart_limit": "The server failed again after `max_restarts` restarts, and was left in `error`.",
    HealthFailing = "health.failing": "A server's health check failed `failure_threshold` times in a row: it is `unhealthy`.",
    HealthRecovered = "health.recovered": "An unhealthy server's health check passed again.",
    DeploymentDeleted = "deployment.deleted": "A deployment and everything it created were removed.",
    DeploymentProbeRemoved = "deployment.probe_removed": "A per-session deployment's first server, which proved it speaks MCP, was removed.",
    SessionServerStarted = "session_server.started": "A server was started for one MCP session of a per-session deployment.",
    SessionServerEnded = "session_server.ended": "A session's own server was removed: its session ended.",
    DeploymentOrphanRemoved = "deployment.orphan_removed": "Leftovers no deployment claims were removed.",
    GatewayRegistered = "gateway.registered": "A deployment was registered with the gateway.",
    GatewaySynced = "gateway.synced": "A registration was brought in line: activated, deactivated, tools refreshed, token renewed.",
    GatewaySyncFailed = "gateway.sync_failed": "A sync with the gateway failed; the data says whether it is retried.",
    GatewayDeregistered = "gateway.deregistered": "A deleted deployment's records were removed from the gateway.",
    GatewayOrphanRemoved = "gateway.orphan_removed": "A gateway record this host made for a deployment that no longer exists was removed.",
    AlertSent = "alert.sent": "An alert was delivered to the alert webhook.",
    AlertFailed = "alert.failed": "An alert could not be delivered after its retries.",
    ApprovalRequested = "approval.requested": "A deployment was held for approval.",
    ApprovalApproved = "approval.approved": "An approver said yes.",
    ApprovalRejected = "approval.rejected": "An approver said no.",
    ApprovalExpired = "approval.expired": "Nobody decided in time.",
    ApprovalEscalated = "approval.escalated": "A request close to expiry was escalated.",
    ApprovalNotified = "approval.notified": "The approval webhook was delivered.",
    ApprovalNotifyFailed = "approval.notify_failed": "The approval webhook failed after its retries.",
    ApprovalEmailed = "approval.emailed": "Approval mail was handed to the relay.",
    ApprovalEmailFailed = "approval.email_failed": "Approval mail could not be sent.",
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn names_are_unique_and_serialized_as_written() {
        let mut seen = std::collections::HashSet::new();
        for kind in EventKind::ALL {
            assert!(seen.insert(kind.as_str()), "{} twice", kind.as_str());
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert!(kind.as_str().split_once('.').is_some(), "{} is not family.verb", kind.as_str());
        }
    }
}
