//! `/approvals`: deployments held for a decision, and the decisions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::ErrorBody;
use crate::api::{parse_json, ApiError, ApiResult, AppState, Caller, QueryParams};
use crate::approvals::{Approval, ApprovalFilter, Review};
use crate::auth::authz::{authorize, may, Action};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_approvals))
        .routes(routes!(get_approval))
        .routes(routes!(approval_sbom))
        .routes(routes!(review))
}

#[utoipa::path(get, path = "/approvals", tag = "approvals", params(ApprovalFilter),
    extensions(("x-permission" = json!("read_audit"))), responses((status = 200, body = Vec<Approval>)))]
/// Approval requests, newest first.
async fn list_approvals(
    State(rt): State<AppState>,
    _: Caller<may::ReadAudit>,
    QueryParams(filter): QueryParams<ApprovalFilter>,
) -> ApiResult<Json<Vec<Approval>>> {
    Ok(Json(rt.approvals.list(&filter)?))
}

#[utoipa::path(get, path = "/approvals/{id}", tag = "approvals", params(("id" = String, Path)),
    extensions(("x-permission" = json!("follow_approval"))), responses((status = 200, body = Approval)))]
/// One approval request.
async fn get_approval(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    Ok(Json(followed(&rt, &caller, &id)?))
}

/// The request, for its requester (who may follow it) or the audit roles.
fn followed(rt: &AppState, caller: &crate::auth::Principal, id: &str) -> ApiResult<Approval> {
    let approval = rt.approvals.get(id)?;
    if approval.requested_by.as_deref() != Some(caller.user.as_str()) {
        authorize(caller, &Action::ReadAudit)?;
    }
    Ok(approval)
}

#[utoipa::path(get, path = "/approvals/{id}/sbom", tag = "approvals", params(("id" = String, Path)),
    extensions(("x-permission" = json!("follow_approval"))),
    responses((status = 200, description = "CycloneDX 1.5: what the held deployment's image installs",
               content((Object = "application/vnd.cyclonedx+json; version=1.5"))),
              (status = 404, body = ErrorBody, description = "No such request, or nothing read of its image yet (said why)")))]
/// The SBOM of the deployment a request holds, for the approvers deciding on it.
async fn approval_sbom(
    State(rt): State<AppState>,
    Caller(caller, ..): Caller<may::Authenticated>,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let approval = followed(&rt, &caller, &id)?;
    Ok(super::runtime_sbom::cyclonedx(rt.deployments.sbom(&approval.deployment_id)?))
}

#[utoipa::path(post, path = "/approvals/{id}/{verdict}", tag = "approvals",
    params(("id" = String, Path), ("verdict" = inline(Verdict), Path)),
    request_body(content = Option<Review>, description = "Optional notes; the body may be empty"),
    extensions(("x-permission" = json!("approve"))),
    responses((status = 200, body = Approval),
              (status = 409, body = ErrorBody, description = "Already decided, or expired")))]
/// Approves or rejects a held deployment; an approved one deploys at once.
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
    Ok(Json(rt.deployments.decide(&id, &caller, approve, notes)?))
}

/// The decision a review takes.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Read from the path as a string; here for the document.
enum Verdict {
    Approve,
    Reject,
}

/// `{"notes": "..."}`, or an empty body.
fn review_notes(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(parse_json::<Review>(body)?.notes)
}
