//! A deploy request from its body to accepted, or held for a person: the one
//! flow the API and the admin UI both submit through.

use super::Approval;
use crate::deployment::{DeployBody, Deployment, State};
use crate::deployments::{Runtime, RuntimeError};

pub enum Submitted {
    /// On its way: the driver takes it from here.
    Accepted(Deployment),
    /// Stored as `awaiting_approval`, with the request approvers see.
    Held(Deployment, Box<Approval>),
}

impl Runtime {
    /// Checks `body` in full, asks the approval rules, then stores the deployment.
    pub async fn submit(
        self: &std::sync::Arc<Self>,
        body: &DeployBody,
        actor: Option<&str>,
    ) -> Result<Submitted, RuntimeError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let checked = self.check(body, &id, actor).await?;
        if let Some(decision) = self.needs_approval(&checked.plugin_request, &checked.guardrails).await? {
            let deployment = Runtime::deployment(checked, State::AwaitingApproval);
            let approval = self.hold_for_approval(&deployment, decision)?;
            return Ok(Submitted::Held(deployment, Box::new(approval)));
        }
        Ok(Submitted::Accepted(self.accept(checked)?))
    }
}
