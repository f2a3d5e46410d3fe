//! A deployment as the host stores it and the API shows it: plain data with
//! its rules, beside the catalog entry and the guardrail profile it was made
//! from. Its state machine is `deployment_state` (a layer lower, so events can
//! name states); the service that drives deployments is `deployments`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::catalog::{CatalogEntry, SessionMode};
pub use crate::deployment_state::State;
use crate::guardrails::{EffectiveGuardrails, Warning};
pub use glance::{is_health_checked, Glance};

mod glance;

/// `POST /runtimes/deploy`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"slug": "everything", "env": {"LOG_LEVEL": "info"}, "resources": {"memory": "256m"}}))]
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
    /// A past revision of the entry to deploy (`GET /catalog/{slug}/versions`); the current one when absent.
    #[serde(default)]
    pub catalog_revision: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Restarts by the backend (a crashed process), as it counts them.
    #[serde(default)]
    pub restart_count: u32,
    /// Restarts by the host (unhealthy, or a clean exit under `always`);
    /// counted against `max_restarts` with the backend's.
    #[serde(default)]
    pub host_restarts: u32,
    #[serde(default)]
    pub tools: Vec<String>,
    pub guardrails_applied: EffectiveGuardrails,
    pub guardrails_warnings: Vec<Warning>,
    pub requested_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// What was asked for, with the catalog entry as it was at deploy time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<DeploymentRequest>,
    /// What building from a repository came to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// The backend's opaque reference; private to the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Who approved it, for a deployment that was held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Approved>,
    /// What the OSV database found in what it installs (a package's lock),
    /// when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<crate::supply_chain::osv::VulnerabilityReport>,
    /// Where what its image installs is kept (`Table::ImageInventories`): its image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
}

/// The decision that let a held deployment run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approved {
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Deployment {
    /// Whether each MCP session gets a server of its own.
    pub fn is_per_session(&self) -> bool {
        self.request.as_ref().is_some_and(|r| r.entry.session_mode == SessionMode::PerSession)
    }

    /// The API's view: the request in the catalog's shapes, environment
    /// values withheld (they may be secrets; only their names are shown), the
    /// backend's handle private to the host.
    pub fn public_view(&self) -> DeploymentView {
        let request = self.request.as_ref().map(|r| RequestView {
            source: r.entry.source.clone(),
            env: r.env.keys().cloned().collect(),
            resources: r.resources.clone(),
            port: r.entry.port,
            mcp_path: r.entry.mcp_path.clone(),
            commit: r.commit.clone(),
            catalog_revision: r.catalog_revision,
            version: r.entry.version.clone(),
            transport: r.entry.transport,
            session_mode: r.entry.session_mode,
            pinned_image: r.pinned_image.clone(),
            pinned_stack: r.pinned_stack.clone(),
            evidence: r.evidence.clone(),
        });
        DeploymentView {
            id: self.id.clone(),
            slug: self.slug.clone(),
            backend: self.backend.clone(),
            profile: self.profile.clone(),
            status: self.status,
            status_message: self.status_message.clone(),
            desired_running: self.desired_running,
            endpoint: self.endpoint.clone(),
            image: self.image.clone(),
            build: self.build.clone(),
            restart_count: self.restart_count + self.host_restarts,
            tools: self.tools.clone(),
            guardrails_applied: self.guardrails_applied.clone(),
            guardrails_warnings: self.guardrails_warnings.clone(),
            requested_by: self.requested_by.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            request,
            approved: self.approved.clone(),
            vulnerabilities: self.vulnerabilities.clone(),
        }
    }
}

/// A deployment as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Deployment)]
pub struct DeploymentView {
    pub id: String,
    /// The catalog entry it runs.
    pub slug: String,
    pub backend: String,
    /// The guardrail profile it runs under.
    pub profile: String,
    pub status: State,
    /// Why it is in that state (an error's cause, a pull's progress).
    pub status_message: Option<String>,
    /// Whether its owner wants it running; the health watch restores it.
    pub desired_running: bool,
    /// Where the host reaches its MCP server (clients use `/servers/{id}/mcp`).
    pub endpoint: Option<String>,
    pub image: Option<String>,
    /// For a repository source: the commit built, and whether the image was cached.
    pub build: Option<Build>,
    /// Restarts so far, by the backend and by the health watch.
    pub restart_count: u32,
    /// The tools the server listed when it connected.
    pub tools: Vec<String>,
    /// The guardrails in force: the profile as the backend applies it.
    pub guardrails_applied: EffectiveGuardrails,
    /// Guardrails the backend could not enforce (the deploy went on).
    pub guardrails_warnings: Vec<Warning>,
    pub requested_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// What was asked for.
    pub request: Option<RequestView>,
    /// Who approved it, for a deployment that was held for approval.
    pub approved: Option<Approved>,
    /// Known vulnerabilities in what it installs (a package's lock), as the
    /// operator's OSV database (`runtime.supply_chain.osv_dir`) judged them
    /// when it was built; absent without a database.
    pub vulnerabilities: Option<crate::supply_chain::osv::VulnerabilityReport>,
}

/// What a deployment was asked to run, environment values withheld.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DeploymentRequest)]
pub struct RequestView {
    pub source: crate::catalog::ServerSource,
    /// The names of the variables set (values may be secrets).
    pub env: Vec<String>,
    pub resources: Resources,
    pub port: u16,
    pub mcp_path: String,
    /// For a repository source: the commit approved and built.
    pub commit: Option<String>,
    pub catalog_revision: Option<u32>,
    /// The entry's own version.
    pub version: Option<String>,
    pub transport: crate::catalog::Transport,
    pub session_mode: SessionMode,
    /// For an image source: the reference asked for and the content it was
    /// pinned to when the request was checked, which is what runs.
    pub pinned_image: Option<crate::supply_chain::PinnedImage>,
    /// For a compose source: each image of the stack and the content it was pinned to.
    pub pinned_stack: Vec<crate::supply_chain::PinnedImage>,
    /// What the supply-chain evidence said when policies and approval rules
    /// last judged the request: at check, and again once a build found more.
    pub evidence: crate::supply_chain::Evidence,
}

/// An image built from a repository (the commit) or from a package (the
/// lock), and whether it was built for this deployment or already there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Build {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
    /// A package's lock (`sha256:…`): its packages are `GET /runtimes/{id}`'s `bill_of_materials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// `hit`: the image of that commit (or lock) existed, nothing was fetched or built.
    pub cache: CacheOutcome,
    /// The built image's content: the engine's image id, or the digest it
    /// was pushed as. Once approvers saw it, a build that comes to other
    /// content is asked about again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Build {
    /// What a backend's `build-facts` say: their `commit` is a package's lock digest.
    pub fn of(source: &crate::catalog::ServerSource, commit: &str, cache_hit: bool) -> Build {
        let cache = if cache_hit { CacheOutcome::Hit } else { CacheOutcome::Miss };
        match source {
            crate::catalog::ServerSource::Package { .. } => {
                Build { commit: String::new(), lock: Some(commit.into()), cache, content: None }
            }
            _ => Build { commit: commit.into(), lock: None, cache, content: None },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    Hit,
    Miss,
}

impl CacheOutcome {
    /// As the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
        }
    }
}

/// What a deployment was asked to run: the catalog entry as it was at deploy
/// time, the environment (entry defaults overridden by the request) and the
/// resources in host units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRequest {
    pub entry: CatalogEntry,
    pub env: BTreeMap<String, String>,
    pub resources: Resources,
    /// For a repository source: the commit its revision named when the
    /// request was checked. What an approver approves, and what is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The catalog revision the entry was taken from (none before entries had history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_revision: Option<u32>,
    /// For an image source: the image pinned to its content when the request
    /// was checked. What an approver approves, and what runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_image: Option<crate::supply_chain::PinnedImage>,
    /// For a compose source: each image of the stack pinned the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned_stack: Vec<crate::supply_chain::PinnedImage>,
    /// What the supply-chain evidence said when policies and approval rules
    /// last judged the request: at check, and again once a build found more.
    #[serde(default)]
    pub evidence: crate::supply_chain::Evidence,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A deployment as schema version 1 stored it: the request in the WIT
    /// bindings' layout.
    pub(super) fn v1_record() -> serde_json::Value {
        let network = json!({"egress_allowed": false, "allowed_hosts": [], "ingress_ports": []});
        json!({
            "id": "d1", "slug": "echo", "backend": "docker", "profile": "restricted", "status": "connected",
            "status_message": null, "desired_running": true, "endpoint": "http://10.0.0.2:8080/mcp",
            "image": "echo:1", "restart_count": 0, "tools": ["echo"],
            "guardrails_applied": {"profile": "restricted", "network": network,
                "filesystem": {"read_only_root": true, "allowed_mounts": ["/tmp"]},
                "capabilities": {"drop_all": true, "add": []},
                "cpu_millis": 500, "memory_bytes": 268435456, "pids": 64, "seccomp": null, "apparmor": null},
            "guardrails_warnings": [{"field": "network.allowed_hosts", "message": "not enforced"}],
            "requested_by": "dev@example.com",
            "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-20T10:00:05Z",
            "request": {
                "deployment_id": "d1", "backend": "docker", "requested_by": "dev@example.com",
                "entry": {"slug": "echo", "name": "Echo", "version": null, "category": null, "tags": ["t"],
                    "source": {"Github": {"repo": "org/echo", "revision": null, "dockerfile": "Dockerfile",
                        "context_dir": null, "build_args": [["A", "1"]], "push_to_registry": false, "registry": null}},
                    "supported_backends": ["docker"], "guardrails_profile": "restricted",
                    "requires_approval": false, "port": 8080, "mcp_path": "/mcp"},
                "env": [["LOG", "debug"]],
                "resources": {"cpu_millis": 500, "memory_bytes": null, "pids": null, "min_scale": null,
                    "max_scale": null, "visibility": "Private"}
            },
            "handle": "c1"
        })
    }

    #[test]
    fn a_version_1_record_reads_after_migration() {
        let migrated = crate::store::migrations::deployment_request_in_catalog_shape(v1_record()).unwrap();
        let d: Deployment = serde_json::from_value(migrated).expect("the migrated record reads");
        let request = d.request.as_ref().unwrap();
        assert_eq!(request.env.get("LOG").map(String::as_str), Some("debug"));
        assert_eq!(request.resources.visibility, Some(Visibility::Private));
        let crate::catalog::ServerSource::Github { repo, build_args, .. } = &request.entry.source else {
            panic!("source: {:?}", request.entry.source)
        };
        assert_eq!((repo.as_str(), build_args.get("A").map(String::as_str)), ("org/echo", Some("1")));
        assert_eq!(d.guardrails_applied.filesystem.allowed_mounts, ["/tmp"]);
        let view = serde_json::to_value(d.public_view()).unwrap();
        assert_eq!(view["request"]["source"]["type"], "github", "{view}");
        assert_eq!(view["request"]["env"], json!(["LOG"]), "values are never shown");
        assert_eq!(view["request"]["resources"]["visibility"], "private");
    }

    #[test]
    fn a_record_without_a_request_is_left_alone() {
        let mut record = v1_record();
        record.as_object_mut().unwrap().remove("request");
        let migrated = crate::store::migrations::deployment_request_in_catalog_shape(record.clone()).unwrap();
        assert_eq!(migrated, record);
    }
}
