//! `/approvals`: deployments held for a decision, and the decisions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::{parse_json, ApiError, ApiResult, AppState, Caller, QueryParams};
use crate::approvals::{Approval, ApprovalFilter, Review};
use crate::auth::authz::{authorize, may, Action};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(list_approvals))
        .route("/approvals/{id}", get(get_approval))
        .route("/approvals/{id}/{verdict}", post(review))
}

async fn list_approvals(
    State(rt): State<AppState>,
    _: Caller<may::ReadAudit>,
    QueryParams(filter): QueryParams<ApprovalFilter>,
) -> ApiResult<Json<Vec<Approval>>> {
    Ok(Json(rt.approvals(&filter)?))
}

async fn get_approval(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    let approval = rt.approval(&id)?;
    // The requester may follow their own request; the audit roles any.
    if approval.requested_by.as_deref() != Some(caller.user.as_str()) {
        authorize(&caller, &Action::ReadAudit)?;
    }
    Ok(Json(approval))
}

/// `POST /approvals/{id}/approve` or `/reject`, with optional `{"notes": …}`.
async fn review(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Approve>,
    Path((id, verdict)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Approval>> {
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::NotFound("no such route".into())),
    };
    let notes = review_notes(&body)?;
    Ok(Json(rt.decide(&id, &caller, approve, notes).await?))
}

/// `{"notes": "..."}`, or an empty body.
fn review_notes(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(parse_json::<Review>(body)?.notes)
}
