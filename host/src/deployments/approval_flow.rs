//! Where a deployment meets the approval workflow (`crate::approvals`): a
//! request submitted is accepted or held for a person; a decision or an
//! expiry moves the held deployment on. The one flow the API and the admin UI
//! both go through.

use std::sync::Arc;

use super::{Runtime, RuntimeError};
use crate::approvals::Approval;
use crate::auth::Principal;
use crate::deployment::{Approved, DeployBody, Deployment, State};
use crate::store::StoreError;

pub enum Submitted {
    /// On its way: the driver takes it from here.
    Accepted(Deployment),
    /// Stored as `awaiting_approval`, with the request approvers see.
    Held(Deployment, Box<Approval>),
}

impl Runtime {
    /// Checks `body` in full, asks the approval rules, then stores the deployment.
    pub async fn submit(self: &Arc<Self>, body: &DeployBody, actor: Option<&str>) -> Result<Submitted, RuntimeError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let checked = self.check(body, &id, actor).await?;
        let evidence = &checked.request.evidence;
        if let Some(decision) =
            self.approvals.needs_approval(&checked.plugin_request, &checked.guardrails, evidence).await?
        {
            let deployment = Runtime::deployment(checked, State::AwaitingApproval);
            let approval = self.approvals.hold(&deployment, decision)?;
            return Ok(Submitted::Held(deployment, Box::new(approval)));
        }
        Ok(Submitted::Accepted(self.accept(checked)?))
    }

    /// Approves or rejects a held deployment: approved, it goes on by itself;
    /// rejected, it ends `rejected` with who said so and why.
    pub fn decide(
        self: &Arc<Self>,
        id: &str,
        who: &Principal,
        approve: bool,
        notes: Option<String>,
    ) -> Result<Approval, RuntimeError> {
        let approval = self.approvals.decide(id, who, approve, notes)?;
        if approve {
            self.release(&approval.deployment_id, &who.user)?;
        } else {
            let why = match &approval.notes {
                Some(n) => format!("rejected by {}: {n}", who.user),
                None => format!("rejected by {}", who.user),
            };
            self.end_rejected(&approval.deployment_id, why, Some(&who.user))?;
        }
        Ok(approval)
    }

    /// Escalates requests close to expiry and ends the deployments of those
    /// that expired.
    pub async fn approvals_tick(self: &Arc<Self>) -> Result<(), RuntimeError> {
        for expired in self.approvals.tick()? {
            self.end_rejected(&expired.approval.deployment_id, expired.why, None)?;
        }
        Ok(())
    }

    /// An approved deployment goes on by itself.
    fn release(self: &Arc<Self>, deployment: &str, approver: &str) -> Result<(), RuntimeError> {
        let message = Some(format!("approved by {approver}"));
        let approved = Approved { by: approver.into(), at: self.now() };
        match self.transition_by(deployment, State::Pending, message, Some(approver), |d| d.approved = Some(approved)) {
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
