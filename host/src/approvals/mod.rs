//! The approval workflow. A chain of `approval-rule` components decides
//! whether a deployment must wait for a person; if any rule requires it, the
//! deployment is held as `awaiting_approval` with an approval record naming
//! who asked, what, why (the rules that fired), and who may approve.
//! Approvers are notified by a signed webhook. Approve: the deployment
//! proceeds by itself. Reject or expiry: it ends `rejected`, with the reason.
//! A rule that fails fails the request: nothing is deployed unapproved.
//!
//! `Approvals` owns the approval records; the deployments service calls it
//! when a request comes in, when someone decides and as time passes, and
//! moves the deployment on.

mod notify;
mod service;

pub use notify::Notifier;
pub use service::{ApprovalError, Approvals, Expired};

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::guardrails::{EffectiveGuardrails, Warning};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 4] =
        [ApprovalStatus::Pending, ApprovalStatus::Approved, ApprovalStatus::Rejected, ApprovalStatus::Expired];

    /// As the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
        }
    }
}

/// An approval request as stored and as `GET /approvals/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    pub id: String,
    pub deployment_id: String,
    pub slug: String,
    pub backend: String,
    pub status: ApprovalStatus,
    pub requested_by: Option<String>,
    pub requested_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The rules that fired.
    pub reasons: Vec<String>,
    /// Who may decide: `user:…` and `group:…`; empty means any approver.
    pub approvers: Vec<String>,
    pub source: crate::catalog::ServerSource,
    /// Every image the deployment runs (a stack's services each); none for a
    /// repository source, whose image is built from `commit`.
    #[serde(default)]
    pub images: Vec<String>,
    /// For a repository source: the commit approved, which is what gets built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// For an image source: the content the reference named when the
    /// request was checked; approved, it is what runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_image: Option<crate::supply_chain::PinnedImage>,
    /// For a compose source: each image of the stack and the content it named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned_stack: Vec<crate::supply_chain::PinnedImage>,
    pub resources: crate::deployment::Resources,
    pub guardrails_applied: EffectiveGuardrails,
    pub guardrails_warnings: Vec<Warning>,
    /// The content approved when it is known beyond `pinned_image`: a
    /// built image's id (or the digest it was pushed as).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The security scan: what the operator's OSV database found in what
    /// the deployment installs (the worst first); absent when nothing was
    /// judged (no database, or contents not known yet).
    #[serde(default)]
    pub scan_results: Option<crate::supply_chain::osv::VulnerabilityReport>,
    /// The image's signature, checked against the configured keys.
    #[serde(default)]
    pub signature: crate::supply_chain::SignatureCheck,
    #[serde(default)]
    pub escalated: bool,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub notes: Option<String>,
}

/// The decision of the whole rule chain.
pub struct Decision {
    pub reasons: Vec<String>,
    pub approvers: Vec<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    #[serde(default)]
    pub notes: Option<String>,
}

/// An approver listed as `user:<sub>`, or holding a listed `group:<name>`; an empty list admits any approver.
pub fn may_approve(approvers: &[String], who: &Principal) -> bool {
    approvers.is_empty()
        || approvers.iter().any(|a| match a.split_once(':') {
            Some(("user", user)) => user == who.user,
            Some(("group", group)) => who.groups.iter().any(|g| g == group),
            _ => false,
        })
}
