//! `/admin/approvals`: the queue — requester, source, the image or commit
//! that will run, resources and guardrails asked for, the rules that fired,
//! scan results — with approve and reject (and notes) for approvers.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;

use crate::approvals::{may_approve, ApprovalFilter, ApprovalStatus};
use crate::auth::authz::{authorize, Action};
use crate::ui::{Session, UiError, UiState};

pub fn routes() -> Router<Arc<UiState>> {
    Router::new().route("/admin/approvals", get(queue)).route("/admin/approvals/{id}/{verdict}", post(review))
}

async fn queue(State(ui): State<Arc<UiState>>, session: Session) -> Result<Response, UiError> {
    authorize(&session.principal, &Action::ReadAudit)?;
    let pending = ui.services.approvals.list(&ApprovalFilter { status: Some(ApprovalStatus::Pending) })?;
    let mut decided = ui.services.approvals.list(&ApprovalFilter::default())?;
    decided.retain(|a| a.status != ApprovalStatus::Pending);
    decided.truncate(20);
    // Offered only where this person may decide: an approver named by the rules, never the requester.
    let decidable: Vec<&str> = pending
        .iter()
        .filter(|a| may_approve(&a.approvers, &session.principal))
        .filter(|a| a.requested_by.as_deref() != Some(session.principal.user.as_str()))
        .map(|a| a.id.as_str())
        .collect();
    let context = minijinja::context! {
        decidable => decidable,
        pending => minijinja::Value::from_serialize(&pending),
        decided => minijinja::Value::from_serialize(&decided),
    };
    ui.page("approvals.html", Some(&session), context)
}

#[derive(Deserialize)]
struct ReviewForm {
    csrf: String,
    #[serde(default)]
    notes: String,
}

async fn review(
    State(ui): State<Arc<UiState>>,
    session: Session,
    Path((id, verdict)): Path<(String, String)>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&form.csrf)?;
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        other => return Err(UiError::Invalid(format!("verdict: '{other}' is not approve or reject"))),
    };
    authorize(&session.principal, &Action::Approve)?;
    let notes = Some(form.notes.trim().to_string()).filter(|n| !n.is_empty());
    ui.services.deployments.decide(&id, &session.principal, approve, notes)?;
    Ok(Redirect::to("/admin/approvals").into_response())
}
