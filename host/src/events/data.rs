//! Each event kind's `data`: the fields webhook consumers, `GET /events` and
//! the live stream read. These are the public shapes; the domain types they
//! mention are copied into them, so an event reads as it was written even
//! after the types move on. A field added later needs a default (old events
//! lack it); a field is never removed or renamed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::EventKind;
use crate::deployment_state::State;
use crate::guardrails::{EffectiveGuardrails, Warning};

/// What a backup held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupTaken {
    pub files: usize,
    pub bytes: u64,
}

/// No details beyond the event's subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoDetail {}

/// A record as written, kept as JSON: history shows what was stored then.
macro_rules! snapshot {
    ($name:ident, $what:literal) => {
        #[doc = $what]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = Object)]
        pub struct $name(pub serde_json::Value);
    };
}

snapshot!(EntrySnapshot, "The catalog entry as written (a `CatalogEntry` of its time).");
snapshot!(ProfileSnapshot, "The guardrail profile as written (a `Profile` of its time).");

/// A catalog entry replaced, or marked deprecated by a remote catalog's sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CatalogChange {
    Deprecated(Deprecation),
    Written(EntrySnapshot),
}

/// Its remote catalog no longer lists the entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deprecation {
    pub deprecated: bool,
    pub reason: String,
}

/// What an import did with the entries it read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportCounts {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    /// Entries their source no longer lists, marked deprecated (a sync only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deprecated: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A remote catalog's sync: its counts, or why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CatalogSync {
    pub url: String,
    pub last_sync: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ImportCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A backend as recorded: its plugin, whether it answers, what it can enforce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackendRecord {
    pub name: String,
    pub plugin: Option<String>,
    pub available: bool,
    /// Why it is unavailable.
    pub reason: Option<String>,
    /// As `GET /backends` shows them; none until the backend first answered.
    #[schema(value_type = Option<Object>)]
    pub capabilities: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackendNamed {
    pub backend: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackendLost {
    pub backend: String,
    pub error: String,
}

/// A server component served for a deployment: its content, and what its
/// permission request asked that the guardrails did not grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComponentServed {
    pub digest: String,
    pub warnings: Vec<crate::guardrails::Warning>,
}

/// A server component's call the sandbox stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComponentStop {
    /// The tool called.
    pub tool: String,
    /// A trap, the call's deadline, the memory limit.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EgressRefusal {
    pub host: String,
    pub port: u16,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginUpload {
    pub version: u32,
    pub sha256: String,
    /// Its world: `runtime-backend`, `guardrail-policy` or `approval-rule`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginUpgrade {
    pub version: u32,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginRollback {
    pub from: u32,
    pub to: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginOrder {
    /// `policy_chain` or `approval_rules`.
    pub order: String,
    pub plugins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeployRequest {
    pub slug: String,
    pub backend: String,
    pub profile: String,
    pub guardrails_applied: Box<EffectiveGuardrails>,
    #[serde(default)]
    pub guardrails_warnings: Vec<Warning>,
}

/// A move of the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StateChange {
    pub from: State,
    pub to: State,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageBuilt {
    /// Empty for a package.
    #[serde(default)]
    pub commit: String,
    /// A package's lock (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// `hit`: the commit's image existed; `miss`: it was built now.
    pub cache: String,
    pub image: String,
    /// The state of the OSV database its packages were matched against (`sha256:…`), when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_by: Option<String>,
    /// The backend that built it.
    pub builder: String,
}

/// Which OSV records judged a deployment's image, and what they found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Judgement {
    /// The database state (`sha256:…` over its records' ids and modified times).
    pub database: String,
    pub records: usize,
    /// Findings by severity.
    pub counts: std::collections::BTreeMap<String, usize>,
}

/// What an image installs, kept by one of its content names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageInventoried {
    pub image: String,
    /// The image id or registry digest it is kept under.
    pub content: String,
    pub packages: usize,
}

/// A built image the host signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImageSigned {
    pub image: String,
    /// The digest or image id the signature names.
    pub content: String,
    pub key: String,
    /// `registry` (pushed beside the image) or `store` (the image was not pushed).
    pub kept_in: String,
}

/// What a container was created with, as the backend asked the host's engine for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContainerFacts {
    pub container: String,
    /// Its name (a compose service's container is named after the service).
    pub name: String,
    pub image: String,
    pub read_only_root: bool,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub no_new_privileges: bool,
    /// Who it runs as: the backend's choice, else the image's; `root` when neither names one.
    pub user: String,
    /// `seccomp=…` and `apparmor=…` as given (an inline seccomp profile is not repeated).
    pub security_opts: Vec<String>,
    pub nano_cpus: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub pids_limit: Option<u32>,
    pub network: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PackageLock {
    /// The package's purl, e.g. `pkg:npm/%40scope/name@1.2.3`.
    pub package: String,
    /// The base image's id.
    pub base_image: String,
    /// `sha256:` of the lock.
    pub digest: String,
    /// Packages in the tree.
    pub packages: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeployWarnings {
    /// Guardrails the backend could not enforce.
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OomKill {
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerExit {
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// Restarts the backend made so far.
    pub restart_count: u32,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostRestart {
    pub reason: String,
    pub host_restarts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RestartLimit {
    pub restarts: u32,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthFailure {
    /// Checks failed in a row.
    pub failures: u32,
    pub error: String,
    /// `mcp-ping`, `tcp`, …
    pub probe: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeletedDeployment {
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionServer {
    pub instance: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionServerEnd {
    pub instance: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Leftovers {
    pub backend: String,
}

/// A registration brought in line with the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegistrationSync {
    /// What was done: `registered`, `activated`, `tools refreshed`, …
    pub done: Vec<String>,
    pub gateway_id: Option<String>,
    #[serde(default)]
    pub server_id: Option<String>,
    /// The registration's status after it: `pending`, `registered`, `inactive`, `failed`.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegistrationFailure {
    pub error: Option<String>,
    pub attempts: u32,
    /// Whether it is tried again (at `next_attempt`).
    pub retried: bool,
    pub next_attempt: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegistrationRemoved {
    pub gateway_id: Option<String>,
    pub server_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GatewayOrphan {
    pub gateway_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertDelivery {
    /// The event alerted on, and its `seq`.
    pub alert: EventKind,
    pub event_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertFailure {
    pub alert: EventKind,
    pub event_seq: u64,
    pub error: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRequest {
    pub approval: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalDecision {
    pub approval: String,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalNamed {
    pub approval: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalEscalation {
    pub approval: String,
    /// Who it was escalated to.
    pub to: Vec<String>,
}

/// An approval notice (`event`: the approval event it told of) delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoticeSent {
    pub event: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoticeFailure {
    pub event: EventKind,
    pub error: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailSent {
    pub event: EventKind,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailFailure {
    pub event: EventKind,
    pub to: Vec<String>,
    pub error: String,
}
