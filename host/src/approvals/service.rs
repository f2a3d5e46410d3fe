//! The approval workflow as a service that owns the approval records: asking
//! the rules, holding a deployment with its request, deciding, escalating and
//! expiring. What happens to the deployment afterwards (it goes on, or ends
//! `rejected`) is the deployments service's, which calls this one.

use std::sync::Arc;

use super::notify::Notifier;
use super::{may_approve, Approval, ApprovalFilter, ApprovalStatus, Decision};
use crate::auth::Principal;
use crate::capabilities::CallAbout;
use crate::clock::Clock;
use crate::config::ApprovalConfig;
use crate::contract::{types as wit, GuardrailOptions};
use crate::deployment::Deployment;
use crate::events::{ApprovalDecision, ApprovalEscalation, ApprovalNamed, ApprovalRequest, EventData, EventKind};
use crate::guardrails::EffectiveGuardrails;
use crate::plugins::{PluginError, Registry};
use crate::store::{NewEvent, Store, StoreError, Table};

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval '{0}' not found")]
    NotFound(String),
    /// The caller may not decide on this request.
    #[error("{0}")]
    Forbidden(String),
    /// Decided already, or expired.
    #[error("{0}")]
    Conflict(String),
    /// A rule failed: the request fails closed.
    #[error("approval rule '{rule}' failed: {reason}")]
    Rule { rule: String, reason: String },
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An approval that ran out of time, and why its deployment ends.
pub struct Expired {
    pub approval: Approval,
    pub why: String,
}

pub struct Approvals {
    store: Arc<Store>,
    config: ApprovalConfig,
    /// Where the approval rules are, in their order.
    plugins: Arc<Registry>,
    clock: Arc<dyn Clock>,
    notifier: Notifier,
}

impl Approvals {
    pub fn new(
        store: Arc<Store>,
        config: ApprovalConfig,
        plugins: Arc<Registry>,
        clock: Arc<dyn Clock>,
        notifier: Notifier,
    ) -> Approvals {
        Approvals { store, config, plugins, clock, notifier }
    }

    /// Asks every approval rule; `None` when no one needs to approve.
    pub async fn needs_approval(
        &self,
        request: &wit::DeployRequest,
        effective: &EffectiveGuardrails,
        evidence: &crate::supply_chain::Evidence,
    ) -> Result<Option<Decision>, ApprovalError> {
        if !self.config.enabled {
            return Ok(None);
        }
        let input = crate::contract::approval::ApprovalInput { request: request.clone(), effective: effective.into() };
        let (mut reasons, mut approvers) = (Vec::new(), Vec::new());
        let evidence = std::sync::Arc::new(evidence.clone());
        for rule in &self.plugins.approval_rules() {
            // Fail closed: a rule that traps, loops or errs stops the request.
            let decision = rule
                .approve(&input, CallAbout::judging(GuardrailOptions::of(effective), &evidence))
                .await?
                .map_err(|e| ApprovalError::Rule { rule: rule.manifest.id.clone(), reason: e.to_string() })?;
            if decision.required {
                reasons.extend(decision.reasons);
                approvers.extend(decision.approvers.into_iter().filter(|a| !approvers.contains(a)).collect::<Vec<_>>());
            }
        }
        Ok((!reasons.is_empty()).then_some(Decision { reasons, approvers }))
    }

    /// Stores the deployment held for approval and its approval request, together.
    pub fn hold(&self, deployment: &Deployment, decision: Decision) -> Result<Approval, ApprovalError> {
        let (approval, event) = self.request_for(deployment, decision)?;
        self.store.create_pair(
            (Table::Deployments, &deployment.id, deployment),
            (Table::Approvals, &approval.id, &approval),
            event,
        )?;
        self.notifier.notify(EventKind::ApprovalRequested, &approval, &approval.approvers);
        Ok(approval)
    }

    /// A new request for a deployment that was approved once, when what it
    /// would run is no longer what was approved (its deployment moves back to
    /// `awaiting_approval` after this, by the deployments service).
    pub fn request_again(&self, deployment: &Deployment, decision: Decision) -> Result<Approval, ApprovalError> {
        let (approval, event) = self.request_for(deployment, decision)?;
        self.store.create(Table::Approvals, &approval.id, &approval, event)?;
        self.notifier.notify(EventKind::ApprovalRequested, &approval, &approval.approvers);
        Ok(approval)
    }

    /// The pending request for `deployment` as it stands, and its event.
    fn request_for(&self, deployment: &Deployment, decision: Decision) -> Result<(Approval, NewEvent), ApprovalError> {
        let now = self.clock.now();
        let request = deployment
            .request
            .as_ref()
            .ok_or_else(|| ApprovalError::Conflict("the deployment has no request".into()))?;
        let approval = Approval {
            id: uuid::Uuid::new_v4().simple().to_string(),
            deployment_id: deployment.id.clone(),
            slug: deployment.slug.clone(),
            backend: deployment.backend.clone(),
            status: ApprovalStatus::Pending,
            requested_by: deployment.requested_by.clone(),
            requested_at: now,
            expires_at: now + self.config.timeout(),
            reasons: decision.reasons,
            approvers: decision.approvers,
            source: request.entry.source.clone(),
            images: images_of(&request.entry.source),
            commit: request.commit.clone(),
            pinned_image: request.pinned_image.clone(),
            pinned_stack: request.pinned_stack.clone(),
            resources: request.resources.clone(),
            guardrails_applied: deployment.guardrails_applied.clone(),
            guardrails_warnings: deployment.guardrails_warnings.clone(),
            content: request.evidence.digest.clone().filter(|_| request.pinned_image.is_none()),
            scan_results: request.evidence.vulnerabilities.clone(),
            signature: request.evidence.signature.clone(),
            escalated: false,
            reviewed_by: None,
            reviewed_at: None,
            notes: None,
        };
        let data = ApprovalRequest { approval: approval.id.clone(), reasons: approval.reasons.clone() };
        let event = NewEvent::for_deployment(&deployment.id, EventData::ApprovalRequested(data))
            .by(deployment.requested_by.as_deref());
        Ok((approval, event))
    }

    pub fn get(&self, id: &str) -> Result<Approval, ApprovalError> {
        self.store.get(Table::Approvals, id)?.ok_or_else(|| ApprovalError::NotFound(id.into()))
    }

    pub fn list(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, ApprovalError> {
        let all: Vec<Approval> = self.store.list(Table::Approvals)?;
        Ok(all.into_iter().filter(|a| filter.status.is_none_or(|s| a.status == s)).collect())
    }

    /// Approves or rejects. Exactly one decision wins: the status changes
    /// from pending in one transaction, so a racing second one is a conflict.
    /// Requesters never decide on their own request.
    pub fn decide(
        &self,
        id: &str,
        who: &Principal,
        approve: bool,
        notes: Option<String>,
    ) -> Result<Approval, ApprovalError> {
        let current = self.get(id)?;
        if current.requested_by.as_deref() == Some(who.user.as_str()) {
            return Err(ApprovalError::Forbidden(format!("{} may not decide on their own request", who.user)));
        }
        if !may_approve(&current.approvers, who) {
            let why = format!("{} is not among the approvers {:?}", who.user, current.approvers);
            return Err(ApprovalError::Forbidden(why));
        }
        let now = self.clock.now();
        let status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Rejected };
        let kind = if approve { EventKind::ApprovalApproved } else { EventKind::ApprovalRejected };
        let mut decided = false;
        let approval = self.store.update(Table::Approvals, id, |a: &mut Approval| {
            if a.status != ApprovalStatus::Pending || now >= a.expires_at {
                return None;
            }
            a.status = status;
            a.reviewed_by = Some(who.user.clone());
            a.reviewed_at = Some(now);
            a.notes = notes.clone();
            decided = true;
            let decision = ApprovalDecision { approval: a.id.clone(), notes: notes.clone() };
            let data = match approve {
                true => EventData::ApprovalApproved(decision),
                false => EventData::ApprovalRejected(decision),
            };
            Some(NewEvent::for_deployment(&a.deployment_id, data).by(Some(&who.user)))
        })?;
        if !decided {
            return Err(ApprovalError::Conflict(
                format!("approval '{id}' is already {:?}", approval.status).to_lowercase(),
            ));
        }
        self.notifier.notify(kind, &approval, &[]);
        Ok(approval)
    }

    /// Escalates requests close to expiry and expires overdue ones; the
    /// approvals that expired now, whose deployments end. Called every few
    /// seconds, and after a restart picks up where it left off.
    pub fn tick(&self) -> Result<Vec<Expired>, ApprovalError> {
        let now = self.clock.now();
        let config = &self.config;
        let mut expired_now = Vec::new();
        for pending in self.list(&ApprovalFilter { status: Some(ApprovalStatus::Pending) })? {
            if now >= pending.expires_at {
                let mut expired = false;
                let a = self.store.update(Table::Approvals, &pending.id, |a: &mut Approval| {
                    (a.status == ApprovalStatus::Pending).then(|| {
                        a.status = ApprovalStatus::Expired;
                        expired = true;
                        let data = EventData::ApprovalExpired(ApprovalNamed { approval: a.id.clone() });
                        NewEvent::for_deployment(&a.deployment_id, data)
                    })
                })?;
                if expired {
                    self.notifier.notify(EventKind::ApprovalExpired, &a, &[]);
                    let why = format!("approval expired: nobody decided within {} hours", config.timeout_hours);
                    expired_now.push(Expired { approval: a, why });
                }
            } else if !pending.escalated && now >= pending.expires_at - config.escalate_before() {
                let a = self.store.update(Table::Approvals, &pending.id, |a: &mut Approval| {
                    (!a.escalated).then(|| {
                        a.escalated = true;
                        let escalation = ApprovalEscalation { approval: a.id.clone(), to: config.escalation.clone() };
                        NewEvent::for_deployment(&a.deployment_id, EventData::ApprovalEscalated(escalation))
                    })
                })?;
                self.notifier.notify(EventKind::ApprovalEscalated, &a, &config.escalation);
            }
        }
        Ok(expired_now)
    }
}

/// The images a source runs, for the approver to see.
fn images_of(source: &crate::catalog::ServerSource) -> Vec<String> {
    use crate::catalog::ServerSource;
    match source {
        ServerSource::Docker { image, .. } => vec![image.clone()],
        ServerSource::Compose { compose_file, main_service } => {
            crate::compose::Stack::parse(compose_file, main_service)
                .map(|stack| stack.images().into_iter().map(String::from).collect())
                .unwrap_or_default()
        }
        // The component, where it comes from and the digest it must have.
        ServerSource::Wasm { .. } => match source.component() {
            Some(Ok(component)) => vec![format!("{} ({})", component.origin, component.digest())],
            _ => Vec::new(),
        },
        // A package's image is built from its lock, shown with the deployment.
        ServerSource::Github { .. } | ServerSource::Remote { .. } | ServerSource::Package { .. } => Vec::new(),
    }
}
