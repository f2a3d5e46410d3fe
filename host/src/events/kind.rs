//! Every kind of event the host records, in one place.

use serde::{Deserialize, Serialize};

use super::data::*;

// `$name` and `$payload` are token trees, not `literal` and `ty` fragments:
// the derive macros then read them as written (utoipa does not look inside
// the invisible groups a fragment makes).
macro_rules! event_kinds {
    ($($variant:ident = $name:tt ($payload:ident): $doc:literal,)*) => {
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

        /// What happened and its details: the event's `type` and its `data`,
        /// one variant per kind. Stored and served as `{"type": …, "data": …}`.
        #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(tag = "type", content = "data")]
        pub enum EventData {
            $(#[doc = $doc] #[serde(rename = $name)] $variant($payload),)*
        }

        impl EventData {
            pub fn kind(&self) -> EventKind {
                match self {
                    $(EventData::$variant(_) => EventKind::$variant,)*
                }
            }
        }
    };
}

/// The names, as the API writes them, as one string enum (`EventData`'s
/// derived schema documents each kind with its `data`).
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
    CatalogSeeded = "catalog.seeded" (NoDetail): "The sample or configured catalog was loaded at first start.",
    CatalogCreated = "catalog.created" (EntrySnapshot): "A catalog entry was added.",
    CatalogUpdated = "catalog.updated" (CatalogChange): "A catalog entry was replaced.",
    CatalogDeleted = "catalog.deleted" (NoDetail): "A catalog entry was removed.",
    CatalogSynced = "catalog.synced" (CatalogSync): "A remote catalog was imported again: its counts, or why it failed.",
    GuardrailsSeeded = "guardrails.seeded" (NoDetail): "A preset or configured profile was loaded at first start.",
    GuardrailsCreated = "guardrails.created" (ProfileSnapshot): "A guardrail profile was added.",
    GuardrailsUpdated = "guardrails.updated" (ProfileSnapshot): "A guardrail profile was replaced.",
    GuardrailsDeleted = "guardrails.deleted" (NoDetail): "A guardrail profile was removed.",
    BackendRegistered = "backend.registered" (BackendRecord): "A backend's record (availability, capabilities) changed.",
    BackendUnavailable = "backend.unavailable" (BackendLost): "A backend stopped answering its checks.",
    BackendRecovered = "backend.recovered" (BackendNamed): "An unavailable backend answers again.",
    BackendRemoved = "backend.removed" (BackendRecord): "An uploaded backend was deleted with its plugin.",
    EgressRefused = "egress.refused" (EgressRefusal): "A deployment's connection was refused by its egress proxy: the host, the port and why.",
    ComponentServed = "component.served" (ComponentServed): "The host serves a deployment's WebAssembly component in its sandbox: its digest, and what its permission request asked that the guardrails did not grant.",
    ComponentStopped = "component.stopped" (NoDetail): "The host stopped serving a deployment's component (it keeps what it was served with until the deployment is removed).",
    ComponentCallStopped = "component.call_stopped" (ComponentStop): "A server component's call was stopped by its sandbox (a trap, its deadline, its memory limit): the tool and why. The component serves the next call.",
    PluginUploaded = "plugin.uploaded" (PluginUpload): "A plugin was uploaded and is live for new calls.",
    PluginUpgraded = "plugin.upgraded" (PluginUpgrade): "A new version of an uploaded plugin took over new calls.",
    PluginRolledBack = "plugin.rolled_back" (PluginRollback): "An earlier version of an uploaded plugin took over new calls.",
    PluginDeleted = "plugin.deleted" (NoDetail): "An uploaded plugin nothing used was removed.",
    PluginOrderSet = "plugin.order_set" (PluginOrder): "The policy chain or the approval rules were given a new order.",
    DeploymentRequested = "deployment.requested" (DeployRequest): "A checked request was accepted.",
    DeploymentState = "deployment.state" (StateChange): "A deployment moved from one state to another.",
    DeploymentBuilt = "deployment.built" (ImageBuilt): "An image was built from a repository or a package, or found built already: the commit or the lock, the cache outcome, the image and the builder.",
    ImageSigned = "image.signed" (ImageSigned): "The host signed an image it built with its signing key: the image, its content, the key, and where the signature is kept (its registry, or the store).",
    DeploymentJudged = "deployment.judged" (Judgement): "What the deployment's image installs was matched against the OSV database before it started: the database state that judged it and the findings by severity.",
    ImageInventoried = "image.inventoried" (ImageInventoried): "What an image installs was read from its package databases and kept by its content (an image id or a registry digest): how many packages.",
    PackageLocked = "package.locked" (PackageLock): "A package entry's dependency tree was locked at its first build on a base image: the package, the base image and the lock's digest.",
    DeploymentCreated = "deployment.created" (DeployWarnings): "The backend created the deployment's objects.",
    ContainerCreated = "deployment.container_created" (ContainerFacts): "The backend had the host's engine create a container: what it runs as (read-only root, capabilities, no-new-privileges, user, security options, limits, network). The deployment's posture is read from these.",
    DeploymentStop = "deployment.stop" (NoDetail): "An owner asked for a stop.",
    DeploymentStart = "deployment.start" (NoDetail): "An owner asked for a start.",
    DeploymentOomKilled = "deployment.oom_killed" (OomKill): "The engine killed the server for running out of memory.",
    DeploymentCrashed = "deployment.crashed" (ServerExit): "The server's process ended while it should run: the exit code, whether it was an OOM kill, the restarts so far.",
    DeploymentRestarted = "deployment.restarted" (HostRestart): "The host restarted the server: it was unhealthy, exited cleanly under `restart_policy: always`, or was stopped or killed behind the host's back.",
    DeploymentRestartLimit = "deployment.restart_limit" (RestartLimit): "The server failed again after `max_restarts` restarts, and was left in `error`.",
    HealthFailing = "health.failing" (HealthFailure): "A server's health check failed `failure_threshold` times in a row: it is `unhealthy`.",
    HealthRecovered = "health.recovered" (NoDetail): "An unhealthy server's health check passed again.",
    DeploymentDeleted = "deployment.deleted" (DeletedDeployment): "A deployment and everything it created were removed.",
    DeploymentProbeRemoved = "deployment.probe_removed" (NoDetail): "A per-session deployment's first server, which proved it speaks MCP, was removed.",
    SessionServerStarted = "session_server.started" (SessionServer): "A server was started for one MCP session of a per-session deployment.",
    SessionServerEnded = "session_server.ended" (SessionServerEnd): "A session's own server was removed: its session ended.",
    DeploymentOrphanRemoved = "deployment.orphan_removed" (Leftovers): "Leftovers no deployment claims were removed.",
    GatewayRegistered = "gateway.registered" (RegistrationSync): "A deployment was registered with the gateway.",
    GatewaySynced = "gateway.synced" (RegistrationSync): "A registration was brought in line: activated, deactivated, tools refreshed, token renewed.",
    GatewaySyncFailed = "gateway.sync_failed" (RegistrationFailure): "A sync with the gateway failed; the data says whether it is retried.",
    GatewayDeregistered = "gateway.deregistered" (RegistrationRemoved): "A deleted deployment's records were removed from the gateway.",
    GatewayOrphanRemoved = "gateway.orphan_removed" (GatewayOrphan): "A gateway record this host made for a deployment that no longer exists was removed.",
    AlertSent = "alert.sent" (AlertDelivery): "An alert was delivered to the alert webhook.",
    AlertFailed = "alert.failed" (AlertFailure): "An alert could not be delivered after its retries.",
    BackupTaken = "backup.taken" (BackupTaken): "A backup of the whole state was taken (`GET /backup`): it holds every record and the token secret.",
    ApprovalRequested = "approval.requested" (ApprovalRequest): "A deployment was held for approval.",
    ApprovalApproved = "approval.approved" (ApprovalDecision): "An approver said yes.",
    ApprovalRejected = "approval.rejected" (ApprovalDecision): "An approver said no.",
    ApprovalExpired = "approval.expired" (ApprovalNamed): "Nobody decided in time.",
    ApprovalEscalated = "approval.escalated" (ApprovalEscalation): "A request close to expiry was escalated.",
    ApprovalNotified = "approval.notified" (NoticeSent): "The approval webhook was delivered.",
    ApprovalNotifyFailed = "approval.notify_failed" (NoticeFailure): "The approval webhook failed after its retries.",
    ApprovalEmailed = "approval.emailed" (MailSent): "Approval mail was handed to the relay.",
    ApprovalEmailFailed = "approval.email_failed" (MailFailure): "Approval mail could not be sent.",
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
