//! Holding, deciding, escalating and expiring approval requests.

use serde_json::json;
use std::sync::Arc;

use super::{may_approve, Approval, ApprovalFilter, ApprovalStatus, Decision};
use crate::auth::Principal;
use crate::contract::types as wit;
use crate::deployment::{Deployment, State};
use crate::deployments::Runtime;
use crate::deployments::RuntimeError;
use crate::events::EventKind;
use crate::guardrails::EffectiveGuardrails;
use crate::store::{NewEvent, StoreError, Table};

impl Runtime {
    /// Asks every approval rule; `None` when no one needs to approve.
    pub async fn needs_approval(
        &self,
        request: &wit::DeployRequest,
        effective: &EffectiveGuardrails,
    ) -> Result<Option<Decision>, RuntimeError> {
        if !self.config.approval.enabled {
            return Ok(None);
        }
        let input = crate::contract::approval::ApprovalInput { request: request.clone(), effective: effective.into() };
        let (mut reasons, mut approvers) = (Vec::new(), Vec::new());
        for rule in &self.plugins.approval_rules() {
            // Fail closed: a rule that traps, loops or errs stops the request.
            let decision = rule
                .approve(&input)
                .await?
                .map_err(|e| RuntimeError::Backend(format!("approval rule '{}' failed: {e}", rule.manifest.id)))?;
            if decision.required {
                reasons.extend(decision.reasons);
                approvers.extend(decision.approvers.into_iter().filter(|a| !approvers.contains(a)).collect::<Vec<_>>());
            }
        }
        Ok((!reasons.is_empty()).then_some(Decision { reasons, approvers }))
    }

    /// Stores the deployment held for approval and its approval request, together.
    pub fn hold_for_approval(&self, deployment: &Deployment, decision: Decision) -> Result<Approval, RuntimeError> {
        let now = self.now();
        let request = deployment.request.as_ref().ok_or_else(|| RuntimeError::Conflict("no request".into()))?;
        let approval = Approval {
            id: uuid::Uuid::new_v4().simple().to_string(),
            deployment_id: deployment.id.clone(),
            slug: deployment.slug.clone(),
            backend: deployment.backend.clone(),
            status: ApprovalStatus::Pending,
            requested_by: deployment.requested_by.clone(),
            requested_at: now,
            expires_at: now + self.config.approval.timeout(),
            reasons: decision.reasons,
            approvers: decision.approvers,
            source: request.entry.source.clone(),
            images: images_of(&request.entry.source),
            commit: request.commit.clone(),
            resources: request.resources.clone(),
            guardrails_applied: deployment.guardrails_applied.clone(),
            guardrails_warnings: deployment.guardrails_warnings.clone(),
            scan_results: None,
            escalated: false,
            reviewed_by: None,
            reviewed_at: None,
            notes: None,
        };
        let data = json!({"approval": approval.id, "reasons": approval.reasons});
        let event = NewEvent::for_deployment(EventKind::ApprovalRequested, &deployment.id, data)
            .by(deployment.requested_by.as_deref());
        self.store.create_pair(
            (Table::Deployments, &deployment.id, deployment),
            (Table::Approvals, &approval.id, &approval),
            event,
        )?;
        self.notify(EventKind::ApprovalRequested, &approval, &approval.approvers);
        Ok(approval)
    }

    pub fn approval(&self, id: &str) -> Result<Approval, RuntimeError> {
        self.store.get(Table::Approvals, id)?.ok_or_else(|| RuntimeError::NotFound(format!("approval '{id}'")))
    }

    pub fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, RuntimeError> {
        let all: Vec<Approval> = self.store.list(Table::Approvals)?;
        Ok(all.into_iter().filter(|a| filter.status.is_none_or(|s| a.status == s)).collect())
    }

    /// Approves or rejects. Exactly one decision wins: the status changes
    /// from pending in one transaction, so a racing second one gets 409.
    pub async fn decide(
        self: &Arc<Self>,
        id: &str,
        who: &Principal,
        approve: bool,
        notes: Option<String>,
    ) -> Result<Approval, RuntimeError> {
        let current = self.approval(id)?;
        if current.requested_by.as_deref() == Some(who.user.as_str()) {
            return Err(RuntimeError::Forbidden(format!("{} may not decide on their own request", who.user)));
        }
        if !may_approve(&current.approvers, who) {
            return Err(RuntimeError::Forbidden(format!(
                "{} is not among the approvers {:?}",
                who.user, current.approvers
            )));
        }
        let now = self.now();
        let status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Rejected };
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
            let kind = if approve { EventKind::ApprovalApproved } else { EventKind::ApprovalRejected };
            let data = json!({"approval": a.id, "notes": notes});
            Some(NewEvent::for_deployment(kind, &a.deployment_id, data).by(Some(&who.user)))
        })?;
        if !decided {
            return Err(RuntimeError::Conflict(
                format!("approval '{id}' is already {:?}", approval.status).to_lowercase(),
            ));
        }
        if approve {
            self.release(&approval.deployment_id, &who.user)?;
        } else {
            let why = match &approval.notes {
                Some(n) => format!("rejected by {}: {n}", who.user),
                None => format!("rejected by {}", who.user),
            };
            self.end_rejected(&approval.deployment_id, why, Some(&who.user))?;
        }
        self.notify(if approve { EventKind::ApprovalApproved } else { EventKind::ApprovalRejected }, &approval, &[]);
        Ok(approval)
    }

    /// Escalates requests close to expiry and expires overdue ones. Called
    /// every few seconds, and after a restart picks up where it left off.
    pub async fn approvals_tick(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let now = self.now();
        let config = &self.config.approval;
        for pending in self.approvals(&ApprovalFilter { status: Some(ApprovalStatus::Pending) })? {
            if now >= pending.expires_at {
                let mut expired = false;
                let a = self.store.update(Table::Approvals, &pending.id, |a: &mut Approval| {
                    (a.status == ApprovalStatus::Pending).then(|| {
                        a.status = ApprovalStatus::Expired;
                        expired = true;
                        NewEvent::for_deployment(
                            EventKind::ApprovalExpired,
                            &a.deployment_id,
                            json!({"approval": a.id}),
                        )
                    })
                })?;
                if expired {
                    let hours = config.timeout_hours;
                    self.end_rejected(
                        &a.deployment_id,
                        format!("approval expired: nobody decided within {hours} hours"),
                        None,
                    )?;
                    self.notify(EventKind::ApprovalExpired, &a, &[]);
                }
            } else if !pending.escalated && now >= pending.expires_at - config.escalate_before() {
                let a = self.store.update(Table::Approvals, &pending.id, |a: &mut Approval| {
                    (!a.escalated).then(|| {
                        a.escalated = true;
                        NewEvent::for_deployment(
                            EventKind::ApprovalEscalated,
                            &a.deployment_id,
                            json!({"approval": a.id, "to": config.escalation}),
                        )
                    })
                })?;
                self.notify(EventKind::ApprovalEscalated, &a, &config.escalation);
            }
        }
        Ok(())
    }

    /// An approved deployment goes on by itself.
    fn release(self: &Arc<Self>, deployment: &str, approver: &str) -> Result<(), RuntimeError> {
        let message = Some(format!("approved by {approver}"));
        match self.transition_by(deployment, State::Pending, message, Some(approver), |_| {}) {
            Ok(_) => self.spawn_drive(deployment),
            // Deleted or decided meanwhile: nothing to release.
            Err(RuntimeError::Conflict(_) | RuntimeError::Store(StoreError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn end_rejected(&self, deployment: &str, why: String, actor: Option<&str>) -> Result<(), RuntimeError> {
        match self.transition_by(deployment, State::Rejected, Some(why), actor, |d| d.desired_running = false) {
            Ok(_) | Err(RuntimeError::Conflict(_) | RuntimeError::Store(StoreError::NotFound(_))) => Ok(()),
            Err(e) => Err(e),
        }
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
        ServerSource::Github { .. } | ServerSource::Remote { .. } => Vec::new(),
    }
}
